/**
 * Failsafe mode (Patroni 3.0 `failsafe_mode`): the pure rules as a decision table, the POST round and
 * the shared state with a fake clock, then three HaLoops on the in-memory store whose REST calls go
 * through the real route handler — a store outage keeps an acknowledged primary, a missing member
 * demotes it, and the store's return brings back the same leader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { route } from '../../src/api/routes.js';
import type { FailsafeLeader } from '../../src/dcs/types.js';
import { decide, needsPeerStatuses } from '../../src/ha/decide.js';
import { Failsafe, checkFailsafeTopology, failsafeTopology, needsFailsafeCheck, type FailsafePoster } from '../../src/ha/failsafe.js';
import type { FailsafeObservation, HaDecision, HaObservation } from '../../src/ha/types.js';
import { initialMemory } from '../../src/ha/types.js';
import { FakeClock, haWorld } from '../helpers/ha-world.js';
import { NOW, cluster, member, obs, peer, pgPrimary, pgReplica } from '../helpers/ha-fixtures.js';

const m1Ping: FailsafeLeader = { name: 'm1', conn_url: 'postgres://127.0.0.1:5001/postgres', api_url: 'http://127.0.0.1:8001/patroni' };
const fs = (f: Partial<FailsafeObservation> = {}): FailsafeObservation => ({ mode: true, acked: null, validUntil: -Infinity, leader: null, ...f });
const storeDown = { ok: false as const, error: 'etcd range failed within retry_timeout' };
const asPrimary = (o: Parameters<typeof obs>[0] = {}) => obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary, ...o });
const topology = { m1: 'http://127.0.0.1:8001/patroni', m2: 'http://127.0.0.1:8002/patroni', m3: 'http://127.0.0.1:8003/patroni' };
/** The lease of m1 expired during an outage: no leader key, no member key of m1. */
const afterOutage = cluster({ leader: null, members: [member('m2'), member('m3')], failsafe: topology });
const healthyPeers = [peer('m1', { reachable: false }), peer('m3', { walPosition: 50 })];

interface Row {
  name: string;
  o: HaObservation;
  expect: Partial<HaDecision> & { action: HaDecision['action'] };
}

