// @vitest-environment node
// The generated protocol code in src/gen/ is committed; it must be exactly
// what `npm run gen` produces from ../proto today.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const web = fileURLToPath(new URL("..", import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

describe("generated code", () => {
  it("src/gen matches what buf generate makes from proto/", () => {
    const out = mkdtempSync(join(tmpdir(), "parley-gen-"));
    try {
      // npm puts node_modules/.bin (buf, protoc-gen-es) on PATH for scripts;
      // do the same for a direct vitest run.
      const bins = [join(web, "node_modules/.bin"), join(web, "../node_modules/.bin")];
      execFileSync("buf", ["generate", "-o", out], {
        cwd: web,
        env: { ...process.env, PATH: [...bins, process.env.PATH ?? ""].join(delimiter) },
        stdio: ["ignore", "ignore", "pipe"],
        timeout: 60_000,
      });
      const fresh = join(out, "src/gen");
      const committed = join(web, "src/gen");
      expect(files(committed)).toEqual(files(fresh));
      for (const f of files(fresh)) {
        expect(readFileSync(join(committed, f), "utf8"), `${f} is stale: run npm run gen -w web`).toBe(
          readFileSync(join(fresh, f), "utf8"),
        );
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
