import { defineConfig } from "vite";

// Served under /app/ by the local runner and by CloudFront alike.
export default defineConfig({
  base: "/app/",
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
});
