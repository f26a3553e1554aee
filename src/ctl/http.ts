/**
 * Requests to the members' REST APIs, as patronictl's PatroniRequest makes them: the URL is the
 * member's `api_url` with its path replaced by the endpoint; JSON bodies; HTTP basic auth from
 * `ctl.authentication` or else `restapi.authentication`; https verified against `ctl.cacert` (or
 * `restapi.cafile`) unless `--insecure`/`ctl.insecure`; a client certificate from `ctl.certfile`/`keyfile`
 * (else `restapi.*`), with which the chain is verified even when insecure (src/api/tls.ts has the rules).
 * Every request is bounded by a timeout.
 */
import http from 'node:http';
import https from 'node:https';
import { clientTlsOptions, type RequestSettings } from '../api/tls.js';
import { PgwardenError, errorMessage } from '../util/errors.js';
import { VERSION } from '../version.js';

export type HttpSettings = RequestSettings;

export interface HttpResponse {
  status: number;
  body: string;
}

/** The member could not be asked: no connection, a TLS failure, a timeout. Its reason is the message. */
export class RequestError extends PgwardenError {
  constructor(
    message: string,
    /** No answer in time: the request may have reached the member and may still take effect. */
    readonly timedOut = false,
  ) {
    super(message);
  }
}

export interface CtlHttp {
  /** `endpoint` without a leading slash (`switchover`, `config`, `patroni`). Rejects only with RequestError. */
  request(apiUrl: string, method: string, endpoint: string, body?: unknown, timeoutMs?: number): Promise<HttpResponse>;
}

/** patronictl: `urlunparse((scheme, netloc, endpoint, '', '', ''))` — the api_url's scheme and host, our path. */
export function endpointUrl(apiUrl: string, endpoint: string): URL {
  let u: URL;
  try {
    u = new URL(apiUrl);
  } catch {
    throw new RequestError(`invalid api_url ${JSON.stringify(apiUrl)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RequestError(`unsupported api_url ${JSON.stringify(apiUrl)}`);
  return new URL(`${u.protocol}//${u.host}/${endpoint.replace(/^\/+/, '')}`);
}

/** The Authorization header value of basic auth. */
export function basicAuth(auth: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

const MAX_BODY = 4_000_000;

export function createHttp(settings: HttpSettings, defaultTimeoutMs: number): CtlHttp {
  const tls = clientTlsOptions(settings);
  const headers: Record<string, string> = { 'user-agent': `pgwarden-ctl/${VERSION}`, accept: 'application/json' };
  if (settings.auth) headers.authorization = basicAuth(settings.auth);
  return {
    request(apiUrl, method, endpoint, body, timeoutMs = defaultTimeoutMs) {
      return new Promise((resolve, reject) => {
        let url: URL;
        try {
          url = endpointUrl(apiUrl, endpoint);
        } catch (e) {
          return reject(e);
        }
        const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
        const h = { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) };
        const opts: https.RequestOptions = { method: method.toUpperCase(), headers: h, agent: false };
        if (url.protocol === 'https:') Object.assign(opts, tls);
        let settled = false;
        const fail = (why: string, timedOut = false): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          req.destroy();
          reject(new RequestError(`${method.toUpperCase()} ${url.href}: ${why}`, timedOut));
        };
        const req = (url.protocol === 'https:' ? https : http).request(url, opts, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            size += d.length;
            if (size > MAX_BODY) fail('response too large');
            else chunks.push(d);
          });
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', (e) => fail(errorMessage(e)));
          res.on('aborted', () => fail('connection closed by the server'));
        });
        const timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`, true), timeoutMs);
        req.on('error', (e) => fail(errorMessage(e)));
        req.end(payload);
      });
    },
  };
}
