/**
 * The REST API server: node:http (or node:https with restapi.certfile, TLS rules in tls.ts), one error
 * handler, routes in routes.ts.
 */
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { DaemonConfig } from '../config/types.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { HttpError, route } from './routes.js';
import { hasVerifiedClientCert, refuseInvalidPeer, serverTlsOptions, tlsFingerprint } from './tls.js';
import type { ApiBackend, ApiResponse } from './types.js';

const MAX_BODY = 1024 * 1024;

export interface ApiServer {
  /** Listen on `restapi.listen` (port 0: any free port); resolves with the address actually bound. */
  listen(): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
  /**
   * SIGHUP: when restapi's TLS settings or the certificate files changed, serve with them — the
   * listening socket is replaced, as Patroni re-initializes its server (and reloads a renewed
   * certificate). Resolves true when it did; throws (keeping the running server) when they are invalid.
   */
  reloadTls(): Promise<boolean>;
  /** The request listener, for embedding or tests. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): void;
}

/**
 * `host:port` as Patroni reads `restapi.listen`: an empty host or `*` means every interface
 * (undefined for node: dual stack); IPv6 in brackets.
 */
export function parseListen(listen: string): { host: string | undefined; port: number } {
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(listen) ?? /^([^:]*):(\d+)$/.exec(listen);
  if (!m) throw new Error(`restapi.listen: expected <HOST>:<PORT>, got '${listen}'`);
  const host = m[1] === '' || m[1] === '*' ? undefined : m[1];
  return { host, port: Number(m[2]) };
}

export function createApiServer(opts: { backend: ApiBackend; config: DaemonConfig; log: Logger }): ApiServer {
  const { backend, config, log } = opts;
  const startedAt = backend.now();

  const respond = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const started = performance.now();
    let out: ApiResponse;
    try {
      const body = await readBody(req);
      const target = req.url ?? '/';
      // Never let a target like `//host/x` be read as an authority.
      const url = new URL(`http://localhost${target.startsWith('/') ? target : `/${target}`}`);
      const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
      const clientCertificate = hasVerifiedClientCert(req);
      out = await route({ method: req.method ?? 'GET', path, query: url.searchParams, headers: req.headers, body, clientCertificate }, backend, { startedAt });
    } catch (e) {
      if (e instanceof HttpError) {
        out = { status: e.status, body: { message: e.message }, ...(e.headers ? { headers: e.headers } : {}) };
      } else {
        log.error({ err: errorMessage(e), method: req.method, url: req.url }, 'REST API handler failed');
        out = { status: 500, body: { message: 'internal error' } };
      }
    }
    send(req, res, out);
    log.debug({ method: req.method, url: req.url, status: out.status, ms: Math.round((performance.now() - started) * 10) / 10 }, 'API request');
  };
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void respond(req, res);
  };

  const transport = (): { server: http.Server; fingerprint: string } => {
    const tls = serverTlsOptions(config.restapi);
    let server: http.Server;
    if (tls) {
      const s = https.createServer(tls, handle);
      if (tls.requestCert && !tls.rejectUnauthorized) s.on('secureConnection', (sock: TLSSocket) => refuseInvalidPeer(sock));
      server = s;
    } else {
      server = http.createServer(handle);
    }
    server.keepAliveTimeout = 5000;
    return { server, fingerprint: tls ? tlsFingerprint(config.restapi) : 'http' };
  };
  let current = transport();
  let bound: { host: string | undefined; port: number } | null = null;

  const listenOn = (server: http.Server, host: string | undefined, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(new Error(`REST API cannot listen on ${config.restapi.listen}: ${e.message}`, { cause: e }));
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        server.on('error', (e) => log.error({ err: e.message }, 'REST API server error'));
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  const closeServer = (server: http.Server): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    handle,
    listen: async () => {
      const { host, port } = parseListen(config.restapi.listen);
      const actual = await listenOn(current.server, host, port);
      bound = { host, port: actual };
      return { host: host ?? '*', port: actual };
    },
    close: () => closeServer(current.server),
    reloadTls: async () => {
      const fingerprint = config.restapi.certfile ? tlsFingerprint(config.restapi) : 'http';
      if (fingerprint === current.fingerprint) return false;
      const next = transport(); // throws on invalid settings: the running server stays
      const old = current;
      current = next;
      if (bound) {
        await closeServer(old.server);
        await listenOn(next.server, bound.host, bound.port);
      }
      log.info({ https: fingerprint !== 'http' }, 'REST API TLS settings reloaded');
      return true;
    },
  };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.removeAllListeners('data');
        reject(new HttpError(413, 'request body too large'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(req: http.IncomingMessage, res: http.ServerResponse, out: ApiResponse): void {
  const noBody = req.method === 'HEAD' || req.method === 'OPTIONS';
  let payload = '';
  const headers: Record<string, string | number> = {};
  if (out.text !== undefined) {
    payload = out.text;
    headers['Content-Type'] = 'text/plain; charset=utf-8';
  } else if (out.body !== undefined) {
    payload = JSON.stringify(out.body);
    headers['Content-Type'] = 'application/json';
  }
  Object.assign(headers, out.headers);
  if (noBody) payload = '';
  headers['Content-Length'] = Buffer.byteLength(payload);
  if (out.status === 413) headers.Connection = 'close';
  res.writeHead(out.status, headers);
  res.end(payload, () => {
    // An oversized body is not read to its end: drop the connection instead.
    if (out.status === 413) req.socket.destroy();
  });
}
