/** The REST API server: node:http (or https with restapi.certfile/keyfile), one error handler. */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { DaemonConfig } from '../config/types.js';
import type { Logger } from '../util/log.js';
import { splitHostPort } from '../util/net.js';
import { HttpError, route } from './routes.js';
import type { ApiBackend, ApiResponse } from './types.js';

const MAX_BODY = 1024 * 1024;

export interface ApiServer {
  listen(): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
  handle(req: http.IncomingMessage, res: http.ServerResponse): void;
}

export function createApiServer(opts: { backend: ApiBackend; config: DaemonConfig; log: Logger }): ApiServer {
  const { backend, config, log } = opts;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void respond(req, res);
  };
  const respond = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    let out: ApiResponse;
    try {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
      out = await route({ method: req.method ?? 'GET', path, query: url.searchParams, headers: req.headers, body }, backend);
    } catch (e) {
      if (e instanceof HttpError) {
        out = { status: e.status, body: { message: e.message } };
        if (e.status === 401) out.headers = { 'WWW-Authenticate': 'Basic realm="pgwarden"' };
      } else {
        log.error({ err: e instanceof Error ? e.message : String(e), url: req.url }, 'REST API handler failed');
        out = { status: 500, body: { message: 'internal error' } };
      }
    }
    send(req, res, out);
  };
  const tls = config.restapi.certfile && config.restapi.keyfile;
  const server = tls
    ? https.createServer({ cert: readFileSync(config.restapi.certfile!), key: readFileSync(config.restapi.keyfile!) }, handle)
    : http.createServer(handle);
  server.keepAliveTimeout = 5000;
  return {
    handle,
    listen: () =>
      new Promise((resolve, reject) => {
        const { host, port } = splitHostPort(config.restapi.listen, 8008);
        server.once('error', reject);
        server.listen(port, host === '*' ? '0.0.0.0' : host, () => {
          const a = server.address();
          resolve({ host, port: typeof a === 'object' && a ? a.port : port });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
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
  let type = 'application/json';
  if (out.text !== undefined) {
    payload = out.text;
    type = 'text/plain; charset=utf-8';
  } else if (out.body !== undefined) {
    payload = JSON.stringify(out.body);
  }
  res.writeHead(out.status, { 'Content-Type': type, ...(noBody ? {} : { 'Content-Length': Buffer.byteLength(payload) }), ...out.headers });
  res.end(noBody ? undefined : payload);
}