const rows: Row[] = [
  // --- the leader when the store fails ---
  { name: 'store error, every member acknowledged: stay primary', o: asPrimary({ dcs: storeDown, failsafe: fs({ acked: { ok: true, detail: '' } }) }), expect: { action: 'lead' } },
  { name: 'store error, a member did not acknowledge: demote before the session can expire', o: asPrimary({ dcs: storeDown, sessionValidUntil: NOW + 7000, failsafe: fs({ acked: { ok: false, detail: 'm3 refused' } }) }), expect: { action: 'demote', deadline: NOW + 7000, releaseLock: false, follow: null } },
  { name: 'store error, not acknowledged after acknowledged rounds: demote before those run out', o: asPrimary({ dcs: storeDown, sessionValidUntil: NOW - 3000, failsafe: fs({ acked: { ok: false, detail: '' }, validUntil: NOW + 4000 }) }), expect: { action: 'demote', deadline: NOW + 4000 } },
  { name: 'store error, failsafe mode off: demote (the control case)', o: asPrimary({ dcs: storeDown, sessionValidUntil: NOW + 7000, failsafe: fs({ mode: false }) }), expect: { action: 'demote', deadline: NOW + 7000 } },
  { name: 'store error, no failsafe observation at all: demote', o: asPrimary({ dcs: storeDown, sessionValidUntil: NOW + 7000 }), expect: { action: 'demote', deadline: NOW + 7000 } },
  { name: 'store error on a replica pinged by the leader: keep following, never race', o: obs({ dcs: storeDown, failsafe: fs({ leader: m1Ping }) }), expect: { action: 'noop' } },

  // --- the store is back, the leader key expired meanwhile ---
  { name: 'store back, no leader key, replica pinged within ttl: not racing although it is the healthiest', o: obs({ cluster: afterOutage, peers: healthyPeers, failsafe: fs({ leader: m1Ping }) }), expect: { action: 'noop' } },
  { name: 'same without failsafe mode: the replica races (the rule above is what stops it)', o: obs({ cluster: afterOutage, peers: healthyPeers, failsafe: fs({ mode: false, leader: m1Ping }) }), expect: { action: 'acquire_lock', promote: true } },
  { name: 'store back, replica pinged by a leader it does not stream from: follow it', o: obs({ cluster: afterOutage, pg: { ...pgReplica, upstream: '127.0.0.1:5003' }, failsafe: fs({ leader: m1Ping }) }), expect: { action: 'follow', upstream: { member: 'm1', conn: { host: '127.0.0.1', port: 5001, slotName: 'm2' } } } },
  { name: 'store back, the former primary takes its lock again without promoting', o: asPrimary({ cluster: afterOutage, failsafe: fs() }), expect: { action: 'acquire_lock', promote: false } },
  { name: 'a ping naming ourselves is ignored', o: obs({ cluster: afterOutage, peers: healthyPeers, failsafe: fs({ leader: { ...m1Ping, name: 'm2' } }) }), expect: { action: 'acquire_lock', promote: true } },
  { name: 'a member missing from the failsafe topology never races', o: obs({ me: { name: 'm4', tags: {} }, cluster: afterOutage, peers: healthyPeers, failsafe: fs() }), expect: { action: 'noop' } },
  { name: 'a member of the failsafe topology races as usual once no ping is fresh', o: obs({ cluster: afterOutage, peers: healthyPeers, failsafe: fs() }), expect: { action: 'acquire_lock', promote: true } },
  { name: 'a leader key in the store wins over a ping', o: obs({ cluster: cluster({ leader: { name: 'm3', version: 2 }, failsafe: topology }), pg: { ...pgReplica, upstream: '127.0.0.1:5003' }, failsafe: fs({ leader: m1Ping }) }), expect: { action: 'noop' } },
];

for (const r of rows) {
  test(`failsafe decide: ${r.name}`, () => {
    const d = decide(r.o);
    for (const [k, v] of Object.entries(r.expect)) assert.deepEqual((d as unknown as Record<string, unknown>)[k], v, `${k} (reason: ${d.reason})`);
  });
}

test('failsafe: a replica with a fresh ping asks nobody for a leader race', () => {
  const base = obs({ cluster: afterOutage });
  assert.equal(needsPeerStatuses(base), true, 'without a ping it compares itself to the others');
  assert.equal(needsPeerStatuses({ ...base, failsafe: fs({ leader: m1Ping }) }), false);
});

test('failsafe: only a running primary without the store in failsafe mode runs the POST round', () => {
  const primary = { ...asPrimary({ dcs: storeDown }), failsafe: fs() };
  assert.equal(needsFailsafeCheck(primary), true);
  assert.equal(needsFailsafeCheck({ ...primary, failsafe: fs({ mode: false }) }), false);
  assert.equal(needsFailsafeCheck({ ...primary, dcs: { ok: true, cluster: cluster() } }), false);
  assert.equal(needsFailsafeCheck({ ...primary, pg: pgReplica }), false);
  assert.equal(needsFailsafeCheck({ ...primary, memory: { ...initialMemory, actionInProgress: { name: 'restarting', startedAt: NOW } } }), false);
});

test('failsafe: the topology is every member with its api_url, the leader included', () => {
  assert.deepEqual(failsafeTopology([member('m2'), member('m3')], 'm1', 'http://h:1/patroni'), {
    m2: 'http://127.0.0.1:8002/patroni',
    m3: 'http://127.0.0.1:8003/patroni',
    m1: 'http://h:1/patroni',
  });
});

