// The Organizer example is an app of its own: Vite builds it into dist/ and
// bundles @parley/chat from node_modules like any other dependency.
// `npm run dev` serves it on http://localhost:5173, `npm run preview` the build.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  server: { port: 5173, strictPort: true },
  preview: { port: 5173, strictPort: true },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  logLevel: "warn",
});
