// Builds the viewer into ONE script (IIFE, CSS inlined) that the attnscope binary embeds in every
// HTML file it writes. ATTNSCOPE_WEB_OUT picks the output folder (CMake sets it to the build tree).
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    lib: { entry: 'src/main.ts', name: 'attnscopeViewer', formats: ['iife'], fileName: () => 'viewer.js' },
    outDir: process.env.ATTNSCOPE_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    target: 'es2020',
    minify: true,
    reportCompressedSize: false,
  },
  test: { include: ['test/**/*.test.ts'], environment: 'node' },
});
