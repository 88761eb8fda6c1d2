// The Participation example is an app of its own: Vite builds it into dist/
// and bundles @parley/chat from node_modules like any other dependency.
// `npm run dev` serves it on http://localhost:5174, `npm run preview` the build.
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [
    vue({
      // <parley-chat> is a custom element, not a Vue component.
      template: { compilerOptions: { isCustomElement: (tag) => tag === "parley-chat" } },
    }),
  ],
  server: { port: 5174, strictPort: true },
  preview: { port: 5174, strictPort: true },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  logLevel: "warn",
});