test('failsafe: the POST round asks every other member and needs all of them', async () => {
  const asked: string[] = [];
  const post = (refuse: string | null): FailsafePoster => async (url, data) => {
    asked.push(`${url} ${data.name}`);
    return url.includes(refuse ?? '#') ? { ok: false, detail: '500 Running as a leader' } : { ok: true, detail: '200 Accepted' };
  };
  assert.deepEqual(await checkFailsafeTopology(topology, m1Ping, post(null), 100), { ok: true, detail: 'acknowledged by m2, m3' });
  assert.deepEqual(asked.sort(), ['http://127.0.0.1:8002/patroni m1', 'http://127.0.0.1:8003/patroni m1']);
  const refused = await checkFailsafeTopology(topology, m1Ping, post(':8003'), 100);
  assert.equal(refused.ok, false);
  assert.match(refused.detail, /m3/);
  const thrown = await checkFailsafeTopology(topology, m1Ping, async () => Promise.reject(new Error('ECONNREFUSED')), 100);
  assert.equal(thrown.ok, false);
  assert.equal((await checkFailsafeTopology(null, m1Ping, post(null), 100)).ok, false, 'no topology known');
  assert.equal((await checkFailsafeTopology({ m2: 'x', m3: 'y' }, m1Ping, post(null), 100)).ok, false, 'not in the topology');
  assert.equal((await checkFailsafeTopology({ m1: 'x' }, m1Ping, undefined, 100)).ok, true, 'a single-member cluster');
});


test('failsafe state: a ping counts for ttl; acknowledged rounds extend the leader from when they were sent', async () => {
  const clock = new FakeClock();
  const f = new Failsafe(clock, () => 10_000);
  f.receive(m1Ping);
  assert.deepEqual(f.leader(), m1Ping);
  assert.equal(f.isActive(), true);
  clock.t += 9_999;
  assert.deepEqual(f.leader(), m1Ping);
  clock.t += 1;
  assert.equal(f.leader(), null, 'forgotten after ttl');
  assert.equal(f.isActive(), false);

  const leader = new Failsafe(clock, () => 10_000);
  leader.storeRead(cluster({ failsafe: topology }), 'm1');
  const o = asPrimary({ dcs: storeDown });
  const slow: FailsafePoster = async () => {
    clock.t += 1500;
    return { ok: true, detail: '200 Accepted' };
  };
  const sentAt = clock.t;
  const ok = await leader.observe(o, true, m1Ping, slow, 2000);
  assert.deepEqual(ok.acked?.ok, true);
  assert.equal(ok.validUntil, sentAt + 10_000, 'counted from before the POSTs were sent');
  assert.equal(leader.isActive(), true);
  const no = await leader.observe(o, true, m1Ping, async () => ({ ok: false, detail: 'timeout' }), 2000);
  assert.equal(no.acked?.ok, false);
  assert.equal(no.validUntil, sentAt + 10_000, 'earlier acknowledgements still hold');
  assert.equal(leader.isActive(), false);
  const off = await leader.observe(o, false, m1Ping, slow, 2000);
  assert.equal(off.acked, null, 'failsafe mode off: nobody is asked');
  leader.storeRead(cluster({ failsafe: topology }), 'm1');
  assert.equal(leader.validUntil(), -Infinity, 'the store answered: the session counts again');
});

// ---------------------------------------------------------------------------------------------
// Three HaLoops on one in-memory store; POST /failsafe goes through the real route handler.

const TTL = 10;

const world = (failsafeMode: boolean) => haWorld({ ttl: TTL, dcs: { failsafe_mode: failsafeMode } });

