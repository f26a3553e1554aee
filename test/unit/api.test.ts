import { test } from 'node:test';
import assert from 'node:assert/strict';
import { route, HttpError } from '../../src/api/routes.js';
import { createApiServer } from '../../src/api/server.js';
import { clusterAsJson } from '../../src/api/cluster-json.js';
import type { ApiBackend, ApiView } from '../../src/api/types.js';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { Cluster } from '../../src/dcs/types.js';
import { silentLogger } from '../../src/util/log.js';
import { memberConfig, cluster, member, pgPrimary, pgReplica, pgStopped } from '../helpers/ha-fixtures.js';

const baseConfig = memberConfig;

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
const syncDynamic = { ...effectiveDynamicConfig(null, {}).dynamic, synchronous_mode: true };
const syncReplica = () => replicaView({ dynamic: syncDynamic, cluster: cluster({ sync: { leader: 'm1', sync_standby: ['m2'], version: 1 } }) });
const standbyLeader = () => view({ pg: pgReplica, role: 'standby_leader' });

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
  ['sync replica', syncReplica, '/sync', 200],
  ['sync replica', syncReplica, '/synchronous', 200],
  ['sync replica', syncReplica, '/async', 503],
  ['sync replica', syncReplica, '/read-only-sync', 200],
  ['sync key but synchronous_mode off', () => replicaView({ cluster: cluster({ sync: { leader: 'm1', sync_standby: ['m2'], version: 1 } }) }), '/sync', 503],
  ['async replica', replicaView, '/asynchronous', 200],
  ['async replica', replicaView, '/read-only-sync', 503],
  ['primary', view, '/read-only-sync', 200],
  ['replica without a store view', () => replicaView({ cluster: null }), '/async', 503],
  ['replica without a store view', () => replicaView({ cluster: null }), '/readiness', 503],
  ['replica without a store view', () => replicaView({ cluster: null }), '/replica', 200],
  ['replica, lag within 10MB', () => replicaView({ cluster: cluster({ status: { optime: 100 + 10 * 1024 * 1024 } }) }), '/replica?lag=10MB', 200],
  ['replica, lag just over 10MB', () => replicaView({ cluster: cluster({ status: { optime: 101 + 10 * 1024 * 1024 } }) }), '/replica?lag=10MB', 503],
  ['replica, lag from the leader member when no optime', () => replicaView({ cluster: cluster({ members: [member('m1', { role: 'master', xlog_location: 5000 }), member('m2')] }) }), '/replica?lag=100', 503],
  ['lagging replica, no lag limit', () => replicaView({ cluster: cluster({ status: { optime: 10 ** 12 } }) }), '/replica', 200],
  ['lagging replica', () => replicaView({ cluster: cluster({ status: { optime: 500 } }) }), '/read-only?lag=10', 503],
  ['lagging replica', () => replicaView({ cluster: cluster({ status: { optime: 500 } }) }), '/async?lag=10', 503],
  ['replica with noloadbalance', () => replicaView({ config: { ...baseConfig, tags: { noloadbalance: true } } }), '/read-only', 503],
  ['replica with noloadbalance: false', () => replicaView({ config: { ...baseConfig, tags: { noloadbalance: false } } }), '/replica', 200],
  ['replica, tag absent', replicaView, '/replica?tag_zone=', 503],
  ['replica, boolean tag', () => replicaView({ config: { ...baseConfig, tags: { nofailover: true } } }), '/replica?tag_nofailover=true', 200],
  ['replica, tag differs on /health', () => replicaView({ config: { ...baseConfig, tags: { zone: 'a' } } }), '/health?tag_zone=b', 503],
  ['primary ignores tags', view, '/primary?tag_zone=b', 200],
  ['primary', view, '/async', 503],
  ['primary', view, '/sync', 503],
  ['paused', () => view({ paused: true }), '/primary', 200],
  ['paused replica', () => replicaView({ paused: true }), '/replica', 200],
  ['paused, no store view, primary PG', () => view({ paused: true, cluster: null, isLeader: false }), '/primary', 200],
  ['paused, no store view, primary PG', () => view({ paused: true, cluster: null, isLeader: false }), '/leader', 200],
  ['paused, no store view, replica PG', () => replicaView({ paused: true, cluster: null }), '/primary', 503],
  ['not paused, no store view, primary PG', () => view({ cluster: null, isLeader: false }), '/primary', 503],
  ['leader whose PG is still in recovery', () => view({ pg: pgReplica }), '/primary', 503],
  ['leader whose PG is still in recovery', () => view({ pg: pgReplica }), '/leader', 200],
  ['standby leader', standbyLeader, '/standby-leader', 200],
  ['standby leader', standbyLeader, '/standby_leader', 200],
  ['standby leader', standbyLeader, '/leader', 200],
  ['standby leader', standbyLeader, '/primary', 503],
  ['standby leader', standbyLeader, '/replica', 503],
  ['standby leader', standbyLeader, '/read-only', 200],
  ['replica', replicaView, '/standby-leader', 503],
  ['stopped', () => replicaView({ pg: pgStopped, state: 'stopped' }), '/read-only', 503],
  ['stopped', () => replicaView({ pg: pgStopped, state: 'stopped' }), '/async', 503],
  ['stopped leader', () => view({ pg: pgStopped, state: 'stopped' }), '/primary', 503],
  ['stopped leader', () => view({ pg: pgStopped, state: 'stopped' }), '/readiness', 200],
  ['starting replica', () => replicaView({ state: 'starting' }), '/replica', 503],
  ['starting replica', () => replicaView({ state: 'starting' }), '/health', 503],
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


