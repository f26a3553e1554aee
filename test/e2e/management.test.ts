/**
 * The management half on a real 3-member cluster (etcd + PostgreSQL): planned switchovers under a
 * writer lose no acknowledged row and need no pg_rewind; refused requests change nothing; a scheduled
 * switchover waits for its time; dynamic parameters reach every member (reload or pending restart,
 * then POST /restart); maintenance mode stops automatic failover; a replica is rebuilt on request
 * with its old data kept; SIGHUP applies a changed config file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { ClusterJson } from '../../src/api/cluster-json.js';
import { member, postmasterPid, signalMember } from '../../src/local/cluster.js';
import { systemClock } from '../../src/util/clock.js';
import { runPg } from '../../src/postgres/runas.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { join } from 'node:path';
import { Writer, clusterView, leaderOf, memberLog, query, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';

const TTL = 10;
let tc: TestCluster;

before(async () => {
  tc = await startTestCluster({ members: 3, ttl: TTL, loopWait: 1, retryTimeout: 3 });
  await waitHealthy(tc.state, 180_000);
  await query(tc.state, leaderOf((await clusterView(tc.state))!).name, 'CREATE TABLE acked(id int PRIMARY KEY)');
});

after(async () => {
  await tc?.destroy();
});

function api(name: string): string {
  return `http://127.0.0.1:${member(tc.state, name).apiPort}`;
}

async function call(name: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(`${api(name)}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // plain text (Patroni's success sentences)
  }
  return { status: res.status, text, json };
}

async function healthyView(): Promise<ClusterJson> {
  return waitHealthy(tc.state, 120_000);
}

/** Every replica streams from the leader (pg_stat_replication on the leader). */
async function allStreaming(leader: string): Promise<boolean> {
  const rows = await query<{ n: string }>(tc.state, leader, "SELECT count(*)::text AS n FROM pg_stat_replication WHERE state = 'streaming'");
  return rows[0]?.n === String(tc.state.members.length - 1);
}

test('planned switchover, 3 rounds under a writer: the candidate leads, no acknowledged row lost, no pg_rewind', async () => {
  const writer = new Writer(tc.state, 240_000);
  writer.start();
  try {
    for (let round = 0; round < 3; round++) {
      const view = await healthyView();
      const leader = leaderOf(view).name;
      await waitFor(`replicas streaming from ${leader}`, 60_000, () => allStreaming(leader));
      const candidate = view.members.find((m) => m.name !== leader)!.name;
      // The leader judges the candidate by its GET /patroni, which follows its daemon's last tick: a former
      // leader may already stream while it still reports its previous role for a moment.
      await waitFor(`${candidate} reporting itself a running replica`, 30_000, async () => {
        const s = (await call(candidate, 'GET', '/patroni')).json as { state?: string; role?: string };
        return s.state === 'running' && s.role === 'replica';
      });
      const rewindsBefore = memberLog(tc.state, leader).split('running pg_rewind').length;
      const okBefore = writer.acked.length;
      const r = await call(leader, 'POST', '/switchover', { leader, candidate });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, `Successfully switched over to "${candidate}"`);
      const after = await waitFor(`${candidate} leads with the old leader streaming again`, 60_000, async () => {
        const v = await clusterView(tc.state);
        return v && leaderOf(v).name === candidate && (await allStreaming(candidate)) ? v : null;
      });
      assert.equal(leaderOf(after).name, candidate);
      assert.equal(memberLog(tc.state, leader).split('running pg_rewind').length, rewindsBefore, 'the old leader rejoined without pg_rewind');
      await waitFor('the writer commits on the new primary', 30_000, async () => writer.acked.length > okBefore + 10);
    }
  } finally {
    await writer.stop();
  }
  const leader = leaderOf(await healthyView()).name;
  const present = new Set((await query<{ id: number }>(tc.state, leader, 'SELECT id FROM acked')).map((r) => r.id));
  const lost = writer.acked.filter((id) => !present.has(id));
  assert.ok(writer.acked.length >= 33, 'the writer committed rows in every round');
  assert.deepEqual(lost, [], 'every acknowledged row is on the final primary');
});

test('refused requests: 412/400 with the reason, and nothing changes', async () => {
  const view = await healthyView();
  const leader = leaderOf(view).name;
  const replica = view.members.find((m) => m.name !== leader)!.name;
  const cases: Array<[unknown, number, RegExp]> = [
    [{ leader, candidate: 'no-such-member' }, 412, /candidate does not exists/],
    [{ leader: replica, candidate: leader }, 412, /leader name does not match/],
    [{ candidate: replica }, 400, /only from a specific leader/],
  ];
  for (const [body, status, re] of cases) {
    const r = await call(replica, 'POST', '/switchover', body);
    assert.equal(r.status, status, r.text);
    assert.match((r.json as { message: string }).message, re);
  }
  const now = await clusterView(tc.state);
  assert.equal(leaderOf(now!).name, leader, 'the leader did not change');
  assert.equal((await call(leader, 'DELETE', '/switchover')).status, 404, 'no failover key was left behind');
});

test('a scheduled switchover waits for its time, then happens', async () => {
  const view = await healthyView();
  const leader = leaderOf(view).name;
  const candidate = view.members.find((m) => m.name !== leader)!.name;
  const at = new Date(Date.now() + 4000);
  const r = await call(leader, 'POST', '/switchover', { leader, candidate, scheduled_at: at.toISOString() });
  assert.equal(r.status, 202, r.text);
  const c = (await call(leader, 'GET', '/cluster')).json as { scheduled_switchover?: { at: string; from: string; to: string } };
  assert.equal(c.scheduled_switchover?.to, candidate);
  await systemClock.sleep(1500);
  assert.equal(leaderOf((await clusterView(tc.state))!).name, leader, 'not before its time');
  await waitFor(`${candidate} leads after ${at.toISOString()}`, 30_000, async () => {
    const v = await clusterView(tc.state);
    return v && leaderOf(v).name === candidate;
  });
  assert.ok(Date.now() >= at.getTime(), 'the switchover happened at or after the scheduled time');
  await healthyView();
});

