/**
 * The leader's half of failsafe mode on the wire: `POST /failsafe` to another member (Patroni's
 * `call_failsafe_member`). node:http, like client.ts; certificates are not verified (peers often use
 * self-signed ones), and the member's `restapi.authentication` is sent because the endpoint is unsafe.
 */
import http from 'node:http';
import https from 'node:https';
import type { FailsafeLeader } from '../dcs/types.js';
import { clientTlsOptions, type RequestSettings } from './tls.js';

const MAX_ANSWER = 64 * 1024;

/**
 * POST `data` to the `/failsafe` endpoint of the member whose api_url is `apiUrl` (whatever path the
 * URL names, as Patroni does). ok only for status 200 with the body `Accepted`, within `timeoutMs` for
 * the whole exchange.
 */
export function postFailsafe(
  apiUrl: string,
  data: FailsafeLeader,
  timeoutMs: number,
  auth?: { username: string; password: string },
  /** The daemon's PatroniRequest settings (tls.ts): a client certificate, verified peers with one. */
  tls: RequestSettings = { insecure: true },
): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(apiUrl);
    } catch {
      return resolve({ ok: false, detail: `bad api_url ${JSON.stringify(apiUrl)}` });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return resolve({ ok: false, detail: `bad api_url ${apiUrl}` });
    url.pathname = '/failsafe';
    url.search = '';
    const body = JSON.stringify(data);
    let settled = false;
    const done = (ok: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok, detail });
    };
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    const mod = url.protocol === 'https:' ? https : http;
    let tlsOpts: https.RequestOptions;
    try {
      tlsOpts = url.protocol === 'https:' ? clientTlsOptions(tls) : {};
    } catch (e) {
      return resolve({ ok: false, detail: e instanceof Error ? e.message : String(e) });
    }
    const req = mod.request(url, { method: 'POST', ...tlsOpts, agent: false, headers }, (res) => {
      let answer = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        answer += d;
        if (answer.length > MAX_ANSWER) req.destroy();
      });
      res.on('end', () => {
        const text = answer.trim();
        done(res.statusCode === 200 && text === 'Accepted', `${res.statusCode ?? '?'} ${text.slice(0, 200)}`);
      });
      res.on('error', (e) => done(false, e.message));
      res.on('aborted', () => done(false, 'aborted'));
    });
    const timer = setTimeout(() => {
      req.destroy();
      done(false, `no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    req.on('error', (e) => done(false, e.message));
    req.end(body);
  });
}
