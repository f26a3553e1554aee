import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RequestError, basicAuth, createHttp, endpointUrl } from '../../src/ctl/http.js';

// An in-process server standing in for a member's REST API.
let server: http.Server;
let base = '';
const seen: Array<{ method?: string; url?: string; auth?: string; type?: string; body: string }> = [];

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body });
      if (req.url === '/slow') return; // never answers
      res.writeHead(req.url === '/switchover' ? 412 : 200, { 'content-type': 'text/plain' });
      res.end(req.url === '/switchover' ? 'candidate name does not match with sync_standby' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/patroni`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test('endpointUrl: the api_url with its path replaced', () => {
  assert.equal(endpointUrl('https://h:8008/patroni', 'switchover').href, 'https://h:8008/switchover');
  assert.equal(endpointUrl('http://[::1]:8008/patroni?x=1', '/config').href, 'http://[::1]:8008/config');
  assert.throws(() => endpointUrl('nonsense', 'x'), RequestError);
  assert.throws(() => endpointUrl('ftp://h/x', 'x'), RequestError);
});

test('JSON body, basic auth, any status returned as it is', async () => {
  const client = createHttp({ insecure: false, auth: { username: 'admin', password: 's3cr3t' } }, 2000);
  const r = await client.request(base, 'post', 'switchover', { leader: 'm1', candidate: 'm2' });
  assert.deepEqual(r, { status: 412, body: 'candidate name does not match with sync_standby' });
  const last = seen.at(-1)!;
  assert.equal(last.method, 'POST');
  assert.equal(last.url, '/switchover');
  assert.equal(last.auth, basicAuth({ username: 'admin', password: 's3cr3t' }));
  assert.equal(last.type, 'application/json');
  assert.deepEqual(JSON.parse(last.body), { leader: 'm1', candidate: 'm2' });
  const g = await createHttp({ insecure: false }, 2000).request(base, 'GET', 'patroni');
  assert.equal(g.status, 200);
  assert.equal(seen.at(-1)!.auth, undefined);
});

test('no answer in time, or nobody listening: RequestError (timedOut tells them apart)', async () => {
  const client = createHttp({ insecure: false }, 2000);
  await assert.rejects(client.request(base, 'GET', 'slow', undefined, 200), (e: unknown) => e instanceof RequestError && e.timedOut && /no answer within 0.2 s/.test(e.message));
  await assert.rejects(client.request('http://127.0.0.1:1/patroni', 'GET', 'patroni'), (e: unknown) => e instanceof RequestError && !e.timedOut);
});
