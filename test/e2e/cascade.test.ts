/**
 * Cascading replication on a real cluster: member-3, tagged `replicatefrom: member-2`, streams from
 * member-2 (which keeps a slot for it) instead of from the leader, and still receives every row.
 * member-2 and member-3 are tagged nofailover so that member-1 is the one to bootstrap and lead.
 *
 * Slots as Patroni 4 keeps them (member_slots_ttl at its 30min default): the leader keeps a slot for every
 * member, the cascading one included (idle, advanced to that member's reported position, so it would hold
 * just the WAL member-3 still needs if it had to stream from the leader); a nofailover member keeps slots only
 * for the members that replicate from it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { leaderOf, query, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';

let tc: TestCluster;

before(async () => {
  tc = await startTestCluster({
    members: 3,
    ttl: 10,
    loopWait: 1,
    retryTimeout: 3,
    extra: { tags: { 'member-2': { nofailover: true }, 'member-3': { nofailover: true, replicatefrom: 'member-2' } } },
  });
});

after(async () => {
  await tc?.destroy();
});

test('replicatefrom: member-3 streams from member-2 through a slot member-2 keeps, and gets the rows', async () => {
  const view = await waitHealthy(tc.state, 180_000);
  assert.equal(leaderOf(view).name, 'member-1', 'only member-1 may bootstrap (the others are nofailover)');
  const streams = async (from: string) =>
    (await query<{ a: string }>(tc.state, from, "SELECT application_name AS a FROM pg_stat_replication WHERE state = 'streaming'")).map((r) => r.a).sort();
  await waitFor('member-3 streaming from member-2', 60_000, async () => (await streams('member-2')).includes('member-3'));
  assert.deepEqual(await streams('member-1'), ['member-2'], 'the leader serves member-2 only');
  const slots = await query<{ s: string; a: boolean }>(tc.state, 'member-2', 'SELECT slot_name AS s, active AS a FROM pg_replication_slots ORDER BY 1');
  assert.deepEqual(slots.map((r) => [r.s, r.a]), [['member_3', true]], 'member-2 (nofailover) keeps a slot only for the member streaming from it');
  const leaderSlots = async () =>
    (await query<{ s: string; a: boolean }>(tc.state, 'member-1', 'SELECT slot_name AS s, active AS a FROM pg_replication_slots ORDER BY 1')).map((r) => [r.s, r.a]);
  const expected = [['member_2', true], ['member_3', false]];
  await waitFor(`leader slots ${JSON.stringify(expected)}`, 30_000, async () => JSON.stringify(await leaderSlots()) === JSON.stringify(expected));
  await query(tc.state, 'member-1', "CREATE TABLE cascade_probe(v text); INSERT INTO cascade_probe VALUES ('through member-2')");
  const lsn = (await query<{ lsn: string }>(tc.state, 'member-1', 'SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn;
  await waitFor('the row on member-3', 30_000, async () => (await query(tc.state, 'member-3', 'SELECT 1 FROM cascade_probe')).length === 1);
  // Nobody streams through member_3 on the leader: the leader advances it to where member-3 reports it is.
  await waitFor(`member_3 on the leader advanced past ${lsn}`, 30_000, async () => {
    const r = await query<{ ok: boolean | null }>(tc.state, 'member-1', "SELECT restart_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'member_3'", [lsn]);
    return r[0]?.ok === true;
  });
});
