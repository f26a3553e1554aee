/**
 * The management half of the REST API on a fake backend: Patroni's validations, codes and sentences,
 * and — for every refusal — that nothing was written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { route } from '../../src/api/routes.js';
import { parseSchedule, postgresVersionToInt, restartFilters } from '../../src/api/manage.js';
import type { ApiBackend, ApiResponse, ApiView, RestartFilters } from '../../src/api/types.js';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { Cluster } from '../../src/dcs/types.js';
import { cluster, memberConfig, pgPrimary } from '../helpers/ha-fixtures.js';

const NOW = new Date('2026-11-25T12:00:00Z');
const storedConfig = { ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { parameters: { max_connections: 100 } } };

function view(over: Partial<ApiView> = {}): ApiView {
  return {
    name: 'm1',
    scope: 'demo',
    version: '0.1.0',
    config: memberConfig,
    dynamic: effectiveDynamicConfig(null, {}).dynamic,
    cluster: null,
    dcsLastSeen: 1,
    pg: pgPrimary,
    isLeader: true,
    lastLoopAt: 1,
    lastAction: null,
    state: 'running',
    role: 'master',
    paused: false,
    ...over,
  };
}

/** A backend over a mutable cluster; `statuses` answers GET /patroni of m2/m3 by api_url port. */
class FakeBackend implements ApiBackend {
  c: Cluster;
  writes: string[] = [];
  woken = 0;
  clock = 0;
  statuses = new Map<string, Record<string, unknown> | null>([
    ['8002', { state: 'running', role: 'replica' }],
    ['8003', { state: 'running', role: 'replica' }],
  ]);
  /** After the failover key is written: what the store shows next. */
  onFailover: ((c: Cluster) => Cluster) | null = null;
  casFails = false;
  restarts: RestartFilters[] = [];
  scheduled: (RestartFilters & { schedule: string }) | null = null;
  restartResult = { ok: true, message: 'restarted successfully' };
  reinitAnswer: string | null = null;

  constructor(c: Partial<Cluster> = {}, private readonly v: ApiView = view()) {
    this.c = cluster({ config: { value: storedConfig, version: 3 }, ...c });
  }
  view = () => this.v;
  loadCluster = async () => this.c;
  now = () => this.clock;
  wake = () => void this.woken++;
  sleep = async (ms: number) => void (this.clock += ms);
  wallNow = () => NOW;
  memberStatus = async (url: string) => this.statuses.get(new URL(url).port) ?? null;
  setFailover = async (value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null) => {
    if (this.casFails) return false;
    this.writes.push(`failover ${JSON.stringify(value)} @${version}`);
    this.c = { ...this.c, failover: { ...value, version: 9 } };
    if (this.onFailover) this.c = this.onFailover(this.c);
    return true;
  };
  deleteFailover = async (version: number) => {
    this.writes.push(`delete failover @${version}`);
    this.c = { ...this.c, failover: null };
    return true;
  };
  setConfig = async (value: Record<string, unknown>, version: number | null) => {
    if (this.casFails) return false;
    this.writes.push(`config ${JSON.stringify(value)} @${version}`);
    return true;
  };
  restart = async (r: RestartFilters) => {
    this.restarts.push(r);
    return this.restartResult;
  };
  scheduleRestart = (r: RestartFilters & { schedule: string }) => {
    if (this.scheduled) return false;
    this.scheduled = r;
    return true;
  };
  cancelScheduledRestart = () => {
    const had = this.scheduled !== null;
    this.scheduled = null;
    return had;
  };
  reinitialize = async () => this.reinitAnswer;
}

/** Members m2, m3 with REST ports 8002/8003. */
function members(): Partial<Cluster> {
  const base = cluster();
  return {
    members: base.members.map((m) => ({ ...m, data: { ...m.data, api_url: `http://127.0.0.1:${8000 + Number(m.name.slice(1))}/patroni` } })),
  };
}

async function call(b: FakeBackend, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  const raw = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  return route({ method, path, query: new URLSearchParams(), headers: {}, body: raw }, b);
}

function message(r: ApiResponse): string {
  return r.text ?? String((r.body as { message?: string } | undefined)?.message);
}

// ---------- switchover / failover ----------

