// The banner of every ESM bundle we build with esbuild (scripts/bundle.mjs, bench/memory.ts): CommonJS
// dependencies call require() and read __dirname/__filename, so each chunk gets its own.
export const BUNDLE_BANNER = [
  "import { createRequire as __pgwCreateRequire } from 'node:module';",
  "import { fileURLToPath as __pgwFileURLToPath } from 'node:url';",
  'const require = __pgwCreateRequire(import.meta.url);',
  'const __filename = __pgwFileURLToPath(import.meta.url);',
  "const __dirname = __pgwFileURLToPath(new URL('.', import.meta.url));",
].join(' ');
