// Mutation testing of @parley/chat (npm run mutate -w web). Slow (minutes),
// so it is a documented command, not part of scripts/test; the last result is
// in docs/testing.md ("Web package"). Reports land in reports/ (not committed).
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutate.config.ts" },
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: ["src/**/*.ts", "!src/gen/**", "!src/index.ts", "!src/client-only.ts"],
  coverageAnalysis: "perTest",
  // A static mutant (a module-level value: constants, default strings, the
  // stylesheet) can only be tested by reloading every test file, ~20 s each;
  // they are counted as ignored, and the values that matter are pinned by
  // tests that name them (limits.test.ts, element-states.test.ts).
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 10_000,
  reporters: ["clear-text", "progress", "json", "html"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  thresholds: { high: 90, low: 75, break: null },
  tempDirName: ".stryker-tmp",
  // Stryker rewrites the tsconfig's extends/references for its sandbox with
  // the TypeScript JS API, which TypeScript 7 (native) no longer has. Ours
  // has neither, so point it at no file and leave the tsconfig alone.
  tsconfigFile: "no-tsconfig-rewrite.json",
};
