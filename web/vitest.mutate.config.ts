// The unit tests Stryker runs against each mutant (npm run mutate): all of
// them except the ones that only spawn tools (tsc, vite, buf, npm pack), which
// test the build and the package, not the code being mutated. Test files
// share one worker (isolate: false): starting a worker per file costs more
// than the tests themselves, thousands of times over. The tests leave no
// global state behind, so they pass either way (npm test isolates them).
import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.js";

export default mergeConfig(
  base,
  defineConfig({
    test: {
      isolate: false,
      fileParallelism: false,
      exclude: ["test/build.test.ts", "test/gen-fresh.test.ts", "test/package.test.ts", "**/node_modules/**"],
    },
  }),
);