test('HEAD and OPTIONS return the same code as GET, without a body (router level)', async () => {
  for (const [mk, path] of [[view, '/primary'], [replicaView, '/primary'], [replicaView, '/replica'], [view, '/replica?lag=1'], [view, '/patroni'], [replicaView, '/health']] as const) {
    const get = await call(mk(), 'GET', path);
    for (const m of ['HEAD', 'OPTIONS']) {
      const r = await call(mk(), m, path);
      assert.equal(r.status, get.status, `${m} ${path}`);
      assert.equal((r as { body?: unknown }).body, undefined, `${m} ${path} has no body`);
      assert.equal((r as { text?: unknown }).text, undefined);
    }
  }
});

test('/patroni details: sync_standby, replication rows, filtered tags, pending restart, defaults', async () => {
  const sync = await call(syncReplica(), 'GET', '/patroni');
  assert.equal((sync.body as Record<string, unknown>).sync_standby, true);
  assert.equal(((await call(replicaView(), 'GET', '/patroni')).body as Record<string, unknown>).sync_standby, undefined);

  const row = { usename: 'rep', application_name: 'm2', client_addr: '127.0.0.1', state: 'streaming', sync_state: 'async', sync_priority: 0, flush_lsn: 90, replay_lsn: 80 };
  const p = view({
    pg: { ...pgPrimary, replication: [row], pendingRestart: true, postmasterStartTime: '2024-01-01T00:00:00.000Z' },
    config: { ...baseConfig, tags: { nofailover: false, noloadbalance: true, zone: 'a' } },
    dcsLastSeen: null,
  });
  const b = (await call(p, 'GET', '/patroni')).body as Record<string, unknown>;
  assert.deepEqual(b.replication, [{ usename: 'rep', application_name: 'm2', client_addr: '127.0.0.1', state: 'streaming', sync_state: 'async', sync_priority: 0 }]);
  assert.deepEqual(b.tags, { noloadbalance: true, zone: 'a' }, 'false boolean tags are dropped as Patroni does');
  assert.equal(b.pending_restart, true);
  assert.equal(b.postmaster_start_time, '2024-01-01T00:00:00.000Z');
  assert.equal(b.server_version, 150000);
  assert.equal(b.dcs_last_seen, 0);
  assert.equal(b.state, 'running');

  const stopped = (await call(replicaView({ pg: pgStopped, state: 'stopped', cluster: null }), 'GET', '/patroni')).body as Record<string, unknown>;
  assert.deepEqual(Object.keys(stopped).sort(), ['cluster_unlocked', 'database_system_identifier', 'dcs_last_seen', 'patroni', 'role', 'state']);
  assert.equal(stopped.state, 'stopped');
  assert.equal(stopped.role, 'replica');
  assert.equal(stopped.cluster_unlocked, true);
});

test('/liveness: before the first loop the API start time counts; replicas get 2*ttl; no body', async () => {
  const fresh = view({ lastLoopAt: null });
  const b = backend(fresh, cluster(), 100_000);
  assert.equal((await route({ method: 'GET', path: '/liveness', query: new URLSearchParams(), headers: {}, body: '' }, b, { startedAt: 80_000 })).status, 200);
  assert.equal((await route({ method: 'GET', path: '/liveness', query: new URLSearchParams(), headers: {}, body: '' }, b, { startedAt: 60_000 })).status, 503);
  const r = replicaView();
  const dead = await call(r, 'GET', '/liveness', { b: backend(r, cluster(), 1000 + 61_000) });
  assert.equal(dead.status, 503);
  assert.equal((dead as { body?: unknown }).body, undefined);
});

test('/history reads the store afresh', async () => {
  const fresh = cluster({ history: [[1, 25_000_000, 'no recovery target specified', '2024-01-01T00:00:00+00:00', 'm2']] });
  const r = await call(view(), 'GET', '/history', { b: backend(view(), fresh) });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, [[1, 25_000_000, 'no recovery target specified', '2024-01-01T00:00:00+00:00', 'm2']]);
  assert.equal((await call(view(), 'GET', '/history', { b: backend(view(), new Error('x')) })).status, 503);
});

test('/cluster of a standby cluster names the standby leader', async () => {
  const r = await call(standbyLeader(), 'GET', '/cluster');
  assert.equal((r.body as { members: Array<{ role: string }> }).members[0]!.role, 'standby_leader');
});

