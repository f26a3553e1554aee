/**
 * The REST half of failsafe mode: POST /failsafe (Patroni's codes: 200 Accepted, 500 when we run as
 * primary ourselves, 502 when failsafe mode is off, 401 without credentials), GET /failsafe, the
 * failsafe_mode_is_active flag and metric — and the leader's client against the real server on a socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { postFailsafe as post } from '../../src/api/failsafe-client.js';
import { parseFailsafeRequest } from '../../src/api/failsafe.js';
import { route } from '../../src/api/routes.js';
import { createApiServer } from '../../src/api/server.js';
import type { ApiBackend, ApiRequest, ApiView } from '../../src/api/types.js';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { DaemonConfig } from '../../src/config/types.js';
import type { FailsafeLeader } from '../../src/dcs/types.js';
import { silentLogger } from '../../src/util/log.js';
import { cluster, memberConfig, pgPrimary, pgReplica } from '../helpers/ha-fixtures.js';

const ping: FailsafeLeader = { name: 'm1', conn_url: 'postgres://127.0.0.1:5001/postgres', api_url: 'http://127.0.0.1:8001/patroni' };
const failsafeOn = effectiveDynamicConfig({ failsafe_mode: true }, {}).dynamic;
const failsafeOff = effectiveDynamicConfig(null, {}).dynamic;
const auth = { username: 'admin', password: 's3cret' };

function view(over: Partial<ApiView> = {}): ApiView {
  return {
    name: 'm2',
    scope: 'demo',
    version: '0.1.0',
    config: memberConfig,
    dynamic: failsafeOn,
    cluster: cluster(),
    dcsLastSeen: 1,
    pg: pgReplica,
    isLeader: false,
    lastLoopAt: 1,
    lastAction: null,
    state: 'running',
    role: 'replica',
    paused: false,
    ...over,
  };
}

function backend(v: ApiView, accepted: FailsafeLeader[] = []): ApiBackend {
  return {
    view: () => v,
    loadCluster: async () => cluster(),
    now: () => 0,
    acceptFailsafe: (l) => void accepted.push(l),
    failsafeTopology: () => v.cluster?.failsafe ?? null,
  };
}

const req = (method: string, path: string, body = '', headers: ApiRequest['headers'] = {}): ApiRequest => ({ method, path, query: new URLSearchParams(), headers, body });
const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

test('POST /failsafe on a replica in failsafe mode: 200 Accepted, the leader is remembered', async () => {
  const accepted: FailsafeLeader[] = [];
  const res = await route(req('POST', '/failsafe', JSON.stringify({ ...ping, slots: { m2: 123, bad: 'x' } })), backend(view(), accepted));
  assert.deepEqual(res, { status: 200, text: 'Accepted' });
  assert.deepEqual(accepted, [{ ...ping, slots: { m2: 123 } }]);
});

test('POST /failsafe refusals: failsafe mode off 502, we are the primary 500, bad body 400 — and nothing remembered', async () => {
  const accepted: FailsafeLeader[] = [];
  const off = await route(req('POST', '/failsafe', JSON.stringify(ping)), backend(view({ dynamic: failsafeOff }), accepted));
  assert.equal(off.status, 502);
  const primary = await route(req('POST', '/failsafe', JSON.stringify(ping)), backend(view({ pg: pgPrimary, role: 'master' }), accepted));
  assert.deepEqual(primary, { status: 500, text: 'Running as a leader' });
  for (const body of ['', '[]', '{}', 'not json', JSON.stringify({ name: 'm1', conn_url: 'postgres://x/postgres' })]) {
    assert.equal((await route(req('POST', '/failsafe', body), backend(view(), accepted))).status, 400, `body ${body}`);
  }
  const noHook = await route(req('POST', '/failsafe', JSON.stringify(ping)), { view: () => view(), loadCluster: async () => cluster(), now: () => 0 });
  assert.equal(noHook.status, 502, 'a backend that cannot remember pings never acknowledges one');
  assert.deepEqual(accepted, []);
});

test('POST /failsafe is an unsafe method: restapi.authentication applies', async () => {
  const config: DaemonConfig = { ...memberConfig, restapi: { ...memberConfig.restapi, authentication: auth } };
  const accepted: FailsafeLeader[] = [];
  const b = backend(view({ config }), accepted);
  assert.equal((await route(req('POST', '/failsafe', JSON.stringify(ping)), b)).status, 401);
  assert.equal((await route(req('POST', '/failsafe', JSON.stringify(ping), basic('admin', 'wrong')), b)).status, 401);
  assert.equal((await route(req('POST', '/failsafe', JSON.stringify(ping), basic('admin', 's3cret')), b)).status, 200);
  assert.equal(accepted.length, 1);
  assert.equal((await route(req('GET', '/failsafe'), backend(view({ config, cluster: cluster({ failsafe: { m1: 'u' } }) })))).status, 200, 'GET stays open');
});

test('GET /failsafe: the topology, or 502 when there is none', async () => {
  const t = { m1: 'http://127.0.0.1:8001/patroni', m2: 'http://127.0.0.1:8002/patroni' };
  assert.deepEqual(await route(req('GET', '/failsafe'), backend(view({ cluster: cluster({ failsafe: t }) }))), { status: 200, body: t });
  assert.equal((await route(req('GET', '/failsafe'), backend(view()))).status, 502);
});

test('/patroni and /metrics show failsafe_mode_is_active only while it is', async () => {
  const on = await route(req('GET', '/patroni'), backend(view({ failsafeActive: true })));
  assert.equal((on.body as Record<string, unknown>).failsafe_mode_is_active, true);
  const offBody = (await route(req('GET', '/patroni'), backend(view()))).body as Record<string, unknown>;
  assert.equal('failsafe_mode_is_active' in offBody, false, 'absent, as Patroni');
  const metrics = await route(req('GET', '/metrics'), backend(view({ failsafeActive: true })));
  assert.match(metrics.text ?? '', /^patroni_failsafe_mode_is_active\{scope="demo"\} 1$/m);
});

test('parseFailsafeRequest: the three strings are required, slots optional', () => {
  assert.deepEqual(parseFailsafeRequest({ ...ping }), ping);
  assert.equal(typeof parseFailsafeRequest({ ...ping, api_url: 7 }), 'string');
});

test('the leader\'s POST /failsafe client against the real server: Accepted with credentials, refused otherwise', async () => {
  const config: DaemonConfig = { ...memberConfig, restapi: { ...memberConfig.restapi, listen: '127.0.0.1:0', authentication: auth } };
  const accepted: FailsafeLeader[] = [];
  let v = view({ config });
  const server = createApiServer({ config, log: silentLogger(), backend: { ...backend(v, accepted), view: () => v } });
  const { port } = await server.listen();
  try {
    const url = `http://127.0.0.1:${port}/patroni`;
    assert.deepEqual(await post(url, ping, 2000, auth), { ok: true, detail: '200 Accepted' });
    assert.deepEqual(accepted, [ping]);
    const noAuth = await post(url, ping, 2000);
    assert.equal(noAuth.ok, false);
    assert.match(noAuth.detail, /^401/);
    v = view({ config, pg: pgPrimary, role: 'master' });
    assert.deepEqual(await post(url, ping, 2000, auth), { ok: false, detail: '500 Running as a leader' });
    const closed = await post('http://127.0.0.1:1/patroni', ping, 2000);
    assert.equal(closed.ok, false, 'nobody listening');
  } finally {
    await server.close();
  }
});
