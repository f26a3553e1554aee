/**
 * synchronous_mode on a real 3-member cluster: the leader records its synchronous standby in the
 * store's `sync` key and points synchronous_standby_names at it; a writer commits continuously while
 * the primary (daemon and postmaster) is killed with -9, ten times in a row: only the synchronous
 * standby is promoted, and every acknowledged commit is on it. Then the same with quorum commit
 * (`synchronous_mode: quorum`, `ANY 1 (…)` over both replicas): whichever replica takes over has every
 * acknowledged commit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterJson } from '../../src/api/cluster-json.js';
import { signalMember } from '../../src/local/cluster.js';
import { Writer, clusterView, killMember, leaderOf, query, restartMember, startTestCluster, waitFor, withClient, type TestCluster } from '../helpers/e2e.js';

for (const mode of [true, 'quorum'] as const) {
describe(`synchronous_mode: ${String(mode)}`, () => {
const ROUNDS = mode === true ? 10 : 5;
const syncRole = mode === true ? 'sync_standby' : 'quorum_standby';
let tc: TestCluster;

before(async () => {
  tc = await startTestCluster({ members: 3, ttl: 5, loopWait: 1, retryTimeout: 2, extra: { dcs: { synchronous_mode: mode } } });
});

after(async () => {
  await tc?.destroy();
});

/** A leader, two running replicas, one (quorum: both) of them recorded in the sync key. */
async function syncHealthy(timeoutMs: number): Promise<{ view: ClusterJson; leader: string; sync: string[] }> {
  return waitFor('a leader with recorded synchronous standbys and two running replicas', timeoutMs, async () => {
    const v = await clusterView(tc.state);
    if (!v) return null;
    const leaders = v.members.filter((m) => m.role === 'leader' && m.state === 'running');
    const syncs = v.members.filter((m) => m.role === syncRole && m.state === 'running');
    const running = v.members.filter((m) => m.role !== 'leader' && m.state === 'running' && typeof m.lag === 'number');
    if (leaders.length !== 1 || syncs.length !== (mode === true ? 1 : 2) || running.length !== 2) return null;
    return { view: v, leader: leaders[0]!.name, sync: syncs.map((m) => m.name).sort() };
  });
}

test('the leader records its synchronous standbys and PostgreSQL waits for exactly those', async () => {
  const { leader, sync } = await syncHealthy(180_000);
  const names = (await query<{ s: string }>(tc.state, leader, "SELECT current_setting('synchronous_standby_names') AS s"))[0]?.s;
  assert.equal(names, mode === true ? `"${sync[0]}"` : `ANY 1 (${sync.map((n) => `"${n}"`).join(',')})`);
  const rows = await query<{ a: string; s: string }>(tc.state, leader, 'SELECT application_name AS a, sync_state AS s FROM pg_stat_replication');
  assert.deepEqual(rows.filter((r) => r.s === (mode === true ? 'sync' : 'quorum')).map((r) => r.a).sort(), sync);
  await query(tc.state, leader, 'CREATE TABLE acked(id int PRIMARY KEY)');
});

test(`kill -9 of the primary, ${ROUNDS} times under a writer: the synchronous standby takes over with every acknowledged commit`, async () => {
  const writer = new Writer(tc.state, 900_000);
  writer.start();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const { leader, sync } = await syncHealthy(120_000);
      const before = writer.acked.length;
      await waitFor(`round ${round}: the writer commits on ${leader}`, 30_000, async () => writer.acked.length >= before + 10);
      await killMember(tc.state, leader);
      const ackedAtKill = [...writer.acked];
      const next = await waitFor(`round ${round}: a new primary after ${leader}`, 60_000, async () => {
        const v = await clusterView(tc.state);
        const l = v?.members.find((m) => m.role === 'leader' && m.state === 'running');
        return l && l.name !== leader ? l.name : null;
      });
      assert.ok(sync.includes(next), `round ${round}: ${next} was promoted, but only ${sync.join(', ')} may be`);
      const present = new Set((await query<{ id: number }>(tc.state, next, 'SELECT id FROM acked')).map((r) => r.id));
      const lost = ackedAtKill.filter((id) => !present.has(id));
      assert.deepEqual(lost, [], `round ${round}: acknowledged commits missing on ${next}`);
      restartMember(tc.state, leader);
    }
  } finally {
    await writer.stop();
  }
  const { leader } = await syncHealthy(120_000);
  const present = new Set((await query<{ id: number }>(tc.state, leader, 'SELECT id FROM acked')).map((r) => r.id));
  assert.ok(writer.acked.length > ROUNDS * 10);
  assert.deepEqual(writer.acked.filter((id) => !present.has(id)), [], 'every acknowledged commit survived all rounds');
});
});
}

describe('synchronous_mode_strict: with no synchronous standby, commits wait instead of running unprotected', () => {
  let tc: TestCluster;

  before(async () => {
    tc = await startTestCluster({ members: 2, ttl: 10, loopWait: 1, retryTimeout: 3, extra: { dcs: { synchronous_mode: true, synchronous_mode_strict: true } } });
  });

  after(async () => {
    await tc?.destroy();
  });

  test('the only replica stops: a commit waits (wait_event SyncRep) until it is back, then completes', async () => {
    const { leader, replica } = await waitFor('a leader and its synchronous standby', 180_000, async () => {
      const v = await clusterView(tc.state);
      const l = v?.members.find((m) => m.role === 'leader' && m.state === 'running');
      const s = v?.members.find((m) => m.role === 'sync_standby' && m.state === 'running');
      return l && s ? { leader: l.name, replica: s.name } : null;
    });
    await query(tc.state, leader, 'CREATE TABLE strict_probe(id int)');
    assert.ok(await signalMember(tc.state, replica, 'SIGTERM', 60_000), 'the replica stopped');
    await waitFor('synchronous_standby_names = * (strict, nobody to wait for)', 30_000, async () =>
      (await query<{ s: string }>(tc.state, leader, "SELECT current_setting('synchronous_standby_names') AS s"))[0]?.s === '*');
    let done = false;
    // No statement_timeout: a cancelled wait would report the commit as done (with a warning).
    const insert = withClient(tc.state, leader, async (c) => {
      await c.query('SET statement_timeout = 0');
      await c.query('INSERT INTO strict_probe VALUES (1)');
      done = true;
    });
    await waitFor('the commit waiting for a synchronous standby', 30_000, async () =>
      (await query<{ n: string }>(tc.state, leader, "SELECT count(*)::text AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'"))[0]?.n === '1');
    assert.equal(done, false, 'not acknowledged without a synchronous standby');
    restartMember(tc.state, replica);
    await insert;
    assert.equal(done, true);
    const rows = await query<{ n: string }>(tc.state, replica, 'SELECT count(*)::text AS n FROM strict_probe');
    assert.equal(rows[0]?.n, '1', 'the acknowledged row is on the synchronous standby');
  });
});
