/** Synchronous replication, the pure part: whom to make synchronous and whom to record as promotable. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planQuorum, planSync, quorumVisible, synchronousStandbyNames } from '../../src/ha/sync.js';
import { decide } from '../../src/ha/decide.js';
import type { ReplicationRow } from '../../src/postgres/types.js';
import { cluster, member, obs, peer, settings } from '../helpers/ha-fixtures.js';

const row = (name: string, over: Partial<ReplicationRow> = {}): ReplicationRow => ({
  usename: 'replicator',
  application_name: name,
  client_addr: '127.0.0.1',
  state: 'streaming',
  sync_state: 'async',
  sync_priority: 0,
  flush_lsn: 1000,
  replay_lsn: 1000,
  ...over,
});
const members = [member('m1', { role: 'master' }), member('m2'), member('m3'), member('m4', { tags: { nosync: true } })];

test('planSync: picks the most advanced streaming standbys, never the primary, nosync or unknown ones', () => {
  const p = planSync({ me: 'm1', members, replication: [row('m2', { flush_lsn: 900 }), row('m3', { flush_lsn: 1000 }), row('m4', { flush_lsn: 5000 }), row('stranger', { flush_lsn: 9000 })], inNames: new Map(), count: 1 });
  assert.deepEqual(p, { picked: ['m3'], confirmed: [] }, 'not confirmed before it is in synchronous_standby_names');
});

test('planSync: keeps the current synchronous standby even if another is ahead (no churn)', () => {
  const p = planSync({ me: 'm1', members, replication: [row('m2', { flush_lsn: 900, sync_state: 'sync' }), row('m3', { flush_lsn: 1000 })], inNames: new Map([['m2', 800]]), count: 1 });
  assert.deepEqual(p, { picked: ['m2'], confirmed: ['m2'] });
});

test('planSync: confirmed only once PostgreSQL says sync AND it flushed everything written before it was added', () => {
  const base = { me: 'm1', members, inNames: new Map([['m2', 2000]]), count: 1 };
  assert.deepEqual(planSync({ ...base, replication: [row('m2', { sync_state: 'sync', flush_lsn: 1999 })] }).confirmed, []);
  assert.deepEqual(planSync({ ...base, replication: [row('m2', { sync_state: 'potential', flush_lsn: 5000 })] }).confirmed, []);
  assert.deepEqual(planSync({ ...base, replication: [row('m2', { sync_state: 'sync', flush_lsn: 2000 })] }).confirmed, ['m2']);
});

test('planSync: a standby that is not streaming is dropped; synchronous_node_count 2 takes two', () => {
  const rows = [row('m2', { state: 'catchup' }), row('m3')];
  assert.deepEqual(planSync({ me: 'm1', members, replication: rows, inNames: new Map(), count: 1 }).picked, ['m3']);
  const two = planSync({ me: 'm1', members: [...members, member('m5')], replication: [row('m2'), row('m3'), row('m5')], inNames: new Map(), count: 2 });
  assert.equal(two.picked.length, 2);
});

test('synchronous_standby_names in Patroni format; strict with nobody blocks writes with *', () => {
  assert.equal(synchronousStandbyNames(['m2'], 1, false), '"m2"');
  assert.equal(synchronousStandbyNames(['m2', 'm3'], 2, false), '2 ("m2","m3")');
  assert.equal(synchronousStandbyNames(['m2'], 2, false), '1 ("m2")');
  assert.equal(synchronousStandbyNames([], 1, false), '');
  assert.equal(synchronousStandbyNames([], 1, true), '*');
  assert.equal(synchronousStandbyNames(['we"ird'], 1, false), '"we""ird"');
});

const syncOn = { ...settings, synchronousMode: true };
const unlockedSync = (sync: string[]) => cluster({ leader: null, members: [member('m2'), member('m3')], sync: { leader: 'm1', sync_standby: sync, version: 1 } });

test('decide, synchronous mode: a member not recorded as synchronous does not race', () => {
  const d = decide({ ...obs({ cluster: unlockedSync(['m3']), peers: [peer('m3', { reachable: false })] }), settings: syncOn });
  assert.equal(d.action, 'noop');
  assert.match(d.reason, /not a synchronous standby/);
});

test('decide, synchronous mode: the recorded synchronous standby races', () => {
  const d = decide({ ...obs({ cluster: unlockedSync(['m2']), peers: [peer('m3')] }), settings: syncOn });
  assert.equal(d.action, 'acquire_lock');
});

test('decide, synchronous mode with nobody recorded (the old primary ran without a sync standby): anyone healthy races', () => {
  const d = decide({ ...obs({ cluster: unlockedSync([]), peers: [peer('m3')] }), settings: syncOn });
  assert.equal(d.action, 'acquire_lock');
});

test('planQuorum: every eligible standby listed in ANY k; covered once flushed past the change', () => {
  const rows = [row('m2', { flush_lsn: 900 }), row('m3', { flush_lsn: 1200 }), row('m4')];
  const p = planQuorum({ me: 'm1', members, replication: rows, count: 1, strict: false, since: 1000 });
  assert.deepEqual(p, { listed: ['m2', 'm3'], k: 1, names: 'ANY 1 ("m2","m3")', covered: ['m3'] });
  assert.equal(planQuorum({ me: 'm1', members, replication: rows, count: 5, strict: false, since: null }).k, 2, 'non-strict: k at most the listed');
  assert.equal(planQuorum({ me: 'm1', members, replication: rows, count: 5, strict: true, since: null }).names, 'ANY 5 ("m2","m3")', 'strict: writes wait');
  assert.equal(planQuorum({ me: 'm1', members, replication: [], count: 1, strict: true, since: null }).names, '*');
  assert.equal(planQuorum({ me: 'm1', members, replication: [], count: 1, strict: false, since: null }).names, '');
});

test('quorumVisible: n − k + 1 listed members, us included, must be visible', () => {
  assert.deepEqual(quorumVisible(['m2', 'm3'], 1, 'm2', ['m3']), { have: 2, need: 2 });
  assert.deepEqual(quorumVisible(['m2', 'm3'], 1, 'm2', []), { have: 1, need: 2 });
  assert.deepEqual(quorumVisible(['m2', 'm3', 'm4'], 2, 'm2', ['m9']), { have: 1, need: 2 });
  assert.deepEqual(quorumVisible(['m2', 'm3', 'm4'], 2, 'm2', ['m4']), { have: 2, need: 2 });
});

const quorumOn = { ...settings, synchronousMode: true, quorumCommit: true };
const unlockedQuorum = (sync: string[], quorum: number) =>
  cluster({ leader: null, members: [member('m2'), member('m3'), member('m4')], sync: { leader: 'm1', sync_standby: sync, quorum, version: 1 } });

test('decide, quorum: a quorum member that cannot see enough of the quorum does not race', () => {
  const d = decide({ ...obs({ cluster: unlockedQuorum(['m2', 'm3', 'm4'], 1), peers: [peer('m3'), peer('m4', { reachable: false })] }), settings: quorumOn });
  assert.equal(d.action, 'noop');
  assert.match(d.reason, /2 of the quorum members, 3 are needed/);
});

test('decide, quorum: seeing enough members and the most advanced of them: race', () => {
  const d = decide({ ...obs({ cluster: unlockedQuorum(['m2', 'm3', 'm4'], 2), peers: [peer('m3', { walPosition: 90 }), peer('m4', { reachable: false })] }), settings: quorumOn });
  assert.equal(d.action, 'acquire_lock');
});

test('decide, quorum: a visible quorum member ahead of us wins instead', () => {
  const d = decide({ ...obs({ cluster: unlockedQuorum(['m2', 'm3'], 1), peers: [peer('m3', { walPosition: 150 })] }), settings: quorumOn });
  assert.equal(d.action, 'noop');
});
