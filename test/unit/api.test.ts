import { test } from 'node:test';
import assert from 'node:assert/strict';
import { route, HttpError } from '../../src/api/routes.js';
import { createApiServer } from '../../src/api/server.js';
import { clusterAsJson } from '../../src/api/cluster-json.js';
import type { ApiBackend, ApiView } from '../../src/api/types.js';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import { loadConfig } from '../../src/config/load.js';
import type { Cluster } from '../../src/dcs/types.js';
import { silentLogger } from '../../src/util/log.js';
import { cluster, member, pgPrimary, pgReplica, pgStopped } from '../helpers/ha-fixtures.js';

const baseConfig = loadConfig({
  text: `scope: demo
name: m1
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
etcd3: {hosts: 127.0.0.1:2379}
postgresql:
  listen: 127.0.0.1:5001
  connect_address: 127.0.0.1:5001
  data_dir: /d
  authentication: {superuser: {username: postgres, password: p}, replication: {username: rep, password: r}}
`,
  env: {},
}).config;

function view(over: Partial<ApiView> = {}): ApiView {
  return {
    name: 'm1',
    scope: 'demo',
    version: '0.1.0',
    config: baseConfig,
    dynamic: effectiveDynamicConfig(null, {}).dynamic,
    cluster: cluster(),
    dcsLastSeen: 1700000000,
    pg: pgPrimary,
    isLeader: true,
    lastLoopAt: 1000,
    lastAction: null,
    state: 'running',
    role: 'master',
    paused: false,
    ...over,
  };
}

const replicaView = (over: Partial<ApiView> = {}) => view({ name: 'm2', pg: pgReplica, isLeader: false, role: 'replica', ...over });

function backend(v: ApiView, c: Cluster | Error = v.cluster ?? cluster(), now = 2000): ApiBackend & { reloads: number } {
  const b = {
    reloads: 0,
    view: () => v,
    loadCluster: async () => {
      if (c instanceof Error) throw c;
      return c;
    },
    now: () => now,
    requestReload: () => {
      b.reloads++;
    },
  };
  return b;
}

async function call(v: ApiView, method: string, path: string, opts: { body?: string; headers?: Record<string, string>; b?: ApiBackend } = {}) {
  const url = new URL(path, 'http://x');
  try {
    return await route({ method, path: url.pathname, query: url.searchParams, headers: opts.headers ?? {}, body: opts.body ?? '' }, opts.b ?? backend(v));
  } catch (e) {
    if (e instanceof HttpError) return { status: e.status, body: { message: e.message } };
    throw e;
  }
}

const table: Array<[string, () => ApiView, string, number]> = [
  ['primary', view, '/', 200],
  ['primary', view, '/primary', 200],
  ['primary', view, '/master', 200],
  ['primary', view, '/read-write', 200],
  ['primary', view, '/leader', 200],
  ['primary', view, '/replica', 503],
  ['primary', view, '/read-only', 200],
  ['primary', view, '/health', 200],
  ['primary', view, '/readiness', 200],
  ['primary', view, '/standby-leader', 503],
  ['replica', replicaView, '/', 503],
  ['replica', replicaView, '/primary', 503],
  ['replica', replicaView, '/leader', 503],
  ['replica', replicaView, '/replica', 200],
  ['replica', replicaView, '/read-only', 200],
  ['replica', replicaView, '/async', 200],
  ['replica', replicaView, '/sync', 503],
  ['replica', replicaView, '/health', 200],
  ['replica', replicaView, '/readiness', 200],
  ['lagging replica, lag limit 10', () => replicaView({ cluster: cluster({ status: { optime: 500 } }) }), '/replica?lag=10', 503],
  ['replica within lag 1kB', () => replicaView({ cluster: cluster({ status: { optime: 500 } }) }), '/replica?lag=1kB', 200],
  ['replica with noloadbalance', () => replicaView({ config: { ...baseConfig, tags: { noloadbalance: true } } }), '/replica', 503],
  ['replica, tag matches', () => replicaView({ config: { ...baseConfig, tags: { zone: 'a' } } }), '/replica?tag_zone=a', 200],
  ['replica, tag differs', () => replicaView({ config: { ...baseConfig, tags: { zone: 'a' } } }), '/replica?tag_zone=b', 503],
  ['sync replica', () => replicaView({ cluster: cluster({ sync: { leader: 'm1', sync_standby: ['m2'], version: 1 } }) }), '/sync', 200],
  ['sync replica', () => replicaView({ cluster: cluster({ sync: { leader: 'm1', sync_standby: ['m2'], version: 1 } }) }), '/async', 503],
  ['stopped', () => replicaView({ pg: pgStopped, state: 'stopped' }), '/health', 503],
  ['stopped', () => replicaView({ pg: pgStopped, state: 'stopped' }), '/replica', 503],
  ['stopped', () => replicaView({ pg: pgStopped, state: 'stopped' }), '/readiness', 503],
  ['primary without the lock', () => view({ isLeader: false }), '/primary', 503],
];

for (const [name, mk, path, status] of table) {
  test(`GET ${path} on ${name} → ${status}`, async () => {
    const r = await call(mk(), 'GET', path);
    assert.equal(r.status, status);
    assert.equal((r.body as Record<string, unknown>).state !== undefined, true, 'health endpoints return the /patroni body');
  });
}

