/**
 * The verbs against fakes of their ports: a store holding one snapshot, members' REST APIs as a
 * function, scripted terminal answers and a clock that only moves when slept on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CtlContext } from '../../src/ctl/context.js';
import { RequestError, type CtlHttp, type HttpResponse } from '../../src/ctl/http.js';
import type { CtlStore } from '../../src/ctl/store.js';
import { createTerminal, scriptedLines } from '../../src/ctl/terminal.js';
import { editConfig, togglePause } from '../../src/ctl/verbs/config.js';
import { flush } from '../../src/ctl/verbs/flush.js';
import { reinit, reload, restart } from '../../src/ctl/verbs/members.js';
import { dsn, history, list, showConfig } from '../../src/ctl/verbs/read.js';
import { remove } from '../../src/ctl/verbs/remove.js';
import { switchover } from '../../src/ctl/verbs/switchover.js';
import { buildCluster, type RawNode } from '../../src/dcs/codec.js';
import type { Cluster } from '../../src/dcs/types.js';
import type { Clock } from '../../src/util/clock.js';
import { ExitError } from '../../src/util/errors.js';

interface Call {
  member: string;
  method: string;
  endpoint: string;
  body?: unknown;
}

type Handler = (c: Call) => HttpResponse | Error;

function node(name: string, port: number, data: Record<string, unknown> = {}): RawNode {
  return {
    key: `members/${name}`,
    value: JSON.stringify({ conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://${name}:8008/patroni`, state: 'running', role: 'replica', xlog_location: 100, timeline: 1, ...data }),
    version: 7,
  };
}

function snapshot(opts: { config?: Record<string, unknown>; leader?: string | null; extra?: RawNode[] } = {}): Cluster {
  const leader = opts.leader === undefined ? 'm1' : opts.leader;
  return buildCluster([
    { key: 'config', value: JSON.stringify(opts.config ?? { ttl: 20, loop_wait: 1 }), version: 42 },
    ...(leader ? [{ key: 'leader', value: leader, version: 3 }] : []),
    node('m1', 5432, { role: 'master' }),
    node('m2', 5433),
    node('m3', 5434, { tags: { nofailover: true } }),
    { key: 'history', value: JSON.stringify([[1, 100, 'no recovery target specified', '2026-01-01T00:00:00+00:00', 'm1']]), version: 1 },
    ...(opts.extra ?? []),
  ]);
}

function fakeClock(): Clock & { slept: number[] } {
  let t = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    wallNow: () => new Date(2026, 10, 25, 10, 0, 0),
    sleep: async (ms) => {
      slept.push(ms);
      t += ms;
    },
  };
}

interface Fake {
  ctx: CtlContext;
  calls: Call[];
  output: () => string;
  store: { config: Array<[Record<string, unknown>, number | null]>; failover: unknown[]; deleted: number };
  clock: ReturnType<typeof fakeClock>;
}

function fake(cluster: Cluster | (() => Cluster), handler: Handler = () => ({ status: 200, body: 'ok' }), answers: string[] = [], casResult = true): Fake {
  let out = '';
  const calls: Call[] = [];
  const store = { config: [] as Array<[Record<string, unknown>, number | null]>, failover: [] as unknown[], deleted: 0 };
  const s: CtlStore = {
    load: async () => (typeof cluster === 'function' ? cluster() : cluster),
    setConfig: async (v, version) => {
      store.config.push([v, version]);
      return casResult;
    },
    setFailover: async (v) => void store.failover.push(v),
    deleteCluster: async () => void store.deleted++,
    close: async () => undefined,
  };
  const http: CtlHttp = {
    request: async (apiUrl, method, endpoint, body) => {
      const c: Call = { member: new URL(apiUrl).hostname, method: method.toUpperCase(), endpoint, ...(body !== undefined ? { body } : {}) };
      calls.push(c);
      const r = handler(c);
      if (r instanceof Error) throw r;
      return r;
    },
  };
  const clock = fakeClock();
  const write = (t: string): void => void (out += t);
  const ctx: CtlContext = {
    scope: 'demo',
    store: s,
    http,
    term: createTerminal(write, scriptedLines(answers), async () => 'pause: true\n'),
    out: (t) => write(`${t}\n`),
    clear: () => write('<clear>'),
    clock,
    actionTimeoutMs: 60_000,
  };
  return { ctx, calls, output: () => out, store, clock };
}

async function exitCode(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: 0, message: '' };
  } catch (e) {
    if (e instanceof ExitError) return { code: e.code, message: e.message };
    throw e;
  }
}

const refused = (): RequestError => new RequestError('connect ECONNREFUSED');

// ---- switchover / failover

test('switchover, interactive: patronictl prompts and defaults, then POST /switchover to the leader', async () => {
  const f = fake(snapshot(), () => ({ status: 200, body: 'Successfully switched over to "m2"' }), ['', '', '', 'y']);
  await switchover(f.ctx, { action: 'switchover', force: false });
  const out = f.output();
  assert.match(out, /^Current cluster topology\n\+ Cluster: demo /);
  assert.ok(out.includes("Primary [m1]: Candidate ['m2'] []: When should the switchover take place (e.g. 2026-11-25T11:00 ) [now]: "), out);
  assert.ok(out.includes('Are you sure you want to switchover cluster demo, demoting current leader m1? [y/N]: '), out);
  // Piped answers are not echoed: the result follows the last question on its line, as with patronictl.
  assert.match(out, /\[y\/N\]: 2026-11-25 10:00:00\.00000 Successfully switched over to "m2"\n/);
  assert.deepEqual(f.calls, [{ member: 'm1', method: 'POST', endpoint: 'switchover', body: { leader: 'm1' } }]);
});

test('switchover: declined, unknown candidate, nofailover candidate, wrong leader, no leader', async () => {
  const no = fake(snapshot(), undefined, ['', 'm2', 'now', 'n']);
  assert.deepEqual(await exitCode(switchover(no.ctx, { action: 'switchover', force: false })), { code: 1, message: 'Aborting switchover' });
  assert.equal(no.calls.length, 0);
  const f = fake(snapshot());
  assert.deepEqual(await exitCode(switchover(f.ctx, { action: 'switchover', candidate: 'typo', force: true })), { code: 1, message: 'Member typo does not exist in cluster demo' });
  assert.match((await exitCode(switchover(f.ctx, { action: 'switchover', candidate: 'm3', force: true }))).message, /m3 is tagged nofailover/);
  assert.deepEqual(await exitCode(switchover(f.ctx, { action: 'switchover', leader: 'm2', force: true })), { code: 1, message: 'Member m2 is not the leader of cluster demo' });
  assert.deepEqual(await exitCode(switchover(f.ctx, { action: 'switchover', candidate: 'm1', force: true })), { code: 1, message: 'Switchover target and source are the same.' });
  assert.deepEqual(await exitCode(switchover(fake(snapshot({ leader: null })).ctx, { action: 'switchover', force: true })), { code: 1, message: 'This cluster has no leader' });
  assert.equal(f.calls.length, 0);
});

test('switchover --scheduled: sent as ISO with zone; a refusal exits 1 with the reason; paused refuses scheduling', async () => {
  const f = fake(snapshot(), () => ({ status: 422, body: 'Cannot schedule switchover in the past' }));
  const r = await exitCode(switchover(f.ctx, { action: 'switchover', candidate: 'm2', scheduled: '2020-01-01T00:00Z', force: true }));
  assert.deepEqual(r, { code: 1, message: 'Switchover failed, details: 422, Cannot schedule switchover in the past' });
  assert.deepEqual(f.calls[0]!.body, { leader: 'm1', candidate: 'm2', scheduled_at: '2020-01-01T00:00:00+00:00' });
  const json = fake(snapshot(), () => ({ status: 412, body: '{"message": "candidate name does not match with sync_standby"}' }));
  assert.equal((await exitCode(switchover(json.ctx, { action: 'switchover', candidate: 'm2', force: true }))).message, 'Switchover failed, details: 412, candidate name does not match with sync_standby');
  const paused = fake(snapshot({ config: { pause: true } }));
  assert.equal((await exitCode(switchover(paused.ctx, { action: 'switchover', scheduled: '2030-01-01T00:00Z', force: true }))).message, "Can't schedule switchover in the paused state");
});

test('switchover with no member reachable falls back to the failover key; a timeout does not', async () => {
  const f = fake(snapshot(), refused);
  await switchover(f.ctx, { action: 'switchover', candidate: 'm2', force: true });
  assert.match(f.output(), /Could not switchover using Patroni api, falling back to DCS/);
  assert.deepEqual(f.store.failover, [{ leader: 'm1', member: 'm2', scheduled_at: undefined }]);
  const t = fake(snapshot(), () => new RequestError('no answer within 60 s', true));
  assert.match((await exitCode(switchover(t.ctx, { action: 'switchover', candidate: 'm2', force: true }))).message, /may still happen/);
  assert.deepEqual(t.store.failover, []);
});

test('failover needs a candidate; it goes to POST /failover, or to the candidate when there is no leader', async () => {
  const f = fake(snapshot());
  assert.equal((await exitCode(switchover(f.ctx, { action: 'failover', force: true }))).message, 'Failover could be performed only to a specific candidate');
  await switchover(f.ctx, { action: 'failover', candidate: 'm2', force: true });
  assert.deepEqual(f.calls, [{ member: 'm1', method: 'POST', endpoint: 'failover', body: { leader: 'm1', candidate: 'm2' } }]);
  const noLeader = fake(snapshot({ leader: null }));
  await switchover(noLeader.ctx, { action: 'failover', candidate: 'm2', force: true });
  assert.deepEqual(noLeader.calls, [{ member: 'm2', method: 'POST', endpoint: 'failover', body: { candidate: 'm2' } }]);
});

// ---- restart / reload / reinit

test('restart --force: every member; a refusal is reported and exits 1 after trying all', async () => {
  const f = fake(snapshot(), (c) => (c.member === 'm2' ? { status: 503, body: 'restart failed' } : { status: 200, body: 'restarted successfully' }));
  const r = await exitCode(restart(f.ctx, { members: [], role: 'any', force: true, pending: true }));
  assert.deepEqual(r, { code: 1, message: 'restart failed for 1 of 3 member(s): m2' });
  assert.deepEqual(f.calls.map((c) => [c.member, c.endpoint, c.body]), [
    ['m1', 'restart', { restart_pending: true }],
    ['m2', 'restart', { restart_pending: true }],
    ['m3', 'restart', { restart_pending: true }],
  ]);
  assert.match(f.output(), /Success: restart on member m1\nFailed: restart for member m2, status code=503, \(restart failed\)\nSuccess: restart on member m3\n$/);
});

test('restart: names checked, role filter, schedule prompt and confirmation, scheduled while paused refused', async () => {
  const f = fake(snapshot());
  assert.deepEqual(await exitCode(restart(f.ctx, { members: ['typo'], role: 'any', force: true })), { code: 1, message: 'typo is not a member of cluster demo' });
  assert.deepEqual(await exitCode(restart(f.ctx, { members: ['m1'], role: 'replica', force: true })), { code: 1, message: 'No replica among provided members' });
  const ask = fake(snapshot(), () => ({ status: 202, body: 'Restart scheduled' }), ['2030-01-01T00:00Z', 'y', '15.2']);
  await restart(ask.ctx, { members: ['m2'], role: 'any', force: false });
  assert.ok(ask.output().includes('Are you sure you want to schedule restart of members m2 at 2030-01-01T00:00:00+00:00? [y/N]: '), ask.output());
  assert.deepEqual(ask.calls[0]!.body, { postgres_version: '15.2', schedule: '2030-01-01T00:00:00+00:00' });
  assert.match(ask.output(), /Success: restart scheduled on member m2/);
  const paused = fake(snapshot({ config: { pause: true } }));
  assert.equal((await exitCode(restart(paused.ctx, { members: [], role: 'any', scheduled: '2030-01-01T00:00Z', force: true }))).message, "Can't schedule restart in the paused state");
});

test('reload: 200 and 202 as patronictl words them', async () => {
  const f = fake(snapshot(), (c) => (c.member === 'm1' ? { status: 200, body: '' } : { status: 202, body: 'reload scheduled' }));
  await reload(f.ctx, { members: ['m1', 'm2'], role: 'any', force: true });
  assert.match(f.output(), /No changes to apply on member m1\nReload request received for member m2 and will be processed within 1 seconds\n$/);
  assert.deepEqual(f.calls.map((c) => [c.member, c.method, c.endpoint]), [['m1', 'POST', 'reload'], ['m2', 'POST', 'reload']]);
});

test('reinit: replicas only; --wait follows /patroni until the member runs a new postmaster', async () => {
  const f = fake(snapshot());
  assert.equal((await exitCode(reinit(f.ctx, { members: ['m1'], force: true, wait: false, waitTimeoutMs: 1000 }))).message, 'No replica among provided members');
  const states = [
    { state: 'running', postmaster_start_time: 'A' },
    { state: 'running', postmaster_start_time: 'A' },
    { state: 'creating replica' },
    { state: 'starting', postmaster_start_time: 'B' },
    { state: 'running', postmaster_start_time: 'B' },
  ];
  const w = fake(snapshot(), (c) => (c.endpoint === 'patroni' ? { status: 200, body: JSON.stringify(states.shift() ?? { state: 'running' }) } : { status: 200, body: 'reinitialize started' }));
  await reinit(w.ctx, { members: ['m2'], force: true, wait: true, waitTimeoutMs: 60_000 });
  assert.deepEqual(w.calls.filter((c) => c.method === 'POST'), [{ member: 'm2', method: 'POST', endpoint: 'reinitialize', body: { force: true } }]);
  assert.match(w.output(), /Success: reinitialize for member m2\nWaiting for reinitialize to complete on: m2\nReinitialize is completed on: m2\n$/);
  const stuck = fake(snapshot(), (c) => (c.endpoint === 'patroni' ? { status: 200, body: '{"state":"running","postmaster_start_time":"A"}' } : { status: 200, body: 'reinitialize started' }));
  const r = await exitCode(reinit(stuck.ctx, { members: ['m2'], force: true, wait: true, waitTimeoutMs: 5000 }));
  assert.equal(r.code, 1);
  assert.match(stuck.output(), /did not complete within 5 s on: m2/);
});

test('reinit: an operation in progress can be cancelled after asking', async () => {
  let n = 0;
  const f = fake(snapshot(), () => (n++ === 0 ? { status: 503, body: 'reinitialize already in progress' } : { status: 200, body: 'reinitialize started' }), ['y', 'y']);
  await reinit(f.ctx, { members: ['m2'], force: false, wait: false, waitTimeoutMs: 1000 });
  assert.deepEqual(f.calls.map((c) => c.body), [{ force: false }, { force: true }]);
});

// ---- pause / resume / edit-config

test('pause: PATCH /config to the leader; already paused is refused', async () => {
  const f = fake(snapshot());
  await togglePause(f.ctx, { paused: true, wait: false });
  assert.deepEqual(f.calls, [{ member: 'm1', method: 'PATCH', endpoint: 'config', body: { pause: true } }]);
  assert.equal(f.output().split('\n').at(-2), 'Success: cluster management is paused');
  assert.deepEqual(await exitCode(togglePause(fake(snapshot({ config: { pause: true } })).ctx, { paused: true, wait: false })), { code: 1, message: 'Cluster is already paused' });
  assert.deepEqual(await exitCode(togglePause(fake(snapshot()).ctx, { paused: false, wait: false })), { code: 1, message: 'Cluster is not paused' });
  const resume = fake(snapshot({ config: { pause: true, ttl: 20 } }));
  await togglePause(resume.ctx, { paused: false, wait: false });
  assert.deepEqual(resume.calls[0]!.body, { pause: null });
});

test('pause: the next member when the leader is down; the config key (CAS) when none answers', async () => {
  const f = fake(snapshot(), (c) => (c.member === 'm1' ? refused() : { status: 200, body: '{}' }));
  await togglePause(f.ctx, { paused: true, wait: false });
  assert.deepEqual(f.calls.map((c) => c.member), ['m1', 'm2']);
  const down = fake(snapshot({ config: { ttl: 20 } }), refused);
  await togglePause(down.ctx, { paused: true, wait: false });
  assert.deepEqual(down.store.config, [[{ ttl: 20, pause: true }, 42]]);
  const lost = fake(snapshot(), refused, [], false);
  assert.deepEqual(await exitCode(togglePause(lost.ctx, { paused: true, wait: false })), { code: 1, message: 'Config modification aborted due to concurrent changes' });
  const refusedPatch = fake(snapshot(), () => ({ status: 401, body: 'no auth header received' }));
  assert.deepEqual(await exitCode(togglePause(refusedPatch.ctx, { paused: true, wait: false })), { code: 1, message: 'Failed: pause cluster management status code=401, (no auth header received)' });
});

test('pause --wait: until every member reports it in /patroni; bounded; unreachable members are not waited for', async () => {
  let polls = 0;
  const f = fake(snapshot(), (c) => {
    if (c.method === 'PATCH') return { status: 200, body: '{}' };
    if (c.member === 'm3') return refused();
    return { status: 200, body: JSON.stringify({ pause: c.member === 'm1' || ++polls > 2 }) };
  });
  await togglePause(f.ctx, { paused: true, wait: true });
  assert.match(f.output(), /'pause' request sent, waiting until it is recognized by all nodes\nNot reachable, not waited for: m3\nSuccess: cluster management is paused\n$/);
  const never = fake(snapshot(), (c) => (c.method === 'PATCH' ? { status: 200, body: '{}' } : { status: 200, body: '{"pause": false}' }));
  const r = await exitCode(togglePause(never.ctx, { paused: true, wait: true }));
  assert.deepEqual(r, { code: 1, message: "m1, m2, m3 members didn't recognize pause state after 12 seconds" });
  assert.ok(never.clock.now() >= 12_000 && never.clock.now() < 13_000);
});

test('edit-config --set --force: diff shown, the change sent as a merge patch', async () => {
  const f = fake(snapshot({ config: { ttl: 20, loop_wait: 1, postgresql: { parameters: { max_connections: 100 } } } }));
  await editConfig(f.ctx, { sets: ['loop_wait=2'], pgs: ['work_mem=8MB'], quiet: false, force: true, readSource: async () => '', edit: async () => assert.fail('no editor') });
  assert.equal(
    f.output(),
    ['--- ', '+++ ', '@@ -1,5 +1,6 @@', '-loop_wait: 1', '+loop_wait: 2', ' postgresql:', '   parameters:', '     max_connections: 100', "+    work_mem: 8MB", ' ttl: 20', 'Configuration changed', ''].join('\n'),
  );
  assert.deepEqual(f.calls, [{ member: 'm1', method: 'PATCH', endpoint: 'config', body: { loop_wait: 2, postgresql: { parameters: { work_mem: '8MB' } } } }]);
});

test('edit-config: not changed, declined, stdin needs --force, the editor when nothing else is given', async () => {
  const opts = { sets: [] as string[], pgs: [] as string[], quiet: false, force: false, readSource: async () => 'ttl: 20\nloop_wait: 1\n', edit: async (t: string) => t };
  const same = fake(snapshot());
  await editConfig(same.ctx, { ...opts, sets: ['ttl=20'] });
  assert.equal(same.output(), 'Not changed\n');
  const declined = fake(snapshot(), undefined, ['n']);
  assert.equal((await exitCode(editConfig(declined.ctx, { ...opts, sets: ['ttl=30'] }))).code, 1);
  assert.equal(declined.calls.length, 0);
  const stdin = fake(snapshot());
  assert.deepEqual(await exitCode(editConfig(stdin.ctx, { ...opts, apply: '-', readSource: async () => 'ttl: 30\n' })), { code: 1, message: 'Use --force option to apply changes' });
  const editor = fake(snapshot(), undefined, ['y']);
  await editConfig(editor.ctx, { ...opts, edit: async (t) => t.replace('ttl: 20', 'ttl: 25') });
  assert.deepEqual(editor.calls[0]!.body, { ttl: 25 });
  const replace = fake(snapshot());
  await editConfig(replace.ctx, { ...opts, force: true, quiet: true, replace: 'f.yml', readSource: async () => 'ttl: 20\n' });
  assert.deepEqual(replace.calls[0]!.body, { loop_wait: null });
  assert.equal(replace.output(), 'Configuration changed\n');
});

// ---- remove

test('remove: the cluster name, "Yes I am aware" and the leader name must be typed', async () => {
  for (const [answers, message] of [
    [['oops'], 'Cluster names specified do not match'],
    [['demo', 'yes'], 'You did not exactly type "Yes I am aware"'],
    [['demo', 'Yes I am aware', 'm2'], 'You did not specify the current leader of the cluster'],
    [['demo'], 'Aborted!'],
  ] as const) {
    const f = fake(snapshot(), undefined, [...answers]);
    assert.deepEqual(await exitCode(remove(f.ctx)), { code: 1, message });
    assert.equal(f.store.deleted, 0);
  }
  const ok = fake(snapshot(), undefined, ['demo', 'Yes I am aware', 'm1']);
  await remove(ok.ctx);
  assert.equal(ok.store.deleted, 1);
  const leaderless = fake(snapshot({ leader: null }), undefined, ['demo', 'Yes I am aware']);
  await remove(leaderless.ctx);
  assert.equal(leaderless.store.deleted, 1);
});

// ---- read-only verbs

test('list --watch: refreshed every interval, stops after --watch-count; timestamps', async () => {
  let loads = 0;
  const f = fake(() => {
    loads++;
    return snapshot();
  });
  await list(f.ctx, { fmt: 'pretty', watchS: 2, watchCount: 3, timestamp: true });
  assert.equal(loads, 3);
  assert.deepEqual(f.clock.slept, [2000, 2000]);
  assert.equal(f.output().split('<clear>').length, 4);
  assert.match(f.output(), /^<clear>2026-11-25 10:00:00\n\+ Cluster: demo /);
  assert.equal((await exitCode(list(f.ctx, { fmt: 'pretty', watchS: 0 }))).code, 2);
});

test('dsn, history, show-config', async () => {
  const f = fake(snapshot());
  await dsn(f.ctx, {});
  await dsn(f.ctx, { role: 'replica' });
  await dsn(f.ctx, { member: 'm3' });
  assert.equal(f.output(), 'host=127.0.0.1 port=5432\nhost=127.0.0.1 port=5433\nhost=127.0.0.1 port=5434\n');
  assert.deepEqual(await exitCode(dsn(f.ctx, { member: 'typo' })), { code: 1, message: 'typo is not a member of cluster demo' });
  assert.equal((await exitCode(dsn(f.ctx, { member: 'm1', role: 'any' }))).code, 2);
  assert.deepEqual(await exitCode(dsn(fake(snapshot({ leader: null })).ctx, {})), { code: 1, message: 'Can not find a suitable member' });
  const h = fake(snapshot());
  await history(h.ctx, 'json');
  assert.equal(h.output(), '[{"TL": 1, "LSN": 100, "Reason": "no recovery target specified", "Timestamp": "2026-01-01T00:00:00+00:00", "New Leader": "m1"}]\n');
  const s = fake(snapshot());
  await showConfig(s.ctx);
  assert.equal(s.output(), 'loop_wait: 1\nttl: 20\n\n');
});

test('flush switchover: DELETE /switchover when one is scheduled', async () => {
  const none = fake(snapshot());
  await flush(none.ctx, { target: 'switchover', members: [], role: 'any', force: true });
  assert.equal(none.output(), 'No pending scheduled switchover\n');
  const f = fake(snapshot({ extra: [{ key: 'failover', value: JSON.stringify({ leader: 'm1', scheduled_at: '2030-01-01T00:00:00+00:00' }), version: 9 }] }), () => ({ status: 200, body: 'scheduled switchover deleted' }));
  await flush(f.ctx, { target: 'switchover', members: [], role: 'any', force: true });
  assert.deepEqual(f.calls, [{ member: 'm1', method: 'DELETE', endpoint: 'switchover' }]);
  assert.equal(f.output(), 'Success: scheduled switchover deleted\n');
});
