/**
 * Failsafe mode on a real 3-member cluster with a real etcd, through one story:
 * (1) failsafe_mode on, etcd frozen (SIGSTOP) for longer than the TTL under a writer: zero write errors,
 *     the same primary on the same timeline, `/patroni` shows failsafe_mode_is_active; etcd back → healthy,
 *     same leader;
 * (2) one replica stopped, then etcd frozen: the primary cannot get every acknowledgement and stops
 *     accepting writes before its lease could have expired;
 * (3) failsafe_mode switched off (PATCH /config), etcd frozen: the primary demotes (the control case).
 *
 * The timing checks are about the rule, not the machine's speed: etcd is frozen at t0, after our last
 * lease renewal, so the lease expires at t0 + ttl at the latest; the last write the primary acknowledged
 * must have been acknowledged before that.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterJson } from '../../src/api/cluster-json.js';
import { member } from '../../src/local/cluster.js';
import { systemClock } from '../../src/util/clock.js';
import {
  Writer,
  killMember,
  isInRecovery,
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
  tc = await startTestCluster({ members: 3, ttl: TTL, loopWait: 1, retryTimeout: 3, extra: { dcs: { failsafe_mode: true } } });
});

after(async () => {
  await tc?.destroy();
});

async function api(name: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${member(tc.state, name).apiPort}${path}`, { ...init, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text
  }
  return { status: res.status, body };
}

async function status(name: string): Promise<Record<string, unknown> | null> {
  try {
    const r = await api(name, '/patroni');
    return r.body as Record<string, unknown>;
  } catch {
    return null;
  }
}

async function failsafeTopology(name: string): Promise<Record<string, string> | null> {
  const r = await api(name, '/failsafe');
  return r.status === 200 ? (r.body as Record<string, string>) : null;
}

async function timeline(name: string): Promise<number> {
  return Number((await query<{ t: number }>(tc.state, name, 'SELECT timeline_id AS t FROM pg_control_checkpoint()'))[0]!.t);
}

/** Lines of `name`'s daemon log written after `from` characters. */
function logSince(name: string, from: number): string {
  return memberLog(tc.state, name).slice(from);
}

test('bootstrap with failsafe_mode: the leader keeps every member in the failsafe key', async () => {
  view = await waitHealthy(tc.state, 180_000);
  const leader = leaderOf(view).name;
  await query(tc.state, leader, 'CREATE TABLE acked(id int PRIMARY KEY)');
  const t = await waitFor('the failsafe topology with all three members', 30_000, async () => {
    const t = await failsafeTopology(leader);
    return t && Object.keys(t).length === 3 ? t : null;
  });
  for (const m of tc.state.members) assert.equal(t[m.name], `http://127.0.0.1:${m.apiPort}/patroni`);
});

test('etcd frozen for longer than the TTL: the primary keeps accepting writes, no failover', async () => {
  const leader = leaderOf(view).name;
  const replicas = view.members.filter((m) => m.name !== leader).map((m) => m.name);
  const tl = await timeline(leader);
  const logFrom = memberLog(tc.state, leader).length;
  const writer = new Writer(tc.state, 300_000);
  writer.start();
  try {
    await waitFor('the writer to get going', 30_000, async () => writer.acked.length >= 20);
    tc.etcd.pause();
    const t0 = systemClock.now();
    try {
      await waitFor('failsafe_mode_is_active on the leader', TTL * 1000, async () => (await status(leader))?.failsafe_mode_is_active === true);
      await waitFor('failsafe_mode_is_active on a replica the leader pinged', TTL * 1000, async () => (await status(replicas[0]!))?.failsafe_mode_is_active === true);
      // Hold the outage well past the TTL, checking all along that the writer never failed.
      let seen = writer.acked.length;
      while (systemClock.now() - t0 < (TTL + 5) * 1000) {
        assert.equal(writer.errors, 0, `a write failed ${systemClock.now() - t0} ms into the store outage`);
        await systemClock.sleep(500);
      }
      assert.ok(writer.acked.length > seen + 100, `writes went on during the outage (${writer.acked.length - seen} acknowledged)`);
      seen = writer.acked.length;
      const s = await status(leader);
      assert.equal(s?.role, 'master', 'the primary is still the primary');
      assert.equal(s?.failsafe_mode_is_active, true);
    } finally {
      tc.etcd.resume();
    }
    const atResume = writer.acked.length;
    view = await waitHealthy(tc.state, 120_000);
    assert.equal(leaderOf(view).name, leader, 'the same member leads once etcd is back');
    await waitFor('failsafe mode no longer active on the leader', 30_000, async () => (await status(leader))?.failsafe_mode_is_active === undefined);
    await waitFor('writes going on after the outage', 10_000, async () => writer.acked.length > atResume + 20);
  } finally {
    await writer.stop();
  }
  assert.equal(writer.errors, 0, 'not one write failed, before, during or after the outage');
  assert.equal(await timeline(leader), tl, 'no promotion happened anywhere (same timeline)');
  const rows = await query<{ n: string }>(tc.state, leader, 'SELECT count(*) AS n FROM acked WHERE id = ANY($1::int[])', [writer.acked]);
  assert.equal(Number(rows[0]!.n), writer.acked.length, 'every acknowledged row is there');
  assert.match(logSince(leader, logFrom), /continue to run as a leader because failsafe mode is enabled and all members are accessible/);
  await query(tc.state, leader, 'TRUNCATE acked');
});