test('HEAD and OPTIONS answer the code without a body, through a real socket', async (t) => {
  const srv = createApiServer({ backend: backend(replicaView()), config: { ...baseConfig, restapi: { ...baseConfig.restapi, listen: '127.0.0.1:0' } }, log: silentLogger() });
  const { port } = await srv.listen();
  t.after(() => srv.close());
  for (const method of ['HEAD', 'OPTIONS']) {
    const r = await fetch(`http://127.0.0.1:${port}/primary`, { method });
    assert.equal(r.status, 503);
    assert.equal(await r.text(), '');
    const r2 = await fetch(`http://127.0.0.1:${port}/replica`, { method });
    assert.equal(r2.status, 200);
  }
  const g = await fetch(`http://127.0.0.1:${port}/patroni`);
  assert.equal(g.status, 200);
  assert.equal(((await g.json()) as Record<string, unknown>).role, 'replica');
  const nf = await fetch(`http://127.0.0.1:${port}/nope`);
  assert.equal(nf.status, 404);
  assert.match(String(((await nf.json()) as Record<string, unknown>).message), /no such endpoint/);
  const bad = await fetch(`http://127.0.0.1:${port}/reload`, { method: 'POST', body: '{not json' });
  assert.equal(bad.status, 400);
});

test('/patroni of a primary', async () => {
  const r = await call(view(), 'GET', '/patroni');
  const b = r.body as Record<string, unknown>;
  assert.equal(b.role, 'master');
  assert.deepEqual(b.xlog, { location: 100 });
  assert.equal(b.timeline, 1);
  assert.equal(b.database_system_identifier, '7000000000000000001');
  assert.deepEqual(b.patroni, { version: '0.1.0', scope: 'demo', name: 'm1' });
  assert.equal(b.cluster_unlocked, undefined);
});

test('/patroni of a replica, cluster unlocked, paused', async () => {
  const r = await call(replicaView({ cluster: cluster({ leader: null }), paused: true }), 'GET', '/patroni');
  const b = r.body as Record<string, unknown>;
  assert.equal(b.role, 'replica');
  assert.deepEqual(b.xlog, { received_location: 100, replayed_location: 100, replayed_timestamp: null, paused: false });
  assert.equal(b.cluster_unlocked, true);
  assert.equal(b.pause, true);
});

test('/liveness: the loop ran within ttl (leader) or 2*ttl (others); always alive when paused', async () => {
  assert.equal((await call(view(), 'GET', '/liveness', { b: backend(view(), cluster(), 1000 + 29_000) })).status, 200);
  assert.equal((await call(view(), 'GET', '/liveness', { b: backend(view(), cluster(), 1000 + 31_000) })).status, 503);
  const r = replicaView();
  assert.equal((await call(r, 'GET', '/liveness', { b: backend(r, cluster(), 1000 + 59_000) })).status, 200);
  const p = view({ paused: true });
  assert.equal((await call(p, 'GET', '/liveness', { b: backend(p, cluster(), 1000 + 999_000) })).status, 200);
});

test('/cluster reads the store afresh; 503 when it cannot', async () => {
  const fresh = cluster({ members: [member('m1', { role: 'master', xlog_location: 300 }), member('m2', { xlog_location: 100 })] });
  const r = await call(view(), 'GET', '/cluster', { b: backend(view(), fresh) });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, clusterAsJson(fresh, 'demo'));
  const e = await call(view(), 'GET', '/cluster', { b: backend(view(), new Error('down')) });
  assert.equal(e.status, 503);
});

test('/config: 200 with the stored config, 502 when none', async () => {
  const withCfg = view({ cluster: cluster({ config: { value: { ttl: 30 }, version: 3 } }) });
  assert.deepEqual((await call(withCfg, 'GET', '/config')).body, { ttl: 30 });
  assert.equal((await call(view(), 'GET', '/config')).status, 502);
});

test('/metrics exposes Patroni metric names with values', async () => {
  const r = await call(view(), 'GET', '/metrics');
  const text = (r as { text: string }).text;
  assert.match(text, /^patroni_primary\{scope="demo"\} 1$/m);
  assert.match(text, /^patroni_replica\{scope="demo"\} 0$/m);
  assert.match(text, /^patroni_xlog_location\{scope="demo"\} 100$/m);
  assert.match(text, /^patroni_postgres_timeline\{scope="demo"\} 1$/m);
  assert.match(text, /^# TYPE patroni_postgres_running gauge$/m);
  const rt = (await call(replicaView(), 'GET', '/metrics')) as { text: string };
  assert.match(rt.text, /^patroni_replica\{scope="demo"\} 1$/m);
});

test('bad requests: 400 for a bad lag, 404 for unknown paths, 405 for unknown methods', async () => {
  assert.equal((await call(replicaView(), 'GET', '/replica?lag=abc')).status, 400);
  assert.equal((await call(view(), 'GET', '/nothing')).status, 404);
  assert.equal((await call(view(), 'TRACE', '/')).status, 405);
});

test('unsafe methods honour restapi.authentication', async () => {
  const secured = view({ config: { ...baseConfig, restapi: { ...baseConfig.restapi, authentication: { username: 'admin', password: 's3cret' } } } });
  const b = backend(secured);
  assert.equal((await call(secured, 'POST', '/reload', { b })).status, 401);
  const wrong = `Basic ${Buffer.from('admin:nope').toString('base64')}`;
  assert.equal((await call(secured, 'POST', '/reload', { b, headers: { authorization: wrong } })).status, 401);
  assert.equal(b.reloads, 0);
  const right = `Basic ${Buffer.from('admin:s3cret').toString('base64')}`;
  assert.equal((await call(secured, 'POST', '/reload', { b, headers: { authorization: right } })).status, 202);
  assert.equal(b.reloads, 1);
  assert.equal((await call(secured, 'GET', '/patroni', { b })).status, 200, 'safe methods need no auth');
});

