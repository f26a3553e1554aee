/**
 * Node 20 has no global `navigator` (Node 21 added one). Without it, pg (lib/stream.js) probes for a
 * Cloudflare Worker by constructing a fetch `Response` when it is imported, and that loads the whole of
 * Node's bundled undici: about 5 MB of RSS and 100 ms in every process, for nothing. This gives Node 20
 * the `navigator.userAgent` newer versions have. Imported first by the entry point, before pg.
 */
import { availableParallelism } from 'node:os';

if (!('navigator' in globalThis)) {
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.freeze({ userAgent: `Node.js/${process.versions.node.split('.')[0]}`, hardwareConcurrency: availableParallelism() }),
    configurable: true,
    enumerable: false,
    writable: false,
  });
}
