// @vitest-environment node
// The published package: a LICENSE matching package.json, and no README link
// that points at a file the tarball does not hold.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const web = fileURLToPath(new URL("..", import.meta.url));

function packedFiles(): Set<string> {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: web,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
  const [info] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
  return new Set((info?.files ?? []).map((f) => f.path));
}

describe("package", () => {
  const files = packedFiles();

  it("ships an MIT LICENSE, as package.json says", () => {
    const pkg = JSON.parse(readFileSync(`${web}/package.json`, "utf8")) as { license: string };
    expect(pkg.license).toBe("MIT");
    expect(files.has("LICENSE")).toBe(true);
    const text = readFileSync(`${web}/LICENSE`, "utf8");
    expect(text).toMatch(/^MIT License/);
    expect(text).toContain("THE SOFTWARE IS PROVIDED \"AS IS\"");
  });

  it("has no README link to a file outside the package", () => {
    expect(files.has("README.md")).toBe(true);
    const readme = readFileSync(`${web}/README.md`, "utf8");
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
    const relative = targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith("#"));
    expect(relative.length).toBeGreaterThan(0);
    for (const t of relative) {
      const path = posix.normalize(t.split("#")[0] as string);
      expect(files.has(path), `README links to ${t}, which the package does not hold`).toBe(true);
    }
  });
});
