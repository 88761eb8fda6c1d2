// @vitest-environment node
// The package builds: tsc emits ESM + .d.ts for every entry point, vite emits
// the script-tag bundles and copies the demo page. Built into a temp dir so
// the test never touches web/dist.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const web = fileURLToPath(new URL("..", import.meta.url));
const env = {
  ...process.env,
  PATH: [join(web, "node_modules/.bin"), join(web, "../node_modules/.bin"), process.env.PATH ?? ""].join(delimiter),
};

describe("build", () => {
  it("emits the library with types, the bundles and the demo page", () => {
    const out = mkdtempSync(join(tmpdir(), "parley-web-build-"));
    try {
      const run = (cmd: string, args: string[]) =>
        execFileSync(cmd, args, { cwd: web, env, stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
      run("tsc", ["-p", "tsconfig.build.json", "--outDir", out]);
      run("vite", ["build", "--outDir", out, "--logLevel", "error"]);
      const pkg = JSON.parse(readFileSync(join(web, "package.json"), "utf8")) as {
        exports: Record<string, string | { types: string; default: string }>;
      };
      for (const target of Object.values(pkg.exports)) {
        const files = typeof target === "string" ? [target] : [target.types, target.default];
        for (const f of files) {
          if (!f.startsWith("./dist/")) continue;
          expect(existsSync(join(out, f.slice("./dist/".length))), f).toBe(true);
        }
      }
      for (const f of ["index.html", "demo.js", "parley-chat.js", "parley-chat.iife.js"]) {
        expect(existsSync(join(out, f)), f).toBe(true);
      }
      const html = readFileSync(join(out, "index.html"), "utf8");
      expect(html).toContain('src="./parley-chat.js"');
      expect(readFileSync(join(out, "parley-chat.iife.js"), "utf8")).toMatch(/^var Parley=/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