test('with one member stopped too, the primary demotes before its lease could have expired', async () => {
  const leader = leaderOf(view).name;
  const stopped = view.members.find((m) => m.name !== leader)!.name;
  const logFrom = memberLog(tc.state, leader).length;
  // After the last outage the replicas' leases may have expired and their keys come back one by one: the
  // leader rewrites the topology on its next tick.
  await waitFor(`${stopped} in the failsafe topology`, 30_000, async () => Boolean((await failsafeTopology(leader))?.[stopped]));
  const writer = new Writer(tc.state, 300_000);
  writer.start();
  let t0 = 0;
  try {
    await waitFor('the writer to get going', 30_000, async () => writer.acked.length >= 20);
    tc.etcd.pause();
    t0 = systemClock.now();
    try {
      // kill -9 (daemon and postmaster) while the store is frozen: its member key, and so its place in the
      // failsafe topology, cannot go away now (a clean stop, or a kill before the freeze, would let its key
      // be deleted or its lease expire first, and the two left would rightly keep the primary running).
      await killMember(tc.state, stopped);
      await waitFor('the primary to stop running as primary', TTL * 1000 + 15_000, async () => (await isInRecovery(tc.state, leader)) !== false);
      const lastAck = writer.lastAckAt - t0;
      assert.ok(lastAck < TTL * 1000, `the last write was acknowledged ${lastAck} ms after etcd froze; the lease expires within ${TTL * 1000} ms`);
      assert.ok(writer.errors > 0, 'writes stopped being acknowledged');
      assert.match(logSince(leader, logFrom), new RegExp(`demoting self because the store is not accessible.*failsafe: no acknowledgement from ${stopped}`));
    } finally {
      tc.etcd.resume();
    }
  } finally {
    await writer.stop();
  }
  restartMember(tc.state, stopped);
  // The store's member keys may still describe the cluster before the outage: ask the members themselves.
  await waitFor(`${stopped} running as a replica again`, 120_000, async () => {
    const s = await status(stopped);
    return s?.state === 'running' && s.role === 'replica';
  });
  view = await waitFor('one running primary and a healthy cluster', 180_000, async () => {
    const c = await waitHealthy(tc.state, 180_000);
    return (await isInRecovery(tc.state, leaderOf(c).name)) === false ? c : null;
  });
});

test('without failsafe_mode a store outage demotes the primary (the control case)', async () => {
  const leader = leaderOf(view).name;
  const patched = await api(leader, '/config', { method: 'PATCH', body: JSON.stringify({ failsafe_mode: false }), headers: { 'content-type': 'application/json' } });
  assert.equal(patched.status, 200);
  // The leader serves /config from the snapshot its last tick decided on: once it shows the change, it is in force.
  await waitFor('the leader to run with failsafe_mode off', 30_000, async () => {
    const c = await api(leader, '/config');
    return c.status === 200 && (c.body as Record<string, unknown>).failsafe_mode === false;
  });
  const logFrom = memberLog(tc.state, leader).length;
  const writer = new Writer(tc.state, 300_000);
  writer.start();
  try {
    await waitFor('the writer to get going', 30_000, async () => writer.acked.length >= 20);
    tc.etcd.pause();
    const t0 = systemClock.now();
    try {
      await waitFor('the primary to stop running as primary', TTL * 1000 + 15_000, async () => (await isInRecovery(tc.state, leader)) !== false);
      const lastAck = writer.lastAckAt - t0;
      assert.ok(lastAck < TTL * 1000, `the last write was acknowledged ${lastAck} ms after etcd froze; the lease expires within ${TTL * 1000} ms`);
      const log = logSince(leader, logFrom);
      assert.match(log, /demoting self because the store is not accessible/);
      assert.doesNotMatch(log, /failsafe: /, 'nobody was asked: failsafe mode is off');
    } finally {
      tc.etcd.resume();
    }
  } finally {
    await writer.stop();
  }
  view = await waitHealthy(tc.state, 180_000);
});