test('PATCH /config: a reloadable parameter reaches every member; a restart-only one is pending until POST /restart', async () => {
  const view = await healthyView();
  const leader = leaderOf(view).name;
  const current = (await call(leader, 'GET', '/config')).json as { postgresql?: { parameters?: Record<string, unknown> } };
  const maxConn = Number(current.postgresql?.parameters?.max_connections ?? 100) + 7;
  const r = await call(leader, 'PATCH', '/config', { postgresql: { parameters: { work_mem: '7MB', max_connections: maxConn } } });
  assert.equal(r.status, 200, r.text);
  for (const m of view.members) {
    await waitFor(`work_mem on ${m.name}`, 30_000, async () => (await query<{ w: string }>(tc.state, m.name, "SELECT current_setting('work_mem') AS w"))[0]?.w === '7MB');
    await waitFor(`pending_restart on ${m.name}`, 30_000, async () => ((await call(m.name, 'GET', '/patroni')).json as { pending_restart?: boolean }).pending_restart === true);
  }
  const cl = (await call(leader, 'GET', '/cluster')).json as ClusterJson;
  assert.ok(cl.members.every((m) => (m as { pending_restart?: boolean }).pending_restart === true), '/cluster shows pending_restart');
  const bad = await call(leader, 'PATCH', '/config', { loop_wait: 'often' });
  assert.equal(bad.status, 400, bad.text);
  for (const m of view.members) {
    const res = await call(m.name, 'POST', '/restart', { restart_pending: true });
    assert.equal(res.status, 200, `${m.name}: ${res.text}`);
    assert.equal((await query<{ v: string }>(tc.state, m.name, "SELECT current_setting('max_connections') AS v"))[0]?.v, String(maxConn));
    assert.notEqual(((await call(m.name, 'GET', '/patroni')).json as { pending_restart?: boolean }).pending_restart, true);
  }
  assert.equal(leaderOf(await healthyView()).name, leader, 'restarting the primary kept its leadership');
  const again = await call(leader, 'POST', '/restart', { restart_pending: true });
  assert.equal(again.status, 503, 'nothing pending any more');
});

test('pause: the primary stopped by hand is not failed over; resume brings the cluster back', async () => {
  const view = await healthyView();
  const leader = leaderOf(view).name;
  assert.equal((await call(leader, 'PATCH', '/config', { pause: true })).status, 200);
  for (const m of view.members) {
    await waitFor(`pause on ${m.name}`, 30_000, async () => ((await call(m.name, 'GET', '/patroni')).json as { pause?: boolean }).pause === true);
  }
  const m = member(tc.state, leader);
  await runPg(join(findBinDir(), 'pg_ctl'), ['stop', '-D', m.dataDir, '-m', 'fast', '-w'], { timeoutMs: 60_000 });
  // Longer than the TTL: without maintenance mode a replica would have been promoted by now.
  await systemClock.sleep((TTL + 4) * 1000);
  const during = (await call(leader, 'GET', '/cluster')).json as ClusterJson & { pause?: boolean };
  assert.equal(during.pause, true);
  assert.equal(leaderOf(during).name, leader, 'the leader key stayed');
  for (const x of view.members.filter((y) => y.name !== leader)) {
    assert.equal((await query<{ r: boolean }>(tc.state, x.name, 'SELECT pg_is_in_recovery() AS r'))[0]?.r, true, `${x.name} was not promoted`);
  }
  assert.equal((await call(leader, 'PATCH', '/config', { pause: null })).status, 200);
  const back = await healthyView();
  assert.ok(back.members.every((x) => x.state === 'running'));
});

test('POST /reinitialize rebuilds a replica from the leader and keeps the old data dir aside', async () => {
  const view = await healthyView();
  const leader = leaderOf(view).name;
  const replica = view.members.find((x) => x.name !== leader)!.name;
  assert.equal((await call(leader, 'POST', '/reinitialize')).status, 503, 'the leader refuses');
  const r = await call(replica, 'POST', '/reinitialize', { force: true });
  assert.equal(r.status, 200, r.text);
  const dataDir = member(tc.state, replica).dataDir;
  await waitFor('the old data dir moved aside', 60_000, async () => readdirSync(join(dataDir, '..')).some((f) => f.startsWith('data.reinit.')));
  await waitFor(`${replica} streaming again`, 120_000, () => allStreaming(leader));
  const kept = readdirSync(join(dataDir, '..')).find((f) => f.startsWith('data.reinit.'))!;
  assert.ok(existsSync(join(dataDir, '..', kept, 'PG_VERSION')), 'the old data is kept, not deleted');
});

test('SIGHUP applies changed tags from the config file', async () => {
  const view = await healthyView();
  const replica = view.members.find((x) => x.role !== 'leader')!.name;
  const file = member(tc.state, replica).configFile;
  const cfg = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, stringify({ ...cfg, tags: { ...(cfg.tags as object | undefined), nofailover: true, rack: 'r1' } }));
  assert.ok(await signalMember(tc.state, replica, 'SIGHUP', 0));
  await waitFor('the new tags published', 30_000, async () => {
    const tags = ((await call(replica, 'GET', '/patroni')).json as { tags?: Record<string, unknown> }).tags;
    return tags?.nofailover === true && tags.rack === 'r1';
  });
  assert.ok(postmasterPid(tc.state, replica), 'postgresql kept running');
});
