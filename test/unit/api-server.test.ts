/** REST API: access control, Patroni's size parsing, the router table, and the real server (HTTP and HTTPS) with the peer client. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchMemberStatus } from '../../src/api/client.js';
import { effectiveTags, isAlive, parseIntWithUnit, route, ROUTES } from '../../src/api/routes.js';
import { createApiServer, parseListen } from '../../src/api/server.js';
import type { ApiBackend, ApiResponse, ApiView } from '../../src/api/types.js';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { DaemonConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/util/log.js';
import { memberConfig, cluster, pgPrimary, pgReplica } from '../helpers/ha-fixtures.js';

const config = memberConfig;

const dynamic = effectiveDynamicConfig(null, {}).dynamic;

function view(over: Partial<ApiView> = {}): ApiView {
  return {
    name: 'm1',
    scope: 'demo',
    version: '0.1.0',
    config,
    dynamic,
    cluster: cluster(),
    dcsLastSeen: 1700000000,
    pg: pgPrimary,
    isLeader: true,
    lastLoopAt: 1000,
    lastAction: { action: 'noop', reason: 'no action: I am the leader with the lock' },
    state: 'running',
    role: 'master',
    paused: false,
    ...over,
  };
}

const replica = (over: Partial<ApiView> = {}): ApiView => view({ name: 'm2', pg: pgReplica, isLeader: false, role: 'replica', ...over });

function backend(v: ApiView): ApiBackend & { reloads: number } {
  const b = {
    reloads: 0,
    view: () => v,
    loadCluster: async () => v.cluster ?? cluster(),
    now: () => 2000,
    requestReload: () => {
      b.reloads++;
    },
  };
  return b;
}

function req(method: string, target: string, opts: { body?: string; headers?: Record<string, string> } = {}) {
  const u = new URL(target, 'http://x');
  return { method, path: u.pathname, query: u.searchParams, headers: opts.headers ?? {}, body: opts.body ?? '' };
}

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

// ---------------------------------------------------------------------------------------------
// Access control

const secured = view({ config: { ...config, restapi: { ...config.restapi, authentication: { username: 'admin', password: 's3cret' } } } });

test('auth: missing, wrong scheme and wrong credentials are 401 with a Basic challenge and Patroni’s reasons', async () => {
  const b = backend(secured);
  const cases: Array<[Record<string, string>, string]> = [
    [{}, 'no auth header received'],
    [{ authorization: 'Bearer abc' }, 'not authenticated'],
    [{ authorization: basic('admin', 's3cre') }, 'not authenticated'],
    [{ authorization: basic('Admin', 's3cret') }, 'not authenticated'],
    [{ authorization: 'Basic !!!not-base64' }, 'not authenticated'],
  ];
  for (const [headers, reason] of cases) {
    const r = await route(req('POST', '/reload', { headers }), b);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.deepEqual(r.body, { message: reason });
    assert.match(r.headers?.['WWW-Authenticate'] ?? '', /^Basic realm="/);
  }
  assert.equal(b.reloads, 0, 'nothing happened without credentials');
});

test('auth is checked before the body is read: bad JSON without credentials is 401, with them 400', async () => {
  const b = backend(secured);
  assert.equal((await route(req('POST', '/reload', { body: '{nope' }), b)).status, 401);
  assert.equal((await route(req('POST', '/reload', { body: '{nope', headers: { authorization: basic('admin', 's3cret') } }), b)).status, 400);
  const ok = await route(req('POST', '/reload', { body: '', headers: { authorization: basic('admin', 's3cret') } }), b);
  assert.equal(ok.status, 202);
  assert.equal(ok.text, 'reload scheduled');
  assert.equal(b.reloads, 1);
});

test('auth never applies to safe methods, even on health endpoints with a body', async () => {
  for (const m of ['GET', 'HEAD', 'OPTIONS']) assert.equal((await route(req(m, '/primary'), backend(secured))).status, 200, m);
});

test('router table: GET routes are open, unsafe routes are access-controlled; POST /reload slots in that way', () => {
  for (const [key, r] of ROUTES) {
    const method = key.split(' ')[0]!;
    assert.equal(r.auth, method !== 'GET', key);
  }
  for (const p of ['/', '/primary', '/replica', '/read-only', '/sync', '/async', '/health', '/liveness', '/readiness', '/patroni', '/cluster', '/history', '/config', '/metrics']) {
    assert.ok(ROUTES.has(`GET ${p}`), p);
  }
  assert.ok(ROUTES.get('POST /reload')?.auth);
});

test('reload without a hook still answers 202', async () => {
  const b: ApiBackend = { view: () => view(), loadCluster: async () => cluster(), now: () => 0 };
  assert.equal((await route(req('POST', '/reload'), b)).status, 202);
});

// ---------------------------------------------------------------------------------------------
// Pure helpers

test('?lag= sizes parse exactly as Patroni’s parse_int(value, "B")', () => {
  const cases: Array<[string, number | null]> = [
    ['1048576', 1048576],
    ['0x10', 16],
    ['010', 8], // strtol base 0: octal
    ['1kB', 1024],
    ['1.5MB', 1572864],
    ['10 MB', 10 * 1024 * 1024],
    ['1e3', 1000],
    ['0.4kB', 410],
    ['1TB', 1024 ** 4],
    ['5 B', 5],
    ['+7', 7],
    ['-5', -5],
    ['abc', null],
    ['1KB', null], // units are case-sensitive, as in PostgreSQL
    ['1 parsec', null],
    ['', null],
  ];
  for (const [s, want] of cases) assert.equal(parseIntWithUnit(s, 'B'), want, s);
});

test('effective tags drop the standard flags that are off, keep everything else', () => {
  assert.deepEqual(effectiveTags({ nofailover: false, nosync: false, clonefrom: true, noloadbalance: true, replicatefrom: 'm1', zone: 'a', weight: 0 }), {
    clonefrom: true,
    noloadbalance: true,
    replicatefrom: 'm1',
    zone: 'a',
    weight: 0,
  });
});

test('liveness: ttl for a running primary, 2*ttl otherwise (even a leader whose PostgreSQL is down), paused always alive', () => {
  const ttl = dynamic.ttl * 1000;
  assert.equal(isAlive(view(), 1000 + ttl, null), true);
  assert.equal(isAlive(view(), 1000 + ttl + 1, null), false);
  assert.equal(isAlive(view({ pg: { ...pgPrimary, running: false, accepting: false, inRecovery: null } }), 1000 + ttl + 1, null), true);
  assert.equal(isAlive(replica(), 1000 + 2 * ttl, null), true);
  assert.equal(isAlive(replica(), 1000 + 2 * ttl + 1, null), false);
  assert.equal(isAlive(view({ paused: true }), 10 ** 9, null), true);
  assert.equal(isAlive(view({ lastLoopAt: null }), 10 ** 9, null), true, 'no loop and no start time: nothing to judge');
});

test('?tag_ matching: Patroni’s string form of non-string tags, ignored by leader endpoints', async () => {
  const v = replica({ config: { ...config, tags: { weight: 5, nosync: true } } });
  const status = async (t: string) => (await route(req('GET', t), backend(v))).status;
  assert.equal(await status('/replica?tag_weight=5'), 200);
  assert.equal(await status('/replica?tag_nosync=true'), 200);
  assert.equal(await status('/replica?tag_nosync=True'), 503);
  assert.equal(await status('/replica?tag_weight=5&tag_zone=a'), 503);
  assert.equal(await status('/leader?tag_zone=a'), 503, 'not the leader anyway');
  assert.equal(await status('/async?tag_weight=5'), 200);
});

test('a running primary with the lock passes /read-only even with a lag limit; a replica exactly at the limit passes', async () => {
  const at = replica({ cluster: cluster({ status: { optime: 100 + 1024 } }) });
  assert.equal((await route(req('GET', '/replica?lag=1kB'), backend(at))).status, 200);
  assert.equal((await route(req('GET', '/replica?lag=1023'), backend(at))).status, 503);
  assert.equal((await route(req('GET', '/read-only?lag=0'), backend(view({ cluster: cluster({ status: { optime: 10 ** 9 } }) })))).status, 200);
});

test('the lag check uses the replayed position, not the received one', async () => {
  const v = replica({ pg: { ...pgReplica, receiveLsn: 5000, replayLsn: 100, walPosition: 5000 }, cluster: cluster({ status: { optime: 5000 } }) });
  assert.equal((await route(req('GET', '/replica?lag=1000'), backend(v))).status, 503);
  assert.equal((await route(req('GET', '/replica?lag=4900'), backend(v))).status, 200);
});

test('/patroni when PostgreSQL does not answer although the loop thinks it runs: state unknown, configured role', async () => {
  const v = replica({ pg: { ...pgReplica, accepting: false } });
  const b = (await route(req('GET', '/patroni'), backend(v))).body as Record<string, unknown>;
  assert.equal(b.state, 'unknown');
  assert.equal(b.role, 'replica');
  assert.equal(b.xlog, undefined);
  assert.equal((await route(req('GET', '/health'), backend(v))).status, 503);
});

test('listen addresses as Patroni reads them', () => {
  assert.deepEqual(parseListen('127.0.0.1:8008'), { host: '127.0.0.1', port: 8008 });
  assert.deepEqual(parseListen('*:8008'), { host: undefined, port: 8008 });
  assert.deepEqual(parseListen(':8008'), { host: undefined, port: 8008 });
  assert.deepEqual(parseListen('[::1]:8008'), { host: '::1', port: 8008 });
  assert.throws(() => parseListen('localhost'), /restapi.listen/);
});

// ---------------------------------------------------------------------------------------------
// Real sockets

function cfg(over: Partial<DaemonConfig['restapi']> = {}): DaemonConfig {
  return { ...config, restapi: { ...config.restapi, listen: '127.0.0.1:0', ...over } };
}

test('through a socket: probes, bodies, errors and the peer client', async (t) => {
  const srv = createApiServer({ backend: backend(replica()), config: cfg(), log: silentLogger() });
  const { port } = await srv.listen();
  t.after(() => srv.close());
  const base = `http://127.0.0.1:${port}`;

  const live = await fetch(`${base}/liveness`);
  assert.equal(live.status, 200);
  assert.equal(await live.text(), '', 'liveness is the status line only');

  const opt = await fetch(`${base}/replica?lag=1MB`, { method: 'OPTIONS' });
  assert.equal(opt.status, 200);
  assert.equal(opt.headers.get('content-length'), '0');
  assert.equal(await opt.text(), '');

  const ro = await fetch(`${base}/read-only/`);
  assert.equal(ro.status, 200, 'a trailing slash is the same endpoint');
  assert.equal(ro.headers.get('content-type'), 'application/json');
  assert.equal(((await ro.json()) as Record<string, unknown>).role, 'replica');

  const bad = await fetch(`${base}/replica?lag=lots`);
  assert.equal(bad.status, 400);
  assert.match(String(((await bad.json()) as { message: string }).message), /lag/);

  const wrong = await fetch(`${base}/patroni`, { method: 'DELETE' });
  assert.equal(wrong.status, 405);
  assert.match(wrong.headers.get('allow') ?? '', /GET/);

  const metrics = await fetch(`${base}/metrics`);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(await metrics.text(), /^patroni_replica\{scope="demo"\} 1$/m);

  const status = await fetchMemberStatus(`${base}/patroni`, 2000);
  assert.equal(status?.role, 'replica');
  assert.deepEqual(status?.patroni, { version: '0.1.0', scope: 'demo', name: 'm2' });
  assert.equal((await fetchMemberStatus(`${base}/some/other/path`, 2000))?.role, 'replica', 'the client always asks /patroni');
});

test('the server refuses a second listener on a taken port with the address in the message', async (t) => {
  const a = createApiServer({ backend: backend(view()), config: cfg(), log: silentLogger() });
  const { port } = await a.listen();
  t.after(() => a.close());
  const b = createApiServer({ backend: backend(view()), config: cfg({ listen: `127.0.0.1:${port}` }), log: silentLogger() });
  await assert.rejects(b.listen(), new RegExp(`127.0.0.1:${port}`));
  await b.close();
});

test('an unexpected backend failure is a JSON 500, not a dropped connection', async (t) => {
  const broken: ApiBackend = {
    view: () => {
      throw new Error('boom');
    },
    loadCluster: async () => cluster(),
    now: () => 0,
  };
  const srv = createApiServer({ backend: broken, config: cfg(), log: silentLogger() });
  const { port } = await srv.listen();
  t.after(() => srv.close());
  const r = await fetch(`http://127.0.0.1:${port}/patroni`);
  assert.equal(r.status, 500);
  assert.deepEqual(await r.json(), { message: 'internal error' });
});

test('fetchMemberStatus: null for refused connections, bad URLs, non-JSON answers and silent peers', async (t) => {
  const sockets: Socket[] = [];
  const silent: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const silentPort = (silent.address() as { port: number }).port;
  const started = performance.now();
  assert.equal(await fetchMemberStatus(`http://127.0.0.1:${silentPort}/patroni`, 300), null);
  const took = performance.now() - started;
  assert.ok(took >= 250 && took < 2000, `gave up after its timeout (${Math.round(took)} ms)`);

  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  assert.equal(await fetchMemberStatus(`http://127.0.0.1:${closedPort}/patroni`, 1000), null);
  assert.equal(await fetchMemberStatus('not a url', 1000), null);
  assert.equal(await fetchMemberStatus('ftp://127.0.0.1/patroni', 1000), null);

  const text = createApiServer({ backend: backend(view()), config: cfg(), log: silentLogger() });
  const { port } = await text.listen();
  t.after(() => text.close());
  // /metrics is text, and the client asks for /patroni anyway: point it at a server answering non-JSON instead.
  const plain = createServer((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  t.after(() => plain.close());
  assert.equal(await fetchMemberStatus(`http://127.0.0.1:${(plain.address() as { port: number }).port}/patroni`, 1000), null);
  assert.equal((await fetchMemberStatus(`http://127.0.0.1:${port}/patroni`, 1000))?.role, 'master');
});

// ---------------------------------------------------------------------------------------------
// HTTPS (restapi.certfile / keyfile), with a throwaway self-signed certificate

let tlsDir: string | null = null;
before(() => {
  try {
    const d = mkdtempSync(join(tmpdir(), 'pgwarden-api-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(d, 'key.pem'), '-out', join(d, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], {
      stdio: 'ignore',
    });
    tlsDir = d;
  } catch {
    tlsDir = null;
  }
});
after(() => {
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
});

test('HTTPS when restapi.certfile is set; the peer client reads it', async (t) => {
  if (!tlsDir) return t.skip('openssl is not available');
  const srv = createApiServer({
    backend: backend(replica()),
    config: cfg({ certfile: join(tlsDir, 'cert.pem'), keyfile: join(tlsDir, 'key.pem') }),
    log: silentLogger(),
  });
  const { port } = await srv.listen();
  t.after(() => srv.close());
  const status = await fetchMemberStatus(`https://127.0.0.1:${port}/patroni`, 3000);
  assert.equal(status?.role, 'replica');
  assert.equal(await fetchMemberStatus(`http://127.0.0.1:${port}/patroni`, 3000), null, 'plain HTTP is not served');
});

// Keeps the ApiResponse type import honest for readers: a status-only answer has neither body nor text.
test('HEAD of /liveness and /cluster: status only', async () => {
  for (const p of ['/liveness', '/cluster']) {
    const r: ApiResponse = await route(req('HEAD', p), backend(view()));
    assert.equal(r.status, 200, p);
    assert.equal(r.body, undefined);
    assert.equal(r.text, undefined);
  }
});