const refusals: Array<[string, string, unknown, number, RegExp, Partial<Cluster>?]> = [
  ['switchover without a leader', '/switchover', { candidate: 'm2' }, 400, /only from a specific leader/],
  ['failover without a candidate', '/failover', { leader: 'm1' }, 400, /only to a specific candidate/],
  ['switchover from a member that is not the leader', '/switchover', { leader: 'm2', candidate: 'm3' }, 412, /leader name does not match/],
  ['switchover to a member that does not exist', '/switchover', { leader: 'm1', candidate: 'm9' }, 412, /candidate does not exists/],
  ['switchover to the leader itself', '/switchover', { leader: 'm1', candidate: 'm1' }, 412, /already the leader/],
  ['scheduled switchover without a time zone', '/switchover', { leader: 'm1', scheduled_at: '2026-11-25T13:00' }, 400, /Timezone information is mandatory/],
  ['scheduled switchover in the past', '/switchover', { leader: 'm1', scheduled_at: '2026-11-25T11:00+00:00' }, 422, /in the past/],
  ['scheduled switchover at an unparsable time', '/switchover', { leader: 'm1', scheduled_at: 'tomorrow at noon' }, 422, /Unable to parse/],
  ['scheduled failover (no leader)', '/failover', { candidate: 'm2', scheduled_at: '2026-11-25T13:00+00:00' }, 400, /possible only from a specific leader/],
  ['switchover while paused without a candidate', '/switchover', { leader: 'm1' }, 400, /only to a specific candidate in a paused state/, { config: { value: { ...storedConfig, pause: true }, version: 3 } }],
  ['scheduled switchover while paused', '/switchover', { leader: 'm1', candidate: 'm2', scheduled_at: '2026-11-25T13:00+00:00' }, 400, /in the paused state/, { config: { value: { ...storedConfig, pause: true }, version: 3 } }],
  ['switchover in synchronous mode to a non-sync member', '/switchover', { leader: 'm1', candidate: 'm3' }, 412, /does not match with sync_standby/, { config: { value: { ...storedConfig, synchronous_mode: true }, version: 3 }, sync: { leader: 'm1', sync_standby: ['m2'], version: 1 } }],
  ['a body that is not JSON', '/switchover', '{leader: m1', 400, /not valid JSON/],
  ['a leader that is not a string', '/switchover', { leader: 5 }, 400, /leader must be a string/],
];

for (const [name, path, body, status, re, over] of refusals) {
  test(`POST ${path}: ${name} → ${status}, nothing written`, async () => {
    const b = new FakeBackend({ ...members(), ...over });
    const r = await call(b, 'POST', path, body);
    assert.equal(r.status, status, message(r));
    assert.match(message(r), re);
    assert.deepEqual(b.writes, []);
  });
}

test('POST /switchover to an unhealthy candidate → 412 "no good candidates", nothing written', async () => {
  const b = new FakeBackend(members());
  b.statuses.set('8002', null);
  const r = await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm2' });
  assert.equal(r.status, 412);
  assert.match(message(r), /no good candidates/);
  assert.deepEqual(b.writes, []);
});

