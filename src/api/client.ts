/** Talking to other members' REST APIs (node:http: the daemon does not load fetch/undici for this). */
import http from 'node:http';
import https from 'node:https';

/** GET a member's /patroni; null on any error, timeout or non-JSON answer. */
export function fetchMemberStatus(apiUrl: string, timeoutMs: number): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(apiUrl);
    } catch {
      return resolve(null);
    }
    url.pathname = '/patroni';
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > 1_000_000) req.destroy();
      });
      res.on('end', () => {
        try {
          const j: unknown = JSON.parse(body);
          resolve(j && typeof j === 'object' && !Array.isArray(j) ? (j as Record<string, unknown>) : null);
        } catch {
          resolve(null);
        }
      });
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}
