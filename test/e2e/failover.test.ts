/**
 * A 3-member cluster on real etcd and PostgreSQL, through one story:
 * bootstrap → replication → kill -9 of the primary (failover by WAL position, no acknowledged row lost)
 * → the old primary rejoins through pg_rewind → SIGTERM handover → a primary cut off from etcd stops
 * accepting writes before its TTL has passed → unless the cluster is paused (maintenance mode, as Patroni).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterJson } from '../../src/api/cluster-json.js';
import { member, postmasterPid, signalMember } from '../../src/local/cluster.js';
import { systemClock } from '../../src/util/clock.js';
import {
  Writer,
  clusterView,
  isInRecovery,
  killMember,
  leaderOf,
  memberLog,
  query,
  restartMember,
  startTestCluster,
  waitFor,
  waitHealthy,
  type TestCluster,
} from '../helpers/e2e.js';

const TTL = 10;
let tc: TestCluster;
let view: ClusterJson;

before(async () => {
  tc = await startTestCluster({ members: 3, ttl: TTL, loopWait: 1, retryTimeout: 3 });
});

after(async () => {
  await tc?.destroy();
});

test('bootstrap: one leader, two streaming replicas', async () => {
  view = await waitHealthy(tc.state, 180_000);
  const leader = leaderOf(view);
  assert.equal(await isInRecovery(tc.state, leader.name), false);
  for (const m of view.members.filter((x) => x.name !== leader.name)) {
    assert.equal(await isInRecovery(tc.state, m.name), true, `${m.name} runs as a replica`);
  }
  const sysids = await Promise.all(
    view.members.map(async (m) => (await query<{ s: string }>(tc.state, m.name, 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]!.s),
  );
  assert.equal(new Set(sysids).size, 1, 'all members are copies of one cluster');
});

test('a row written on the primary appears on both replicas', async () => {
  const leader = leaderOf(view).name;
  await query(tc.state, leader, 'CREATE TABLE acked(id int PRIMARY KEY)');
  await query(tc.state, leader, "CREATE TABLE probe(v text); INSERT INTO probe VALUES ('hello')");
  for (const m of view.members.filter((x) => x.name !== leader)) {
    await waitFor(`the row on ${m.name}`, 30_000, async () => (await query(tc.state, m.name, "SELECT 1 FROM probe WHERE v = 'hello'")).length === 1);
  }
});

test('kill -9 of the primary: the replica with the most WAL takes over, no acknowledged row lost', async () => {
  const old = leaderOf(view).name;
  const [ahead, behind] = view.members.filter((m) => m.name !== old).map((m) => m.name) as [string, string];

  // Freeze the WAL receiver of `behind` so that `ahead` is provably further along.
  const [wr] = await query<{ pid: number }>(tc.state, behind, 'SELECT pid FROM pg_stat_wal_receiver');
  assert.ok(wr?.pid, `${behind} has a WAL receiver`);
  process.kill(wr.pid, 'SIGSTOP');
  try {
    const writer = new Writer(tc.state, 60_000);
    writer.start();
    await waitFor('a few acknowledged writes', 30_000, async () => writer.acked.length >= 50);
    await writer.stop();
    const lastId = writer.acked.at(-1)!;
    await waitFor(`${ahead} to have every acknowledged row`, 30_000, async () =>
      (await query(tc.state, ahead, 'SELECT 1 FROM acked WHERE id = $1', [lastId])).length === 1,
    );

    await killMember(tc.state, old);
    const newLeader = await waitFor('a new primary', 90_000, async () => {
      const c = await clusterView(tc.state);
      const l = c ? c.members.find((m) => m.role === 'leader' && m.state === 'running') : null;
      // The lock is taken before the promotion finishes: wait until the new leader accepts writes.
      return l && l.name !== old && (await isInRecovery(tc.state, l.name)) === false ? l.name : null;
    });
    assert.equal(newLeader, ahead, 'the member with the highest WAL position was promoted');
    assert.equal(await isInRecovery(tc.state, ahead), false);

    const rows = await query<{ id: number }>(tc.state, ahead, 'SELECT id FROM acked ORDER BY id');
    const present = new Set(rows.map((r) => r.id));
    const lost = writer.acked.filter((id) => !present.has(id));
    assert.deepEqual(lost, [], 'every acknowledged row is on the new primary');
  } finally {
    try {
      process.kill(wr.pid, 'SIGCONT');
    } catch {
      // the receiver may have exited
    }
  }
  const primaries = [];
  for (const m of tc.state.members.filter((x) => x.name !== old)) {
    if ((await isInRecovery(tc.state, m.name)) === false) primaries.push(m.name);
  }
  assert.deepEqual(primaries, [ahead], 'exactly one primary');
  // The lagging member follows the new primary.
  await waitFor(`${behind} streaming from ${ahead}`, 60_000, async () => {
    const r = await query<{ conninfo: string }>(tc.state, behind, 'SELECT conninfo FROM pg_stat_wal_receiver');
    return r[0]?.conninfo.includes(`port=${member(tc.state, ahead).pgPort}`) ?? false;
  });
});

test('the old primary, restarted, rejoins as a replica through pg_rewind', async () => {
  const c = await waitFor('a leader', 30_000, () => clusterView(tc.state));
  const leader = leaderOf(c).name;
  const old = tc.state.members.find((m) => !c.members.some((x) => x.name === m.name && x.state === 'running'))?.name;
  assert.ok(old, 'one member is down');
  restartMember(tc.state, old);
  view = await waitHealthy(tc.state, 120_000);
  assert.equal(leaderOf(view).name, leader, 'the leader did not change');
  assert.equal(await isInRecovery(tc.state, old), true, `${old} is a replica again`);
  await query(tc.state, leader, "INSERT INTO probe VALUES ('after-rejoin')");
  await waitFor(`${old} replicates new rows`, 30_000, async () =>
    (await query(tc.state, old, "SELECT 1 FROM probe WHERE v = 'after-rejoin'")).length === 1,
  );
  const log = memberLog(tc.state, old);
  assert.match(log, /checking whether i diverged/, 'the rejoin checked for divergence');
  assert.match(log, /running pg_rewind/, 'the crashed former primary was rewound');
});

test('SIGTERM of the primary daemon: a replica is primary well before the TTL', async () => {
  const old = leaderOf(view).name;
  const t0 = systemClock.now();
  assert.ok(await signalMember(tc.state, old, 'SIGTERM', 60_000), 'the daemon exited');
  assert.equal(postmasterPid(tc.state, old), null, 'its PostgreSQL was stopped');
  const next = await waitFor('a new primary', 60_000, async () => {
    for (const m of tc.state.members.filter((x) => x.name !== old)) {
      if ((await isInRecovery(tc.state, m.name)) === false) return m.name;
    }
    return null;
  });
  const took = systemClock.now() - t0;
  assert.ok(took < TTL * 1000, `handover took ${took} ms, the TTL is ${TTL * 1000} ms`);
  restartMember(tc.state, old);
  view = await waitHealthy(tc.state, 120_000);
  assert.equal(leaderOf(view).name, next);
});

test('PostgreSQL killed under a living daemon: the daemon restarts it and keeps the lock', async () => {
  const leader = leaderOf(view).name;
  await query(tc.state, leader, "INSERT INTO probe VALUES ('before-crash')");
  const pm = postmasterPid(tc.state, leader);
  assert.ok(pm, 'the leader runs a postmaster');
  process.kill(pm, 'SIGKILL');
  await waitFor(`${leader} to accept writes again`, TTL * 1000 + 30_000, async () => {
    try {
      await query(tc.state, leader, "INSERT INTO probe VALUES ('after-crash')");
      return true;
    } catch {
      return false;
    }
  });
  view = await waitHealthy(tc.state, 120_000);
  assert.equal(leaderOf(view).name, leader, 'the lock stayed with the member whose PostgreSQL came back within ttl');
  assert.equal((await query(tc.state, leader, "SELECT 1 FROM probe WHERE v = 'before-crash'")).length, 1, 'crash recovery kept the row');
  const log = memberLog(tc.state, leader);
  assert.match(log, /starting as readonly because i had the session lock/);
});

test('a primary cut off from etcd stops accepting writes before its TTL has passed', async () => {
  const leader = leaderOf(view).name;
  tc.etcd.pause();
  const t0 = systemClock.now();
  try {
    await waitFor('the primary to stop accepting writes', TTL * 1000 + 10_000, async () => {
      try {
        await query(tc.state, leader, "INSERT INTO probe VALUES ('cut-off')");
        return false;
      } catch {
        return true;
      }
    });
    const took = systemClock.now() - t0;
    assert.ok(took < TTL * 1000, `writes stopped after ${took} ms, the TTL is ${TTL * 1000} ms`);
  } finally {
    tc.etcd.resume();
  }
  view = await waitHealthy(tc.state, 120_000);
});

test('maintenance mode: a paused primary cut off from etcd for longer than the TTL keeps accepting writes, and takes its lock back', async () => {
  // After the last outage the store may still show the demoted primary as leader for a moment: ask PostgreSQL.
  const leader = await waitFor('a leader that accepts writes', 120_000, async () => {
    const name = leaderOf(await waitHealthy(tc.state, 120_000)).name;
    return (await isInRecovery(tc.state, name)) === false ? name : null;
  });
  const api = (name: string, path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${member(tc.state, name).apiPort}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  const patch = (body: unknown) => api(leader, '/config', { method: 'PATCH', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  assert.equal((await patch({ pause: true })).status, 200);
  for (const m of tc.state.members) {
    await waitFor(`pause on ${m.name}`, 30_000, async () => ((await (await api(m.name, '/patroni')).json()) as { pause?: boolean }).pause === true);
  }
  const logFrom = memberLog(tc.state, leader).length;
  tc.etcd.pause();
  const t0 = systemClock.now();
  let writes = 0;
  try {
    // Past the TTL and the lease guard's moment: every write must still succeed.
    while (systemClock.now() - t0 < (TTL + 5) * 1000) {
      await query(tc.state, leader, "INSERT INTO probe VALUES ('paused')");
      writes++;
      await systemClock.sleep(200);
    }
  } finally {
    tc.etcd.resume();
  }
  assert.ok(writes > 20, `writes went on (${writes})`);
  assert.equal(await isInRecovery(tc.state, leader), false, 'still the primary');
  assert.match(memberLog(tc.state, leader).slice(logFrom), /paused: no automatic actions, not demoting/);
  assert.doesNotMatch(memberLog(tc.state, leader).slice(logFrom), /lease guard/);
  // Its lease expired in etcd meanwhile: the running primary takes the lock again, still paused.
  await waitFor(`${leader} holding the leader key again`, 60_000, async () => {
    const c = await clusterView(tc.state);
    return c?.members.some((m) => m.name === leader && m.role === 'leader') ?? false;
  });
  for (const m of tc.state.members.filter((x) => x.name !== leader)) assert.equal(await isInRecovery(tc.state, m.name), true, `${m.name} was not promoted`);
  assert.equal((await patch({ pause: null })).status, 200);
  view = await waitHealthy(tc.state, 120_000);
  assert.equal(leaderOf(view).name, leader);
});