function metric(text: string, name: string): string {
  const m = new RegExp(`^${name}\\{scope="demo"\\} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} present`);
  return m[1]!;
}

test('/metrics: every Patroni 3.0.2 metric, with HELP and TYPE, and values from the view', async () => {
  const names = [
    'version', 'postgres_running', 'postmaster_start_time', 'master', 'primary', 'xlog_location', 'standby_leader', 'replica', 'sync_standby',
    'xlog_received_location', 'xlog_replayed_location', 'xlog_replayed_timestamp', 'xlog_paused', 'postgres_server_version', 'cluster_unlocked',
    'failsafe_mode_is_active', 'postgres_timeline', 'dcs_last_seen', 'pending_restart', 'is_paused',
  ].map((n) => `patroni_${n}`);
  const p = (await call(view({ version: '3.0.2', pg: { ...pgPrimary, postmasterStartTime: '2024-01-01T00:00:10.500Z', pendingRestart: true } }), 'GET', '/metrics')) as { text: string; headers?: Record<string, string> };
  assert.match(p.headers?.['Content-Type'] ?? '', /^text\/plain/);
  for (const n of names) {
    assert.match(p.text, new RegExp(`^# HELP ${n} `, 'm'));
    assert.match(p.text, new RegExp(`^# TYPE ${n} (gauge|counter)$`, 'm'));
    metric(p.text, n);
  }
  assert.equal(metric(p.text, 'patroni_version'), '030002');
  assert.equal(metric(p.text, 'patroni_postgres_running'), '1');
  assert.equal(metric(p.text, 'patroni_postmaster_start_time'), '1704067210.5');
  assert.equal(metric(p.text, 'patroni_master'), '1');
  assert.equal(metric(p.text, 'patroni_postgres_server_version'), '150000');
  assert.equal(metric(p.text, 'patroni_cluster_unlocked'), '0');
  assert.equal(metric(p.text, 'patroni_dcs_last_seen'), '1700000000');
  assert.equal(metric(p.text, 'patroni_pending_restart'), '1');
  assert.equal(metric(p.text, 'patroni_is_paused'), '0');

  const r = (await call(view({ ...syncReplica(), pg: { ...pgReplica, receiveLsn: 300, replayLsn: 200 }, paused: true, cluster: cluster({ leader: null, sync: { leader: 'm1', sync_standby: ['m2'], version: 1 } }) }), 'GET', '/metrics')) as { text: string };
  assert.equal(metric(r.text, 'patroni_version'), '000100');
  assert.equal(metric(r.text, 'patroni_primary'), '0');
  assert.equal(metric(r.text, 'patroni_xlog_location'), '0');
  assert.equal(metric(r.text, 'patroni_replica'), '1');
  assert.equal(metric(r.text, 'patroni_sync_standby'), '1');
  assert.equal(metric(r.text, 'patroni_xlog_received_location'), '300');
  assert.equal(metric(r.text, 'patroni_xlog_replayed_location'), '200');
  assert.equal(metric(r.text, 'patroni_cluster_unlocked'), '1');
  assert.equal(metric(r.text, 'patroni_is_paused'), '1');

  const s = (await call(replicaView({ pg: pgStopped, state: 'stopped' }), 'GET', '/metrics')) as { text: string };
  assert.equal(metric(s.text, 'patroni_postgres_running'), '0');
  assert.equal(metric(s.text, 'patroni_replica'), '0');
  assert.equal(metric(s.text, 'patroni_postgres_timeline'), '0');
  assert.equal(metric(s.text, 'patroni_postgres_server_version'), '0');
  const sl = (await call(standbyLeader(), 'GET', '/metrics')) as { text: string };
  assert.equal(metric(sl.text, 'patroni_standby_leader'), '1');
  assert.equal(metric(sl.text, 'patroni_replica'), '0');
});

test('405 for a known path with the wrong method, 404 for unknown unsafe paths, 400 for a non-object body', async () => {
  const getReload = await call(view(), 'GET', '/reload');
  assert.equal(getReload.status, 405);
  assert.equal((await call(view(), 'POST', '/patroni')).status, 405);
  assert.equal((await call(view(), 'DELETE', '/primary')).status, 405);
  assert.equal((await call(view(), 'POST', '/nothing')).status, 404);
  assert.equal((await call(view(), 'POST', '/reload', { body: '[1,2]' })).status, 400);
  assert.equal((await call(view(), 'POST', '/reload', { body: '{"a":1}' })).status, 202);
  assert.equal((await call(view(), 'GET', '/replica?lag=-5')).status, 400);
  assert.match(String(((await call(view(), 'GET', '/replica?lag=abc')).body as { message: string }).message), /lag/);
});

test('without restapi.authentication unsafe methods need no credentials', async () => {
  const b = backend(view());
  const r = await call(view(), 'POST', '/reload', { b });
  assert.equal(r.status, 202);
  assert.equal((r as { text?: string }).text, 'reload scheduled');
  assert.equal(b.reloads, 1);
});
