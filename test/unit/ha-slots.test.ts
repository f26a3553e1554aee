/**
 * Replication slot planning (Patroni 4's get_replication_slots + SlotsHandler.sync_replication_slots):
 * which slots each role keeps, and the steps from what the server has to that.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DYNAMIC_DEFAULTS, type DynamicConfig } from '../../src/config/types.js';
import type { Cluster } from '../../src/dcs/types.js';
import {
  desiredSlots,
  isIgnored,
  needsHotStandbyFeedback,
  parseSeconds,
  planSlots,
  readSlotsConfig,
  retainSlots,
  statusSlots,
  type LocalSlot,
  type SlotPlanInput,
  type SlotsConfig,
} from '../../src/ha/slots.js';
import { cluster, member } from '../helpers/ha-fixtures.js';

const base: SlotsConfig = { useSlots: true, permanent: {}, ignore: [], memberSlotsTtlS: 1800, standbyCluster: false };

function input(o: Partial<Omit<SlotPlanInput, 'config'>> & { config?: Partial<SlotsConfig> } = {}): SlotPlanInput {
  return {
    me: 'm1',
    role: 'primary',
    nofailover: false,
    cluster: cluster(),
    paused: false,
    local: [],
    replayLsn: null,
    serverVersion: 150000,
    ...o,
    config: { ...base, ...o.config },
  };
}

function slot(name: string, o: Partial<LocalSlot> = {}): LocalSlot {
  return { name, type: 'physical', plugin: null, database: null, active: false, xmin: null, catalogXmin: null, restartLsn: 1000, confirmedFlushLsn: null, walStatus: 'reserved', ...o };
}

const logical = (name: string, o: Partial<LocalSlot> = {}): LocalSlot =>
  slot(name, { type: 'logical', plugin: 'test_decoding', database: 'postgres', confirmedFlushLsn: 1000, ...o });

const cascade: Cluster = cluster({
  members: [
    member('m1', { role: 'master' }),
    member('m2'),
    member('m3', { tags: { replicatefrom: 'm2' } }),
    member('m4', { tags: { replicatefrom: 'gone' } }),
    member('M-5', { tags: { replicatefrom: 'm1' } }),
  ],
});

test('member_slots_ttl 0 (the old rule): the leader keeps slots for members streaming from it, a replica for those cascading from it', () => {
  const names = (o: Partial<SlotPlanInput>) => Object.keys(desiredSlots(input({ cluster: cascade, config: { memberSlotsTtlS: 0 }, ...o }))).sort();
  assert.deepEqual(names({}), ['m2', 'm4', 'm_5']);
  assert.deepEqual(names({ me: 'm2', role: 'replica' }), ['m3']);
  assert.deepEqual(names({ me: 'm3', role: 'replica' }), []);
});

test('member slot retention: every member keeps a slot for every other member; only streaming ones are expected active', () => {
  const lead = desiredSlots(input({ cluster: cascade }));
  assert.deepEqual(Object.keys(lead).sort(), ['m2', 'm3', 'm4', 'm_5']);
  assert.equal(lead.m3!.expectedActive, false, 'm3 streams from m2');
  assert.equal(lead.m2!.expectedActive, true);
  const rep = desiredSlots(input({ cluster: cascade, me: 'm2', role: 'replica' }));
  assert.deepEqual(Object.keys(rep).sort(), ['m1', 'm3', 'm4', 'm_5']);
  assert.deepEqual(Object.entries(rep).filter(([, v]) => v.expectedActive).map(([k]) => k), ['m3']);
  // nofailover: only the members that cascade from us.
  assert.deepEqual(Object.keys(desiredSlots(input({ cluster: cascade, me: 'm2', role: 'replica', nofailover: true }))), ['m3']);
  // PostgreSQL 10 cannot advance slots: the old rule.
  assert.deepEqual(Object.keys(desiredSlots(input({ cluster: cascade, serverVersion: 100000 }))).sort(), ['m2', 'm4', 'm_5']);
});

test('idle member slots on a replica are advanced to the position the leader publishes; a cascading member’s own position counts', () => {
  const c = cluster({
    members: [member('m1', { role: 'master' }), member('m2'), member('m3', { tags: { replicatefrom: 'm2' }, xlog_location: 9000 })],
    status: { optime: 10_000, slots: { m1: 8000, m3: 500 } },
  });
  const p = planSlots(input({ cluster: c, me: 'm2', role: 'replica', replayLsn: 9500, local: [slot('m1'), slot('m3', { active: true })] }));
  assert.deepEqual(p.advancePhysical, [{ name: 'm1', lsn: 8000 }], 'm3 streams through its slot here: not advanced by us');
  const q = planSlots(input({ cluster: c, me: 'm1', local: [slot('m2', { active: true }), slot('m3')] }));
  assert.deepEqual(q.advancePhysical, [{ name: 'm3', lsn: 9000 }], 'the leader advances the idle slot of the cascading member');
});

test('permanent slots: physical on every member, logical created on the primary, copied then advanced on replicas', () => {
  const config = { permanent: { keep: { type: 'physical' }, cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' }, bare: null } };
  const c = cluster({ status: { optime: 5000, slots: { cdc: 4000, keep: 3000 } } });
  const primary = planSlots(input({ cluster: c, config, local: [slot('m2', { active: true }), slot('m3', { active: true })] }));
  assert.deepEqual([...primary.createPhysical].sort(), ['bare', 'keep']);
  assert.deepEqual(primary.createLogical, [{ name: 'cdc', database: 'postgres', plugin: 'test_decoding' }]);
  const replica = planSlots(input({ cluster: c, config, me: 'm2', role: 'replica', replayLsn: 4500, local: [slot('m1'), slot('m3')] }));
  assert.deepEqual([...replica.createPhysical].sort(), ['bare', 'keep']);
  assert.deepEqual(replica.copyLogical, ['cdc']);
  assert.deepEqual(replica.createLogical, []);
  // Once copied: advanced, never past what the replica replayed.
  const later = planSlots(input({ cluster: c, config, me: 'm2', role: 'replica', replayLsn: 3500, local: [slot('m1'), slot('m3'), slot('keep'), slot('bare'), logical('cdc')] }));
  assert.deepEqual(later.copyLogical, []);
  assert.deepEqual(later.advanceLogical, [{ name: 'cdc', database: 'postgres', lsn: 3500 }]);
  assert.deepEqual(later.drop, []);
  // Not published by the leader yet: nothing to copy.
  assert.deepEqual(planSlots(input({ cluster: cluster(), config, me: 'm2', role: 'replica' })).copyLogical, []);
  // nofailover members keep no permanent slots.
  assert.deepEqual(Object.keys(desiredSlots(input({ cluster: c, config, me: 'm2', role: 'replica', nofailover: true }))), []);
});

test('permanent slot names: invalid ones and logical ones named like a member are refused; a physical one named like a member is the member’s', () => {
  const problems: string[] = [];
  const slots = desiredSlots(
    input({
      config: {
        permanent: {
          'Bad-Name': { type: 'physical' },
          m2: { type: 'logical', database: 'postgres', plugin: 'test_decoding' },
          m3: { type: 'physical' },
          m1: { type: 'physical' },
          odd: 'yes',
          half: { type: 'logical', database: 'postgres' },
        },
      },
    }),
    problems,
  );
  assert.deepEqual(Object.keys(slots).sort(), ['m2', 'm3']);
  assert.equal(slots.m2!.type, 'physical', 'the member slot wins over the logical permanent one');
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.ok(problems.some((p) => p.includes("'Bad-Name'")));
  assert.ok(problems.some((p) => p.includes("'m2'") && p.includes('conflicts')));
  assert.ok(problems.some((p) => p.includes("'m3'") && p.includes("member's slot")));
});

test('unknown slots are dropped unless ignored, active or paused; a slot whose kind changes is dropped and recreated', () => {
  const local = [
    slot('m2', { active: true }),
    slot('m3', { active: true }),
    slot('stray'),
    slot('stray_active', { active: true }),
    logical('ext_cdc', { plugin: 'pgoutput' }),
    logical('other_db', { database: 'app' }),
    logical('cdc', { plugin: 'pgoutput' }),
  ];
  const config = { permanent: { cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' } }, ignore: [{ plugin: 'pgoutput', name: 'ext_cdc' }, { database: 'app' }] };
  const p = planSlots(input({ config, local }));
  assert.deepEqual(p.drop.map((d) => d.name).sort(), ['cdc', 'stray']);
  assert.deepEqual(p.busy, ['stray_active']);
  assert.deepEqual(p.createLogical.map((s) => s.name), ['cdc']);
  assert.deepEqual(planSlots(input({ config, local, paused: true })).drop.map((d) => d.name), ['cdc'], 'paused: unknown slots stay');
  assert.equal(isIgnored([{ type: 'logical' }], slot('x')), false);
  assert.equal(isIgnored([{}], slot('x')), true, 'an empty matcher matches everything, as in Patroni');
});

test('a member slot invalidated by PostgreSQL (wal_status lost) is dropped and recreated; so is an idle slot with an xmin', () => {
  const local = [slot('m2', { walStatus: 'lost', restartLsn: null }), slot('m3', { active: true })];
  const p = planSlots(input({ local }));
  assert.deepEqual(p.drop.map((d) => d.name), ['m2']);
  assert.match(p.drop[0]!.reason, /invalidated/);
  assert.deepEqual(p.createPhysical, ['m2']);
  const active = planSlots(input({ local: [slot('m2', { walStatus: 'lost', restartLsn: null, active: true }), slot('m3', { active: true })] }));
  assert.deepEqual([active.drop, active.createPhysical], [[], []], 'a walsender still holds it: next time');
  const c = cluster({ members: [member('m1', { role: 'master' }), member('m2'), member('m3', { tags: { replicatefrom: 'm2' } })] });
  const x = planSlots(input({ cluster: c, local: [slot('m2', { active: true, xmin: 700 }), slot('m3', { xmin: 700 })] }));
  assert.deepEqual(x.drop.map((d) => d.name), ['m3'], 'm3 is not expected to stream from the leader');
  assert.deepEqual(x.createPhysical, ['m3']);
});

test('use_slots off: no slots at all (and unknown ones are dropped, as Patroni does)', () => {
  const p = planSlots(input({ config: { useSlots: false, permanent: { keep: null } }, local: [slot('m2')] }));
  assert.deepEqual(p.desired, {});
  assert.deepEqual(p.drop.map((d) => d.name), ['m2']);
});

test('retain_slots: a member slot is kept member_slots_ttl after the member was last seen, then expires', () => {
  const config = { ...base, memberSlotsTtlS: 5 };
  const members = [member('m1'), member('m2')];
  let r = retainSlots({ seen: new Map(), published: { m1: 10, m2: 5, keep: 3 }, me: 'm1', members, config: { ...config, permanent: { keep: null } }, now: 1000 });
  assert.deepEqual(r.list, ['m1', 'm2'], 'permanent slots are not member slots');
  // m2 leaves: its slot is still published (it exists) but m2 is no member, so it is not seen again.
  r = retainSlots({ seen: r.seen, published: { m1: 20, m2: 5 }, me: 'm1', members: [member('m1')], config, now: 5999 });
  assert.deepEqual(r.list, ['m1', 'm2']);
  r = retainSlots({ seen: r.seen, published: { m1: 30 }, me: 'm1', members: [member('m1')], config, now: 6000 });
  assert.deepEqual([r.list, r.expired], [['m1'], ['m2']]);
  r = retainSlots({ seen: new Map([['m2', 1000]]), published: {}, me: 'm1', members, config: { ...config, memberSlotsTtlS: 0 }, now: 1000 });
  assert.deepEqual(r.list, [], 'member_slots_ttl 0: nothing is retained');
  // Retained names make slots on every member that may fail over.
  const c = cluster({ status: { retain_slots: ['gone', 'm2'] } });
  assert.deepEqual(Object.keys(desiredSlots(input({ cluster: c, me: 'm2', role: 'replica' }))).sort(), ['gone', 'm1', 'm3']);
  assert.deepEqual(Object.keys(desiredSlots(input({ cluster: c, me: 'm2', role: 'replica', nofailover: true }))), []);
});

test('status.slots: positions of managed slots (restart_lsn / confirmed_flush_lsn) and the leader’s own; only permanent ones with member_slots_ttl 0', () => {
  const config = { ...base, permanent: { cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' }, keep: null } };
  const c = cluster();
  const local = [slot('m2', { restartLsn: 700 }), logical('cdc', { confirmedFlushLsn: 650, restartLsn: 600 }), slot('keep', { restartLsn: 500 }), slot('stray', { restartLsn: 1 })];
  const desired = desiredSlots(input({ cluster: c, config }));
  const all = statusSlots({ me: 'm1', walPosition: 900, local, desired, config, members: c.members, serverVersion: 150000 });
  assert.deepEqual(all, { m2: 700, cdc: 650, keep: 500, m1: 900 });
  const onlyPermanent = statusSlots({ me: 'm1', walPosition: 900, local, desired, config: { ...config, memberSlotsTtlS: 0 }, members: c.members, serverVersion: 150000 });
  assert.deepEqual(onlyPermanent, { cdc: 650, keep: 500 });
});

test('hot_standby_feedback is forced on a replica with permanent logical slots, and on one others cascade from', () => {
  const config = { ...base, permanent: { cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' } } };
  const c = cluster({ members: [member('m1'), member('m2', { tags: { nofailover: true } }), member('m3', { tags: { replicatefrom: 'm2' } })] });
  const hsf = (me: string, nofailover: boolean, cfg: SlotsConfig) => needsHotStandbyFeedback({ me, role: 'replica', nofailover, cluster: c, config: cfg, serverVersion: 150000 });
  assert.equal(hsf('m3', false, config), true);
  assert.equal(hsf('m2', true, config), true, 'nofailover itself, but m3 cascades from it');
  assert.equal(hsf('m3', false, base), false);
});

test('config: slots, ignore_slots and member_slots_ttl read from the dynamic config; durations as Patroni parses them', () => {
  assert.deepEqual([parseSeconds('30min'), parseSeconds('5s'), parseSeconds(7), parseSeconds('12'), parseSeconds('1h'), parseSeconds('soon')], [1800, 5, 7, 12, 3600, null]);
  const dyn = (raw: Record<string, unknown>): DynamicConfig => ({ ...DYNAMIC_DEFAULTS, postgresql: { use_slots: true, use_pg_rewind: false, parameters: {} }, raw }) as DynamicConfig;
  const { config, problems } = readSlotsConfig(dyn({ slots: { a: null }, ignore_slots: [{ name: 'x', type: 'logical', bogus: 1 }, 'no'], member_slots_ttl: '5s' }));
  assert.deepEqual(config.permanent, { a: null });
  assert.deepEqual(config.ignore, [{ name: 'x', type: 'logical' }]);
  assert.equal(config.memberSlotsTtlS, 5);
  assert.equal(problems.length, 1);
  assert.equal(readSlotsConfig(dyn({})).config.memberSlotsTtlS, 1800);
  assert.equal(readSlotsConfig(dyn({ member_slots_ttl: 'never' })).config.memberSlotsTtlS, 1800);
  assert.deepEqual(readSlotsConfig(dyn({ permanent_slots: { b: {} } })).config.permanent, { b: {} });
});
