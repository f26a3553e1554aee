import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The package's root directory (package.json, bin/), found by walking up from this module: it runs from
 * src/util under tsx, from dist/util after tsc and from dist/bundle in the bundle, three different depths.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pgwarden') return (root = dir);
    if (dirname(dir) === dir) throw new Error(`pgwarden's package.json not found above ${fileURLToPath(import.meta.url)}`);
  }
}
