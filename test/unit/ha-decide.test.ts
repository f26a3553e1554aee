/**
 * ha/decide as a table: (observation) → action. Each row names the rule it guards; the assertions
 * are on the action and its parameters, never on the prose of the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, needsPeerStatuses } from '../../src/ha/decide.js';
import type { HaDecision, HaObservation } from '../../src/ha/types.js';
import { initialMemory } from '../../src/ha/types.js';
import { NOW, cluster, member, obs, peer, pgEmpty, pgPrimary, pgReplica, pgStopped, settings } from '../helpers/ha-fixtures.js';

const unlocked = (over: Parameters<typeof cluster>[0] = {}) =>
  cluster({ leader: null, members: [member('m2'), member('m3')], ...over });
/** A failover key as the store gives it (version 7). */
const fo = (f: { leader?: string; member?: string; scheduled_at?: string }) => ({ ...f, version: 7 });
/** m1, the leader with a running primary, seeing `c` and healthy replicas m2, m3 (unless `peers`). */
const asLeader = (c: Parameters<typeof cluster>[0], peers = [peer('m2'), peer('m3')]) =>
  obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary, cluster: cluster(c), peers });
const m1Leads = (tl = 2) =>
  cluster({ members: [member('m1', { role: 'master', timeline: tl }), member('m2'), member('m3')] });

interface Row {
  name: string;
  o: HaObservation;
  expect: Partial<HaDecision> & { action: HaDecision['action'] };
}