test('POST /switchover to a candidate tagged nofailover → 412', async () => {
  const b = new FakeBackend(members());
  b.statuses.set('8002', { state: 'running', role: 'replica', tags: { nofailover: true } });
  assert.equal((await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm2' })).status, 412);
});

test('POST /switchover: writes the failover key, wakes the loop, answers once the candidate holds the lock', async () => {
  const b = new FakeBackend(members());
  let polls = 0;
  b.loadCluster = async () => (++polls > 3 && b.c.failover ? { ...b.c, leader: { name: 'm2', version: 5 }, failover: null } : b.c);
  const r = await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm2' });
  assert.equal(r.status, 200, message(r));
  assert.equal(r.text, 'Successfully switched over to "m2"');
  assert.deepEqual(b.writes, ['failover {"leader":"m1","member":"m2"} @null']);
  assert.equal(b.woken, 1);
});

test('POST /switchover in a standby cluster: synchronous_mode is ignored, the candidate need not be a sync standby', async () => {
  const b = new FakeBackend({ ...members(), config: { value: { ...storedConfig, synchronous_mode: true, standby_cluster: { host: '10.0.0.9', port: 5432 } }, version: 3 } });
  let polls = 0;
  b.loadCluster = async () => (++polls > 3 && b.c.failover ? { ...b.c, leader: { name: 'm3', version: 5 }, failover: null } : b.c);
  const r = await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm3' });
  assert.equal(r.status, 200, message(r));
  assert.deepEqual(b.writes, ['failover {"leader":"m1","member":"m3"} @null']);
});

test('POST /failover: the cluster ends with another leader than asked → 200 saying so', async () => {
  const b = new FakeBackend(members());
  b.onFailover = (c) => ({ ...c, leader: { name: 'm3', version: 5 }, failover: null });
  const r = await call(b, 'POST', '/failover', { candidate: 'm2' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'Failed over to "m3" instead of "m2"');
});

test('POST /switchover: the leader cleared the key without handing over → 503 Switchover failed', async () => {
  const b = new FakeBackend(members());
  b.onFailover = (c) => ({ ...c, failover: null });
  const r = await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm2' });
  assert.equal(r.status, 503);
  assert.match(message(r), /Switchover failed/);
});

test('POST /switchover: nothing happens within the poll window → 503 status unknown', async () => {
  const b = new FakeBackend(members());
  const r = await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm2' });
  assert.equal(r.status, 503);
  assert.match(message(r), /status unknown/);
  assert.ok(b.clock >= 20_000, 'polled for 2 × max(10, loop_wait) s');
});

test('POST /switchover: the store refuses the write → 503', async () => {
  const b = new FakeBackend(members());
  b.casFails = true;
  const r = await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm2' });
  assert.equal(r.status, 503);
  assert.match(message(r), /failed to write switchover key/);
});

test('POST /switchover scheduled → 202, key with the time in UTC; DELETE cancels it', async () => {
  const b = new FakeBackend(members());
  const r = await call(b, 'POST', '/switchover', { leader: 'm1', candidate: 'm2', scheduled_at: '2026-11-25T14:30:00+01:00' });
  assert.equal(r.status, 202);
  assert.equal(r.text, 'Switchover scheduled');
  assert.deepEqual(b.writes, ['failover {"leader":"m1","member":"m2","scheduled_at":"2026-11-25T13:30:00.000+00:00"} @null']);
  const d = await call(b, 'DELETE', '/switchover');
  assert.equal(d.status, 200);
  assert.equal(b.writes.at(-1), 'delete failover @9');
  assert.equal((await call(b, 'DELETE', '/switchover')).status, 404);
});

// ---------- restart / reinitialize ----------

test('POST /restart: filters pass through; a failure is 503 with the reason', async () => {
  const b = new FakeBackend();
  const ok = await call(b, 'POST', '/restart', { role: 'primary', postgres_version: '16.1', restart_pending: true, timeout: 30 });
  assert.equal(ok.status, 200);
  assert.deepEqual(b.restarts, [{ role: 'primary', postgresVersionNum: 160001, pendingOnly: true, timeoutS: 30 }]);
  b.restartResult = { ok: false, message: 'restart conditions are not satisfied' };
  const no = await call(b, 'POST', '/restart');
  assert.equal(no.status, 503);
  assert.match(message(no), /conditions are not satisfied/);
});

const restartRefusals: Array<[unknown, number, RegExp]> = [
  [{ role: 'leader' }, 400, /either primary or replica/],
  [{ postgres_version: 'fifteen' }, 400, /Invalid PostgreSQL version/],
  [{ timeout: -1 }, 400, /positive number of seconds/],
  [{ when: 'now' }, 400, /Unknown filter for the scheduled restart: when/],
  [{ schedule: '2026-11-25T10:00+00:00' }, 422, /in the past/],
];
for (const [body, status, re] of restartRefusals) {
  test(`POST /restart ${JSON.stringify(body)} → ${status}, nothing restarted`, async () => {
    const b = new FakeBackend();
    const r = await call(b, 'POST', '/restart', body);
    assert.equal(r.status, status, message(r));
    assert.match(message(r), re);
    assert.deepEqual(b.restarts, []);
    assert.equal(b.scheduled, null);
  });
}

test('POST /restart scheduled → 202; a second → 409; DELETE /restart → 200 then 404', async () => {
  const b = new FakeBackend();
  assert.equal((await call(b, 'POST', '/restart', { schedule: '2026-11-25T13:00:00Z' })).status, 202);
  assert.equal(b.scheduled?.schedule, '2026-11-25T13:00:00.000+00:00');
  assert.equal((await call(b, 'POST', '/restart', { schedule: '2026-11-25T14:00:00Z' })).status, 409);
  assert.equal((await call(b, 'DELETE', '/restart')).status, 200);
  assert.equal((await call(b, 'DELETE', '/restart')).status, 404);
});

test('POST /restart scheduled while paused → 500 as Patroni', async () => {
  const b = new FakeBackend({}, view({ paused: true }));
  const r = await call(b, 'POST', '/restart', { schedule: '2026-11-25T13:00:00Z' });
  assert.equal(r.status, 500);
  assert.equal(b.scheduled, null);
});

test('POST /reinitialize: started → 200; refused → 503 with the reason', async () => {
  const b = new FakeBackend();
  assert.equal((await call(b, 'POST', '/reinitialize', { force: true })).status, 200);
  b.reinitAnswer = 'I am the leader, can not reinitialize';
  const r = await call(b, 'POST', '/reinitialize');
  assert.equal(r.status, 503);
  assert.match(message(r), /I am the leader/);
});

// ---------- dynamic config ----------

test('PATCH /config merges (null deletes), CAS on the stored version, wakes the loop', async () => {
  const b = new FakeBackend();
  const r = await call(b, 'PATCH', '/config', { loop_wait: 5, retry_timeout: null, postgresql: { parameters: { work_mem: '8MB' } } });
  assert.equal(r.status, 200);
  const expected = { ttl: 30, loop_wait: 5, postgresql: { parameters: { max_connections: 100, work_mem: '8MB' } } };
  assert.deepEqual(r.body, expected);
  assert.deepEqual(b.writes, [`config ${JSON.stringify(expected)} @3`]);
  assert.equal(b.woken, 1);
});

test('PATCH /config: a concurrent change → 409; no config yet → 503; a bad value → 400 naming it', async () => {
  const conflict = new FakeBackend();
  conflict.casFails = true;
  assert.equal((await call(conflict, 'PATCH', '/config', { loop_wait: 5 })).status, 409);
  const none = new FakeBackend({ config: null });
  assert.equal((await call(none, 'PATCH', '/config', { loop_wait: 5 })).status, 503);
  const bad = new FakeBackend();
  const r = await call(bad, 'PATCH', '/config', { ttl: 'soon' });
  assert.equal(r.status, 400);
  assert.match(message(r), /ttl/);
  assert.deepEqual(bad.writes, []);
});

test('PUT /config replaces the whole config', async () => {
  const b = new FakeBackend();
  const r = await call(b, 'PUT', '/config', { ttl: 20, loop_wait: 2, retry_timeout: 3 });
  assert.equal(r.status, 200);
  assert.deepEqual(b.writes, ['config {"ttl":20,"loop_wait":2,"retry_timeout":3} @3']);
});

test('management endpoints need the configured credentials', async () => {
  const secured = { ...memberConfig, restapi: { ...memberConfig.restapi, authentication: { username: 'u', password: 'p' } } };
  const b = new FakeBackend(members(), view({ config: secured }));
  for (const [method, path] of [['POST', '/switchover'], ['POST', '/restart'], ['PATCH', '/config'], ['POST', '/reinitialize'], ['DELETE', '/restart']] as const) {
    assert.equal((await call(b, method, path, { leader: 'm1' })).status, 401, `${method} ${path}`);
  }
  assert.deepEqual(b.writes, []);
});

// ---------- pure helpers ----------

test('postgresVersionToInt follows Patroni', () => {
  assert.equal(postgresVersionToInt('15.4'), 150004);
  assert.equal(postgresVersionToInt('16'), 160000);
  assert.equal(postgresVersionToInt('9.6.3'), 90603);
  assert.equal(postgresVersionToInt('9'), null);
  assert.equal(postgresVersionToInt('15.4.1'), null);
  assert.equal(postgresVersionToInt('x'), null);
});

test('parseSchedule: zone required, normalised to UTC', () => {
  assert.equal(parseSchedule('2026-11-25T13:30+0100', 'restart', NOW), '2026-11-25T12:30:00.000+00:00');
  assert.equal(parseSchedule('2026-11-25 12:30:00Z', 'restart', NOW), '2026-11-25T12:30:00.000+00:00');
  assert.throws(() => parseSchedule('2026-11-25T12:30', 'restart', NOW), /Timezone/);
  assert.throws(() => restartFilters({ schedule: 5 }, NOW), /Unable to parse/);
});

test('GET /patroni shows a scheduled restart (schedule and filters), as Patroni', async () => {
  const b = new FakeBackend({}, view({ scheduledRestart: { schedule: '2026-11-25T13:00:00.000+00:00', restart_pending: true, postmaster_start_time: 'x' } }));
  const r = await call(b, 'GET', '/patroni');
  assert.deepEqual((r.body as { scheduled_restart?: unknown }).scheduled_restart, { schedule: '2026-11-25T13:00:00.000+00:00', restart_pending: true });
});
