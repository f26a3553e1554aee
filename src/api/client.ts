/** Talking to other members' REST APIs (node:http: the daemon does not load fetch/undici for this). */
import http from 'node:http';
import https from 'node:https';
import { basicAuthHeader, clientTlsOptions, type RequestSettings } from './tls.js';

const MAX_STATUS_BODY = 1_000_000;

/**
 * GET a member's `/patroni` (whatever path its api_url names, as Patroni does); the JSON object it
 * answers with, or null on any error, a timeout of `timeoutMs` for the whole exchange, or a body that is
 * not a JSON object. With `settings` (daemonRequestSettings: Patroni's PatroniRequest of the daemon),
 * basic auth and a client certificate are sent and, with a certificate, the peer's chain is verified;
 * without, certificates are not verified (peers often use self-signed ones).
 */
export function fetchMemberStatus(apiUrl: string, timeoutMs: number, settings: RequestSettings = { insecure: true }): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(apiUrl);
    } catch {
      return resolve(null);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return resolve(null);
    url.pathname = '/patroni';
    url.search = '';
    let settled = false;
    const done = (v: Record<string, unknown> | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    };
    const mod = url.protocol === 'https:' ? https : http;
    let tls: https.RequestOptions;
    try {
      tls = url.protocol === 'https:' ? clientTlsOptions(settings) : {};
    } catch {
      return resolve(null);
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (settings.auth) headers.authorization = basicAuthHeader(settings.auth);
    const req = mod.get(url, { ...tls, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > MAX_STATUS_BODY) req.destroy();
      });
      res.on('end', () => {
        try {
          const j: unknown = JSON.parse(body);
          done(j && typeof j === 'object' && !Array.isArray(j) ? (j as Record<string, unknown>) : null);
        } catch {
          done(null);
        }
      });
      res.on('error', () => done(null));
      res.on('aborted', () => done(null));
    });
    const timer = setTimeout(() => {
      req.destroy();
      done(null);
    }, timeoutMs);
    req.on('error', () => done(null));
  });
}