test('failsafe loop: the store goes away for longer than ttl; the acknowledged primary keeps running, then keeps its lock', async () => {
  const w = world(true);
  await w.round(6);
  const leader = w.nodes.find((n) => n.pg.calls.includes('bootstrap'))!;
  const c = await leader.store.load();
  assert.deepEqual(Object.keys(c.failsafe ?? {}).sort(), ['m1', 'm2', 'm3'], 'the leader wrote the failsafe topology');

  w.backend.setAvailable(false);
  let last: Record<string, HaDecision> = {};
  for (let i = 0; i < 2 * TTL; i++) {
    last = await w.round(1);
    assert.deepEqual(w.primaries(), [leader.name], `one primary, the same one (${i + 1} s into the outage)`);
  }
  assert.equal(last[leader.name]?.action, 'lead');
  assert.match(last[leader.name]!.reason, /failsafe mode is enabled and all members are accessible/);
  const status = await route({ method: 'GET', path: '/patroni', query: new URLSearchParams(), headers: {}, body: '' }, leader.api);
  assert.equal((status.body as Record<string, unknown>).failsafe_mode_is_active, true);
  const replica = w.nodes.find((n) => n !== leader)!;
  const replicaStatus = await route({ method: 'GET', path: '/patroni', query: new URLSearchParams(), headers: {}, body: '' }, replica.api);
  assert.equal((replicaStatus.body as Record<string, unknown>).failsafe_mode_is_active, true, 'a pinged replica reports failsafe mode active too');
  // The pings carry the slot positions the leader last published in status (Patroni's `slots`).
  assert.ok(c.status.slots && Object.keys(c.status.slots).length > 0, 'the leader published slots');
  assert.deepEqual(replica.loop.failsafe.leader()?.slots, c.status.slots);

  // The store comes back after every lease expired: the replicas tick first and still do not race.
  w.backend.setAvailable(true);
  w.backend.expire();
  assert.equal(await w.leaderKey(), null, 'the leader key expired during the outage');
  const back = await w.round(1, [...w.nodes.filter((n) => n !== leader), leader]);
  for (const n of w.nodes.filter((x) => x !== leader)) assert.notEqual(back[n.name]?.action, 'acquire_lock', `${n.name} did not race`);
  await w.round(2);
  assert.equal(await w.leaderKey(), leader.name, 'the same leader holds the lock again');
  assert.deepEqual(w.primaries(), [leader.name]);
  assert.equal(leader.pg.calls.filter((x) => x.startsWith('stop:')).length, 0, 'postgres was never stopped');
  assert.equal(leader.loop.failsafe.isActive(), false, 'failsafe mode is no longer active on the leader');
});

test('failsafe loop: with one member gone the primary demotes before its lock could have expired', async () => {
  const w = world(true);
  await w.round(6);
  const leader = w.nodes.find((n) => n.pg.calls.includes('bootstrap'))!;
  const gone = w.nodes.find((n) => n !== leader)!;
  gone.alive = false;
  gone.pg.running = false;
  w.backend.setAvailable(false);
  const validUntil = leader.store.sessionValidUntil();
  const d = await leader.loop.tick();
  assert.equal(d.action, 'demote');
  assert.match(d.reason, new RegExp(`failsafe: no acknowledgement from ${gone.name}`));
  assert.equal(leader.pg.running, false, 'postgres stopped');
  assert.ok(w.clock.now() < validUntil, 'while its lock could not have expired yet');
});

test('failsafe loop: without failsafe mode a store outage demotes the primary and replicas refuse pings', async () => {
  const w = world(false);
  await w.round(6);
  const leader = w.nodes.find((n) => n.pg.calls.includes('bootstrap'))!;
  assert.equal((await leader.store.load()).failsafe, undefined, 'no failsafe key is written');
  w.backend.setAvailable(false);
  const d = await leader.loop.tick();
  assert.equal(d.action, 'demote');
  assert.equal(leader.pg.running, false);
  const replica = w.nodes.find((n) => n !== leader)!;
  const res = await route({ method: 'POST', path: '/failsafe', query: new URLSearchParams(), headers: {}, body: JSON.stringify(m1Ping) }, replica.api);
  assert.equal(res.status, 502);
});
