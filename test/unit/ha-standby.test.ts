/**
 * Standby cluster (ha/standby.ts through ha/decide): decisions as a table, the section's parsing, and
 * the recovery settings PostgreSQL gets. Assertions are on actions and parameters, not on prose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import { decide, needsPeerStatuses } from '../../src/ha/decide.js';
import { remoteSource, standbyClusterSettings, type StandbyCluster } from '../../src/ha/standby.js';
import type { HaDecision, HaObservation } from '../../src/ha/types.js';
import { initialMemory } from '../../src/ha/types.js';
import { postgresqlConf, primaryConninfo, standbyParameters } from '../../src/postgres/conf.js';
import { cluster, member, memberConfig, obs, peer, pgEmpty, pgPrimary, pgReplica, pgStopped, settings } from '../helpers/ha-fixtures.js';

const dynamicOf = (dcs: Record<string, unknown>) => effectiveDynamicConfig(dcs, {}).dynamic;
const sc: StandbyCluster = standbyClusterSettings(memberConfig, dynamicOf({ standby_cluster: { host: '10.9.0.1', port: 6432 } }))!;
const remote = remoteSource(sc);
const inStandby = { ...settings, standbyCluster: sc };
/** An observation of `me` in a standby cluster. */
const sobs = (o: Parameters<typeof obs>[0] = {}): HaObservation => ({ ...obs(o), settings: { ...inStandby, ...o.settings } });
const m1Leads = cluster({ members: [member('m1', { role: 'standby_leader' }), member('m2'), member('m3')] });
const unlocked = cluster({ leader: null, members: [member('m2'), member('m3')] });
const asM1 = { me: { name: 'm1', tags: {} } };
const pgOnRemote = { ...pgReplica, upstream: '10.9.0.1:6432' };

interface Row {
  name: string;
  o: HaObservation;
  expect: Partial<HaDecision> & { action: HaDecision['action'] };
}