const rows: Row[] = [
  // --- bootstrap ---
  { name: 'nofailover member never bootstraps the cluster', o: obs({ me: { name: 'm2', tags: { nofailover: true } }, pg: pgEmpty, cluster: cluster({ initialize: null, leader: null, members: [] }) }), expect: { action: 'noop' } },
  { name: 'empty store, empty data dir: race to bootstrap', o: obs({ pg: pgEmpty, cluster: cluster({ initialize: null, leader: null, members: [] }) }), expect: { action: 'bootstrap' } },
  { name: 'bootstrap failed before: do not race again', o: obs({ pg: pgEmpty, cluster: cluster({ initialize: null, leader: null, members: [] }), memory: { ...initialMemory, bootstrapFailed: true } }), expect: { action: 'noop' } },
  { name: 'someone is initializing: wait', o: obs({ pg: pgEmpty, cluster: cluster({ initialize: '', leader: { name: 'm1', version: 1 } }) }), expect: { action: 'noop' } },
  { name: 'initialize written, leader running: basebackup from leader', o: obs({ pg: pgEmpty }), expect: { action: 'create_replica', source: { member: 'm1', conn: { host: '127.0.0.1', port: 5001, slotName: 'm2' } } } },
  { name: 'clonefrom member preferred over leader', o: obs({ me: { name: 'm3', tags: {} }, pg: pgEmpty, cluster: cluster({ members: [member('m1', { role: 'master' }), member('m2', { tags: { clonefrom: true } })] }) }), expect: { action: 'create_replica', source: { member: 'm2', conn: { host: '127.0.0.1', port: 5002, slotName: 'm3' } } } },
  { name: 'no running member, a no_leader replica method configured: build the replica without a source', o: { ...obs({ pg: pgEmpty, cluster: cluster({ members: [member('m1', { state: 'stopped' })] }) }), settings: { ...settings, replicaWithoutLeader: true } }, expect: { action: 'create_replica', source: null } },
  { name: 'initialized cluster, leader not running: wait', o: obs({ pg: pgEmpty, cluster: cluster({ members: [member('m1', { state: 'stopped' })] }) }), expect: { action: 'noop' } },
  { name: 'initialized cluster, no leader: wait for one', o: obs({ pg: pgEmpty, cluster: cluster({ leader: null, members: [member('m3')] }) }), expect: { action: 'noop' } },
  { name: 'long action in progress: nothing else', o: obs({ pg: pgEmpty, memory: { ...initialMemory, actionInProgress: { name: 'bootstrap', startedAt: NOW } } }), expect: { action: 'noop' } },
  { name: 'data dir with foreign content: refuse', o: obs({ pg: { ...pgEmpty, dataDir: 'invalid' } }), expect: { action: 'noop' } },
  { name: 'system identifier mismatch while running: stop', o: obs({ pg: { ...pgReplica, sysid: '123' } }), expect: { action: 'stop' } },
  { name: 'system identifier mismatch while stopped: do nothing', o: obs({ pg: { ...pgStopped, sysid: '123' } }), expect: { action: 'noop' } },

  // --- leader ---
  { name: 'leader with lock and running primary: lead', o: obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary }), expect: { action: 'lead' } },
  { name: 'lock holder running as replica: promote', o: obs({ me: { name: 'm1', tags: {} }, pg: pgReplica }), expect: { action: 'promote' } },
  { name: 'leader whose postgres is down: start read-only first', o: obs({ me: { name: 'm1', tags: {} }, pg: { ...pgStopped, controlState: 'in production' }, memory: { ...initialMemory, pgDownSince: NOW - 5_000 } }), expect: { action: 'start_replica', upstream: null } },
  { name: 'leader whose postgres stayed down for ttl: release the lock', o: obs({ me: { name: 'm1', tags: {} }, pg: pgStopped, memory: { ...initialMemory, pgDownSince: NOW - 30_000 } }), expect: { action: 'release_lock' } },
  { name: 'leader restarting postgres for longer than ttl: release the lock even mid-start', o: obs({ me: { name: 'm1', tags: {} }, pg: pgStopped, memory: { ...initialMemory, pgDownSince: NOW - 31_000, actionInProgress: { name: 'start', startedAt: NOW - 31_000 } } }), expect: { action: 'release_lock' } },
  { name: 'leader running but not accepting yet: wait', o: obs({ me: { name: 'm1', tags: {} }, pg: { ...pgPrimary, accepting: false } }), expect: { action: 'noop' } },

  // --- store outage ---
  { name: 'store unreachable while primary: demote before the lock can expire', o: obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary, dcs: { ok: false, error: 'timeout' }, sessionValidUntil: NOW + 12_000 }), expect: { action: 'demote', deadline: NOW + 12_000, releaseLock: false } },
  { name: 'store unreachable while replica: keep running', o: obs({ dcs: { ok: false, error: 'timeout' } }), expect: { action: 'noop' } },
  { name: 'store unreachable while stopped: nothing', o: obs({ pg: pgStopped, dcs: { ok: false, error: 'timeout' } }), expect: { action: 'noop' } },

  // --- split brain guard ---
  { name: 'running primary while another member holds the lock: demote immediately', o: obs({ pg: pgPrimary }), expect: { action: 'demote', mode: 'immediate' } },

  // --- leader race ---
  { name: 'lock free, healthiest replica: race and promote', o: obs({ cluster: unlocked(), peers: [peer('m3', { walPosition: 90 })] }), expect: { action: 'acquire_lock', promote: true } },
  { name: 'lock free, equal wal positions: race (the store decides)', o: obs({ cluster: unlocked(), peers: [peer('m3', { walPosition: 100 })] }), expect: { action: 'acquire_lock', promote: true } },
  { name: 'lock free, a peer is ahead: do not race', o: obs({ cluster: unlocked(), peers: [peer('m3', { walPosition: 101 })] }), expect: { action: 'noop' } },
  { name: 'lock free, a peer ahead but unreachable: race', o: obs({ cluster: unlocked(), peers: [peer('m3', { walPosition: 500, reachable: false })] }), expect: { action: 'acquire_lock' } },
  { name: 'lock free, a peer ahead but nofailover: race', o: obs({ cluster: unlocked(), peers: [peer('m3', { walPosition: 500, nofailover: true })] }), expect: { action: 'acquire_lock' } },
  { name: 'lock free, old primary still alive: do not race', o: obs({ cluster: unlocked(), peers: [peer('m1', { inRecovery: false, walPosition: 100 })] }), expect: { action: 'noop' } },
  { name: 'lock free, nofailover tag: never race', o: obs({ me: { name: 'm2', tags: { nofailover: true } }, cluster: unlocked(), peers: [] }), expect: { action: 'noop' } },
  { name: 'lock free, lag over maximum_lag_on_failover: do not race', o: obs({ cluster: unlocked({ status: { optime: 100 + 2 * 1048576 } }), peers: [] }), expect: { action: 'noop' } },
  { name: 'lock free, lag within maximum_lag_on_failover: race', o: obs({ cluster: unlocked({ status: { optime: 100 + 1000 } }), peers: [] }), expect: { action: 'acquire_lock' } },
  { name: 'lock free, unknown own wal position: do not race', o: obs({ cluster: unlocked(), pg: { ...pgReplica, walPosition: null }, peers: [] }), expect: { action: 'noop' } },
  { name: 'lock free, peers not fetched: do not race yet', o: obs({ cluster: unlocked(), peers: null }), expect: { action: 'noop' } },
  { name: 'lock free, running primary (lost its lease): take the lock without promote', o: obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary, cluster: unlocked() }), expect: { action: 'acquire_lock', promote: false } },
  { name: 'lock free, manual failover to another member: do not race', o: obs({ cluster: unlocked({ failover: { member: 'm3', version: 1 } }), peers: [] }), expect: { action: 'noop' } },
  { name: 'lock free, stopped member: start read-only first', o: obs({ pg: pgStopped, cluster: unlocked() }), expect: { action: 'start_replica', upstream: null } },

  // --- following ---
  { name: 'replica following the leader: nothing to do', o: obs(), expect: { action: 'noop' } },
  { name: 'replica following the wrong upstream: follow the leader', o: obs({ pg: { ...pgReplica, upstream: '127.0.0.1:5003' } }), expect: { action: 'follow', upstream: { member: 'm1', conn: { host: '127.0.0.1', port: 5001, slotName: 'm2' } } } },
  { name: 'replicatefrom a running member: cascade from it', o: obs({ me: { name: 'm2', tags: { replicatefrom: 'm3' } } }), expect: { action: 'follow', upstream: { member: 'm3', conn: { host: '127.0.0.1', port: 5003, slotName: 'm2' } } } },
  { name: 'replicatefrom a stopped member: follow the leader', o: obs({ me: { name: 'm2', tags: { replicatefrom: 'm3' } }, cluster: cluster({ members: [member('m1'), member('m3', { state: 'stopped' })] }) }), expect: { action: 'noop' } },
  { name: 'leader has no member data: wait', o: obs({ cluster: cluster({ members: [member('m2')] }) }), expect: { action: 'noop' } },

  // --- rejoin ---
  { name: 'stopped former primary, new leader: check divergence first', o: obs({ me: { name: 'm3', tags: {} }, pg: { ...pgStopped, controlState: 'in production' }, cluster: m1Leads() }), expect: { action: 'check_rewind', against: 'm1@2' } },
  { name: 'diverged and use_pg_rewind: rewind', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(), memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'needed' } } }), expect: { action: 'rewind' } },
  { name: 'not diverged: start following', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(), memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'not_needed' } } }), expect: { action: 'start_replica', upstream: { member: 'm1', conn: { host: '127.0.0.1', port: 5001, slotName: 'm3' } } } },
  { name: 'rewound: start following', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(), memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'done' } } }), expect: { action: 'start_replica' } },
  { name: 'verdict about an older timeline: check again', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(3), memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'not_needed' } } }), expect: { action: 'check_rewind', against: 'm1@3' } },
  { name: 'diverged, rewind off, no removal allowed: stay stopped', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(), settings: { ...settings, usePgRewind: false }, memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'needed' } } }), expect: { action: 'noop' } },
  { name: 'diverged, rewind off, removal on diverged timelines allowed: reinitialize', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(), settings: { ...settings, usePgRewind: false, removeDataDirectoryOnDivergedTimelines: true }, memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'needed' } } }), expect: { action: 'reinitialize' } },
  { name: 'rewind failed, removal not allowed: stay stopped', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(), memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'failed' } } }), expect: { action: 'noop' } },
  { name: 'rewind failed, removal allowed: reinitialize', o: obs({ me: { name: 'm3', tags: {} }, pg: pgStopped, cluster: m1Leads(), settings: { ...settings, removeDataDirectoryOnRewindFailure: true }, memory: { ...initialMemory, rewind: { against: 'm1@2', verdict: 'failed' } } }), expect: { action: 'reinitialize' } },

  // --- pause ---
  { name: 'paused: a stopped replica is not started', o: obs({ pg: pgStopped, settings: { ...settings, pause: true } }), expect: { action: 'noop' } },
  { name: 'paused: no leader race', o: obs({ cluster: unlocked(), peers: [], settings: { ...settings, pause: true } }), expect: { action: 'noop' } },
  { name: 'paused: the leader keeps its lock', o: obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary, settings: { ...settings, pause: true } }), expect: { action: 'lead' } },
  { name: 'paused, store unreachable: the primary is not demoted (Patroni)', o: obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary, dcs: { ok: false, error: 'timeout' }, sessionValidUntil: NOW + 12_000, settings: { ...settings, pause: true } }), expect: { action: 'noop' } },
  { name: 'paused: a stopped leader is not restarted', o: obs({ me: { name: 'm1', tags: {} }, pg: pgStopped, settings: { ...settings, pause: true } }), expect: { action: 'noop' } },

  // --- a running replica that cannot follow the leader's newer timeline ---
  { name: 'replica not streaming for long behind a newer leader timeline: stop it to check for divergence', o: obs({ pg: { ...pgReplica, streaming: false, timeline: 1 }, cluster: m1Leads(2), memory: { ...initialMemory, notStreamingSince: NOW - 31_000 } }), expect: { action: 'stop', mode: 'fast' } },
  { name: 'replica briefly not streaming after a failover: give it time', o: obs({ pg: { ...pgReplica, streaming: false, timeline: 1 }, cluster: m1Leads(2), memory: { ...initialMemory, notStreamingSince: NOW - 2_000 } }), expect: { action: 'noop' } },
  { name: 'replica not streaming on the leader\'s own timeline: not a divergence', o: obs({ pg: { ...pgReplica, streaming: false, timeline: 2 }, cluster: m1Leads(2), memory: { ...initialMemory, notStreamingSince: NOW - 60_000 } }), expect: { action: 'noop' } },

  // --- manual switchover / failover: the leader's side ---
  { name: 'switchover to a healthy candidate: hand over gracefully, release the lock, follow it', o: asLeader({ failover: fo({ leader: 'm1', member: 'm2' }) }), expect: { action: 'demote', mode: 'graceful', releaseLock: true, deadline: NOW + 30_000, follow: { member: 'm2', conn: { host: '127.0.0.1', port: 5002, slotName: 'm1' } } } },
  { name: 'switchover without a candidate: hand over to whoever is healthiest', o: asLeader({ failover: fo({ leader: 'm1' }) }), expect: { action: 'demote', releaseLock: true, follow: null } },
  { name: 'switchover to an unreachable candidate: clear the key, keep leading', o: asLeader({ failover: fo({ leader: 'm1', member: 'm2' }) }, [peer('m2', { reachable: false }), peer('m3')]), expect: { action: 'clear_failover', version: 7 } },
  { name: 'switchover to a nofailover candidate: clear the key', o: asLeader({ failover: fo({ leader: 'm1', member: 'm2' }) }, [peer('m2', { nofailover: true }), peer('m3')]), expect: { action: 'clear_failover' } },
  { name: 'switchover to a member that does not exist: clear the key', o: asLeader({ failover: fo({ leader: 'm1', member: 'm9' }) }), expect: { action: 'clear_failover' } },
  { name: 'switchover with no healthy member: clear the key', o: asLeader({ failover: fo({ leader: 'm1' }) }, [peer('m2', { reachable: false }), peer('m3', { reachable: false })]), expect: { action: 'clear_failover' } },
  { name: 'failover key naming another leader: stale, clear it', o: asLeader({ failover: fo({ leader: 'm3', member: 'm2' }) }), expect: { action: 'clear_failover' } },
  { name: 'failover key naming the leader itself as candidate: clear it', o: asLeader({ failover: fo({ member: 'm1' }) }), expect: { action: 'clear_failover' } },
  { name: 'switchover scheduled in the future: keep leading (and renewing)', o: asLeader({ failover: fo({ leader: 'm1', member: 'm2', scheduled_at: '2026-11-25T12:05:00+00:00' }) }), expect: { action: 'lead' } },
  { name: 'switchover scheduled just now: hand over', o: asLeader({ failover: fo({ leader: 'm1', member: 'm2', scheduled_at: '2026-11-25T11:59:59+00:00' }) }), expect: { action: 'demote', releaseLock: true } },
  { name: 'switchover scheduled long ago: stale, clear it', o: asLeader({ failover: fo({ leader: 'm1', member: 'm2', scheduled_at: '2026-11-25T11:00:00+00:00' }) }), expect: { action: 'clear_failover' } },
  { name: 'switchover key with an unparsable time: clear it', o: asLeader({ failover: fo({ leader: 'm1', scheduled_at: 'tomorrow' }) }), expect: { action: 'clear_failover' } },
  { name: 'paused: a switchover to a named candidate still runs', o: { ...asLeader({ failover: fo({ leader: 'm1', member: 'm2' }) }), settings: { ...settings, pause: true } }, expect: { action: 'demote', releaseLock: true } },

  // --- manual switchover / failover: the candidate's and the others' side ---
  { name: 'candidate of a switchover holding the old leader\'s last WAL: take the lock and promote', o: obs({ cluster: unlocked({ failover: fo({ leader: 'm1', member: 'm2' }), status: { optime: 90 } }) }), expect: { action: 'acquire_lock', promote: true } },
  { name: 'candidate of a switchover missing the old leader\'s last WAL record: wait for it', o: obs({ cluster: unlocked({ failover: fo({ leader: 'm1', member: 'm2' }), status: { optime: 100 } }) }), expect: { action: 'wait_for_wal', target: 100 } },
  { name: 'candidate waited longer than ttl for WAL: give the race back', o: obs({ cluster: unlocked({ failover: fo({ leader: 'm1', member: 'm2' }), status: { optime: 100 } }), memory: { ...initialMemory, takeoverWaitSince: NOW - 31_000 } }), expect: { action: 'clear_failover', version: 7 } },
  { name: 'candidate of a failover (no leader named): take over even if behind', o: obs({ cluster: unlocked({ failover: fo({ member: 'm2' }), status: { optime: 5_000_000 } }), peers: [peer('m3', { walPosition: 4_000_000 })] }), expect: { action: 'acquire_lock', promote: true } },
  { name: 'paused: the named candidate still takes over', o: { ...obs({ cluster: unlocked({ failover: fo({ leader: 'm1', member: 'm2' }), status: { optime: 90 } }) }), settings: { ...settings, pause: true } }, expect: { action: 'acquire_lock', promote: true } },
  { name: 'not the candidate, candidate healthy: do not race', o: obs({ me: { name: 'm3', tags: {} }, cluster: unlocked({ failover: fo({ leader: 'm1', member: 'm2' }) }), peers: [peer('m2', { walPosition: 50 })] }), expect: { action: 'noop' } },
  { name: 'not the candidate, candidate unreachable: race as usual', o: obs({ me: { name: 'm3', tags: {} }, cluster: unlocked({ failover: fo({ leader: 'm1', member: 'm2' }) }), peers: [peer('m2', { reachable: false })] }), expect: { action: 'acquire_lock', promote: true } },
];

