// Builds the script-tag bundles of the package (dist/parley-chat.js as one ES
// module, dist/parley-chat.iife.js for a classic <script>) and copies the demo
// page (demo/) next to them. The per-module ESM + .d.ts output comes from tsc.
import { defineConfig } from "vite";

export default defineConfig({
  publicDir: "demo",
  build: {
    outDir: "dist",
    emptyOutDir: false,
    target: "es2022",
    sourcemap: true,
    minify: true,
    lib: {
      entry: "src/index.ts",
      name: "Parley",
      formats: ["es", "iife"],
      fileName: (format) => (format === "es" ? "parley-chat.js" : "parley-chat.iife.js"),
    },
  },
});