const rows: Row[] = [
  // --- bootstrap: the standby leader copies the remote ---
  { name: 'empty store, empty data dir: race to bootstrap a standby leader from the remote', o: sobs({ pg: pgEmpty, cluster: cluster({ initialize: null, leader: null, members: [] }) }), expect: { action: 'bootstrap_standby_leader', source: remote } },
  { name: 'nofailover never bootstraps a standby cluster either', o: sobs({ me: { name: 'm2', tags: { nofailover: true } }, pg: pgEmpty, cluster: cluster({ initialize: null, leader: null, members: [] }) }), expect: { action: 'noop' } },
  { name: 'standby leader running: replicas copy it with basebackup (standby_cluster methods)', o: sobs({ pg: pgEmpty, cluster: m1Leads }), expect: { action: 'create_replica', source: { member: 'm1', conn: { host: '127.0.0.1', port: 5001, slotName: 'm2' } }, methods: ['basebackup'] } },
  { name: 'initialized, nobody running, a no_master method in standby_cluster: copy the remote', o: { ...sobs({ pg: pgEmpty, cluster: cluster({ members: [member('m1', { state: 'stopped' })] }) }), settings: { ...inStandby, standbyCluster: { ...sc, replicaWithoutLeader: true } } }, expect: { action: 'create_replica', source: remote } },
  { name: 'initialized, nobody running, no such method: wait', o: sobs({ pg: pgEmpty, cluster: cluster({ members: [member('m1', { state: 'stopped' })] }) }), expect: { action: 'noop' } },

  // --- the standby leader ---
  { name: 'lock holder in recovery: stay the standby leader (never promote)', o: sobs({ ...asM1, pg: pgOnRemote, cluster: m1Leads }), expect: { action: 'lead_standby', upstream: remote } },
  { name: 'lock holder streaming from a member: re-point at the remote', o: sobs({ ...asM1, pg: pgReplica, cluster: m1Leads }), expect: { action: 'lead_standby', upstream: remote } },
  { name: 'lock holder running as a primary (standby_cluster just added): demote, keep the lock', o: sobs({ ...asM1, pg: pgPrimary, cluster: m1Leads }), expect: { action: 'demote', mode: 'immediate', releaseLock: false, follow: null } },
  { name: 'paused: a primary with the lock stays a primary', o: sobs({ ...asM1, pg: pgPrimary, cluster: m1Leads, settings: { ...inStandby, pause: true } }), expect: { action: 'lead' } },
  { name: 'paused: the standby leader keeps its lock', o: sobs({ ...asM1, pg: pgOnRemote, cluster: m1Leads, settings: { ...inStandby, pause: true } }), expect: { action: 'lead_standby' } },
  { name: 'stopped lock holder that was a standby: start streaming from the remote', o: sobs({ ...asM1, pg: pgStopped, cluster: m1Leads }), expect: { action: 'start_replica', upstream: remote } },
  { name: 'stopped lock holder that was a primary: check divergence from the remote first', o: sobs({ ...asM1, pg: { ...pgStopped, controlState: 'in production' }, cluster: m1Leads }), expect: { action: 'check_rewind', upstream: remote, against: `${remote.member}@primary` } },
  { name: 'former primary, not diverged from the remote: start as the standby leader', o: sobs({ ...asM1, pg: { ...pgStopped, controlState: 'shut down' }, cluster: m1Leads, memory: { ...initialMemory, rewind: { against: `${remote.member}@primary`, verdict: 'not_needed' } } }), expect: { action: 'start_replica', upstream: remote } },
  { name: 'former primary, diverged from the remote: pg_rewind from it', o: sobs({ ...asM1, pg: { ...pgStopped, controlState: 'shut down' }, cluster: m1Leads, memory: { ...initialMemory, rewind: { against: `${remote.member}@primary`, verdict: 'needed' } } }), expect: { action: 'rewind', upstream: remote } },
  { name: 'former primary, diverged, pg_rewind off: stay stopped', o: sobs({ ...asM1, pg: { ...pgStopped, controlState: 'shut down' }, cluster: m1Leads, settings: { ...inStandby, usePgRewind: false }, memory: { ...initialMemory, rewind: { against: `${remote.member}@primary`, verdict: 'needed' } } }), expect: { action: 'noop' } },
  { name: 'switchover to a healthy member: the standby leader hands its lock over (graceful demote, follow the candidate)', o: sobs({ ...asM1, pg: pgOnRemote, cluster: cluster({ members: [member('m1', { role: 'standby_leader' }), member('m2'), member('m3')], failover: { leader: 'm1', member: 'm2', version: 4 } }), peers: [peer('m2', { walPosition: 100 }), peer('m3', { walPosition: 100 })] }), expect: { action: 'demote', mode: 'graceful', releaseLock: true } },
  { name: 'switchover scheduled later: the standby leader keeps leading', o: sobs({ ...asM1, pg: pgOnRemote, cluster: cluster({ members: [member('m1', { role: 'standby_leader' }), member('m2')], failover: { leader: 'm1', member: 'm2', scheduled_at: '2099-01-01T00:00:00+00:00', version: 4 } }), peers: [peer('m2')] }), expect: { action: 'lead_standby' } },
  { name: 'lock holder whose postgres stayed down for ttl: release the lock', o: sobs({ ...asM1, pg: pgStopped, cluster: m1Leads, memory: { ...initialMemory, pgDownSince: obs().now - 31_000 } }), expect: { action: 'release_lock' } },

  // --- no standby leader ---
  { name: 'lock free, healthiest: take the lock without promoting', o: sobs({ cluster: unlocked, peers: [peer('m3', { walPosition: 90 })] }), expect: { action: 'acquire_lock', promote: false } },
  { name: 'lock free, a peer is ahead: do not race', o: sobs({ cluster: unlocked, peers: [peer('m3', { walPosition: 101 })] }), expect: { action: 'noop' } },
  { name: 'lock free, synchronous mode is ignored: a non-sync member races', o: sobs({ cluster: cluster({ leader: null, members: [member('m2'), member('m3')], sync: { leader: 'm1', sync_standby: ['m3'], version: 1 } }), settings: { ...inStandby, synchronousMode: true }, peers: [peer('m3', { walPosition: 90 })] }), expect: { action: 'acquire_lock', promote: false } },
  { name: 'lock free, named failover candidate: takes the lock, still no promotion', o: sobs({ cluster: cluster({ leader: null, members: [member('m2'), member('m3')], failover: { member: 'm2', version: 3 } }), peers: [] }), expect: { action: 'acquire_lock', promote: false } },
  { name: 'lock free, stopped member: start following the remote', o: sobs({ pg: pgStopped, cluster: unlocked }), expect: { action: 'start_replica', upstream: remote } },

  // --- members follow the standby leader ---
  { name: 'replica following the standby leader: nothing to do', o: sobs({ cluster: m1Leads }), expect: { action: 'noop' } },
  { name: 'replica following the wrong upstream: follow the standby leader', o: sobs({ pg: { ...pgReplica, upstream: '127.0.0.1:5003' }, cluster: m1Leads }), expect: { action: 'follow', upstream: { member: 'm1', conn: { host: '127.0.0.1', port: 5001, slotName: 'm2' } } } },
  { name: 'running primary without the lock: demote', o: sobs({ pg: pgPrimary, cluster: m1Leads }), expect: { action: 'demote', mode: 'immediate' } },
];