for (const row of rows) {
  test(`decide: ${row.name}`, () => {
    const d = decide(row.o);
    assert.ok(d.reason.length > 0, 'every decision carries a reason');
    for (const [k, v] of Object.entries(row.expect)) {
      assert.deepEqual((d as unknown as Record<string, unknown>)[k], v, `${k} of ${JSON.stringify(d)}`);
    }
  });
}

test('decide: at least 30 rows cover the table', () => {
  assert.ok(rows.length >= 30);
});

test('needsPeerStatuses: only a running, eligible replica with the lock free', () => {
  const base = obs({ cluster: unlocked() });
  assert.equal(needsPeerStatuses(base), true);
  assert.equal(needsPeerStatuses(obs()), false, 'a leader exists');
  assert.equal(needsPeerStatuses(obs({ cluster: unlocked(), pg: pgPrimary })), false, 'a primary does not compare');
  assert.equal(needsPeerStatuses(obs({ cluster: unlocked(), me: { name: 'm2', tags: { nofailover: true } } })), false);
  assert.equal(needsPeerStatuses(obs({ cluster: unlocked(), pg: pgStopped })), false);
  assert.equal(needsPeerStatuses(obs({ cluster: unlocked(), dcs: { ok: false, error: 'x' } })), false);
  const leaderWith = (f: ReturnType<typeof fo> | null) => obs({ me: { name: 'm1', tags: {} }, pg: pgPrimary, cluster: cluster({ failover: f }) });
  assert.equal(needsPeerStatuses(leaderWith(null)), false, 'a leader without a switchover request');
  assert.equal(needsPeerStatuses(leaderWith(fo({ leader: 'm1', member: 'm2' }))), true, 'a leader judging a due switchover');
  assert.equal(needsPeerStatuses(leaderWith(fo({ leader: 'm1', scheduled_at: '2026-11-25T13:00:00+00:00' }))), false, 'not before its time');
});

test('decide is pure: the same observation gives the same decision', () => {
  const o = obs({ cluster: unlocked(), peers: [peer('m3', { walPosition: 90 })] });
  assert.deepEqual(decide(o), decide(o));
});
