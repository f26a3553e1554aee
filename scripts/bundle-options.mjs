// The esbuild options of every ESM bundle we build (scripts/bundle.mjs, bench/memory.ts), so a probe
// is bundled exactly as the daemon is. CommonJS dependencies call require() and read
// __dirname/__filename, so each chunk gets its own through the banner.
const BUNDLE_BANNER = [
  "import { createRequire as __pgwCreateRequire } from 'node:module';",
  "import { fileURLToPath as __pgwFileURLToPath } from 'node:url';",
  'const require = __pgwCreateRequire(import.meta.url);',
  'const __filename = __pgwFileURLToPath(import.meta.url);',
  "const __dirname = __pgwFileURLToPath(new URL('.', import.meta.url));",
].join(' ');

export const BUNDLE_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  banner: { js: BUNDLE_BANNER },
};