for (const r of rows) {
  test(`standby cluster: ${r.name}`, () => {
    const d = decide(r.o);
    for (const [k, v] of Object.entries(r.expect)) assert.deepEqual((d as unknown as Record<string, unknown>)[k], v, `${k} (reason: ${d.reason})`);
  });
}

test('standby_cluster removed: the same lock holder in recovery promotes (an ordinary cluster again)', () => {
  const d = decide(obs({ ...asM1, pg: pgOnRemote, cluster: m1Leads }));
  assert.equal(d.action, 'promote');
});

test('members of a standby cluster restore from the archive too; only the standby leader delays apply', () => {
  const withArchive = standbyClusterSettings(memberConfig, dynamicOf({ standby_cluster: { host: 'remote', restore_command: 'cp /a/%f %p', archive_cleanup_command: 'clean %r', recovery_min_apply_delay: '5min' } }))!;
  const follow = decide({ ...obs({ pg: { ...pgReplica, upstream: '127.0.0.1:5003' }, cluster: m1Leads }), settings: { ...settings, standbyCluster: withArchive } });
  assert.equal(follow.action, 'follow');
  assert.deepEqual(follow.action === 'follow' && follow.upstream.conn.recovery, { restore_command: 'cp /a/%f %p', archive_cleanup_command: 'clean %r' });
  const lead = decide({ ...obs({ ...asM1, pg: pgOnRemote, cluster: m1Leads }), settings: { ...settings, standbyCluster: withArchive } });
  assert.equal(lead.action, 'lead_standby');
  assert.deepEqual(lead.action === 'lead_standby' && lead.upstream.conn, {
    host: 'remote', port: 5432, remote: true, noSlot: true,
    recovery: { restore_command: 'cp /a/%f %p', archive_cleanup_command: 'clean %r', recovery_min_apply_delay: '5min' },
  });
});

test('standby_cluster section: Patroni is_standby_cluster (host, port or restore_command), lenient values', () => {
  assert.equal(standbyClusterSettings(memberConfig, dynamicOf({})), null);
  assert.equal(standbyClusterSettings(memberConfig, dynamicOf({ standby_cluster: {} })), null, 'an empty section is no standby cluster');
  assert.equal(standbyClusterSettings(memberConfig, dynamicOf({ standby_cluster: { primary_slot_name: 'x' } })), null);
  const full = standbyClusterSettings(memberConfig, dynamicOf({ standby_cluster: { host: 'h', port: '5433', primary_slot_name: 'Standby-Slot', create_replica_methods: ['wal_e', 'basebackup'] } }))!;
  assert.deepEqual([full.host, full.port, full.primarySlotName, full.createReplicaMethods], ['h', 5433, 'Standby-Slot', ['wal_e', 'basebackup']]);
  assert.equal(remoteSource(full).conn.slotName, 'standby_slot', "Patroni's slot_name_from_member_name");
  const archiveOnly = standbyClusterSettings(memberConfig, dynamicOf({ standby_cluster: { restore_command: 'cp %f %p' } }))!;
  assert.equal(archiveOnly.host, null);
  assert.equal(remoteSource(archiveOnly).conn.host, '', 'no host: no primary_conninfo');
});

test('standby leader recovery settings: remote conninfo, its slot with read-write, restore_command replaces the parameter', () => {
  const cfg = { ...memberConfig, postgresql: { ...memberConfig.postgresql, parameters: { restore_command: 'false' } } };
  const dyn = dynamicOf({});
  const withSlot = remoteSource(standbyClusterSettings(cfg, dynamicOf({ standby_cluster: { host: '10.9.0.1', port: 6432, primary_slot_name: 'dc2', restore_command: 'cp /a/%f %p', recovery_min_apply_delay: 60000 } }))!);
  const sp = standbyParameters(cfg, { upstream: withSlot.conn, useSlots: true });
  assert.equal(sp.primary_slot_name, 'dc2');
  assert.match(String(sp.primary_conninfo), /^host=10\.9\.0\.1 port=6432 .* target_session_attrs=read-write$/);
  assert.equal(sp.restore_command, 'cp /a/%f %p');
  assert.equal(sp.recovery_min_apply_delay, 60000);
  const text = postgresqlConf(cfg, dyn, { includeBase: false, standby: { upstream: withSlot.conn, useSlots: true } });
  assert.equal(text.match(/^restore_command = /gm)?.length, 1, 'written once, the standby_cluster value');
  assert.ok(text.includes("restore_command = 'cp /a/%f %p'"));
  const noSlot = remoteSource(sc).conn;
  const ns = standbyParameters(cfg, { upstream: noSlot, useSlots: true });
  assert.equal(ns.primary_slot_name, '', 'no primary_slot_name: no slot on the remote');
  assert.ok(!primaryConninfo(cfg, noSlot).includes('target_session_attrs'));
  const archive = standbyParameters(cfg, { upstream: { host: '', port: 5432, remote: true, noSlot: true, recovery: { restore_command: 'x' } }, useSlots: true });
  assert.deepEqual([archive.primary_conninfo, archive.primary_slot_name, archive.restore_command], ['', '', 'x']);
  const plain = postgresqlConf(cfg, dyn, { includeBase: false, standby: { upstream: { host: 'h', port: 1 }, useSlots: true } });
  assert.ok(plain.includes("restore_command = 'false'"), 'outside a standby cluster the parameter stays');
});

test('a standby leader with a due switchover asks its peers for their status (it judges the candidate), one scheduled later does not', () => {
  const failover = { leader: 'm1', member: 'm2', version: 4 };
  const c = cluster({ members: [member('m1', { role: 'standby_leader' }), member('m2')], failover });
  const { peers: _p, ...base } = sobs({ ...asM1, pg: pgOnRemote, cluster: c });
  assert.equal(needsPeerStatuses(base), true);
  const later = cluster({ members: [member('m1', { role: 'standby_leader' }), member('m2')], failover: { ...failover, scheduled_at: '2099-01-01T00:00:00+00:00' } });
  const { peers: _q, ...waiting } = sobs({ ...asM1, pg: pgOnRemote, cluster: later });
  assert.equal(needsPeerStatuses(waiting), false);
  const { peers: _r, ...outside } = obs({ ...asM1, pg: pgOnRemote, cluster: c });
  assert.equal(needsPeerStatuses(outside), false, 'a leader in recovery outside a standby cluster does not hand over');
});
