/**
 * Standby cluster on real processes: a source cluster (2 members, its own etcd) and a standby cluster
 * (2 members, a second etcd, scope `dc2`) whose `bootstrap.dcs.standby_cluster` points at the source
 * primary. The standby leader copies the source and streams from it, its replica streams from the
 * standby leader; kill -9 of the standby leader makes the other member the standby leader (never a
 * primary); removing `standby_cluster` through PATCH /config promotes it while the source goes on.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { member, type LocalState } from '../../src/local/cluster.js';
import { fetchCluster } from '../../src/local/run.js';
import { pgOsUser } from '../../src/util/users.js';
import { isInRecovery, killMember, leaderOf, query, restartMember, startTestCluster, waitFor, waitHealthy, Writer, type TestCluster } from '../helpers/e2e.js';

const BIN = fileURLToPath(new URL('../../bin/pgwarden', import.meta.url));
let source: TestCluster;
let standby: TestCluster;
let writer: Writer | null = null;
let sourcePrimary = '';
let standbyLeader = '';
const scripts = mkdtempSync('/tmp/pgwarden-standby-cb-');
const calls = join(scripts, 'calls');

before(async () => {
  const pgUser = pgOsUser();
  chmodSync(scripts, 0o755);
  if (pgUser) chownSync(scripts, pgUser.uid, pgUser.gid);
  writeFileSync(join(scripts, 'cb.sh'), `#!/bin/sh\necho "$(basename "$PWD") $1 $2 $3" >> ${calls}\n`, { mode: 0o755 });
  source = await startTestCluster({ members: 2, scope: 'dc1', ttl: 10, loopWait: 1, retryTimeout: 3 });
  sourcePrimary = leaderOf(await waitHealthy(source.state, 180_000)).name;
  await query(source.state, sourcePrimary, 'CREATE TABLE acked(id int PRIMARY KEY)');
  const cb = join(scripts, 'cb.sh');
  standby = await startTestCluster({
    members: 2,
    scope: 'dc2',
    ttl: 10,
    loopWait: 1,
    retryTimeout: 3,
    credentials: source.state,
    extra: {
      dcs: { standby_cluster: { host: '127.0.0.1', port: member(source.state, sourcePrimary).pgPort }, synchronous_mode: true },
      postgresql: { callbacks: { on_start: cb, on_role_change: cb } },
    },
  });
});

after(async () => {
  await writer?.stop();
  await standby?.destroy();
  await source?.destroy();
  rmSync(scripts, { recursive: true, force: true });
});

const callLines = (): string[] => {
  try {
    return readFileSync(calls, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
};

async function status(state: LocalState, name: string, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${member(state, name).apiPort}${path}`, { signal: AbortSignal.timeout(5000) });
  await res.text();
  return res.status;
}

/** The standby cluster with a running standby leader and every other member running as a replica. */
async function standbyHealthy(expect: number, timeoutMs: number): Promise<string> {
  return waitFor('a running standby leader and streaming replicas', timeoutMs, async () => {
    const c = await fetchCluster(standby.state);
    if (!c) return null;
    const leaders = c.members.filter((m) => m.role === 'standby_leader' && m.state === 'running');
    const replicas = c.members.filter((m) => m.role === 'replica' && m.state === 'running' && typeof m.lag === 'number');
    return leaders.length === 1 && replicas.length === expect - 1 ? leaders[0]!.name : null;
  });
}

const maxId = async (state: LocalState, name: string): Promise<number> =>
  Number((await query<{ m: number | null }>(state, name, 'SELECT coalesce(max(id), 0) AS m FROM acked'))[0]?.m ?? 0);

/** Every row the writer had acknowledged by now shows up on `name`. */
async function caughtUp(state: LocalState, name: string, timeoutMs = 60_000): Promise<void> {
  const target = writer!.acked.at(-1) ?? 0;
  await waitFor(`${name} replaying row ${target}`, timeoutMs, async () => (await maxId(state, name)) >= target);
}

/** `name` runs as the standby cluster's standby leader (by the store's view). */
async function becomesStandbyLeader(name: string): Promise<void> {
  await waitFor(`${name} as the standby leader`, 90_000, async () => {
    const c = await fetchCluster(standby.state);
    return c?.members.some((m) => m.name === name && m.role === 'standby_leader' && m.state === 'running') ?? false;
  });
}

/** `name` streams WAL straight from the source cluster's primary. */
async function streamingFromSource(name: string): Promise<void> {
  await waitFor(`${name} streaming from the source`, 60_000, async () => {
    const r = await query<{ p: number }>(standby.state, name, "SELECT sender_port AS p FROM pg_stat_wal_receiver WHERE status = 'streaming'");
    return r[0]?.p === member(source.state, sourcePrimary).pgPort;
  });
}

test('bootstrap: the standby leader copies the source, stays in recovery, and both members get the rows', async () => {
  standbyLeader = await standbyHealthy(2, 240_000);
  const other = standby.state.members.find((m) => m.name !== standbyLeader)!.name;
  const sysid = async (state: LocalState, name: string) => (await query<{ s: string }>(state, name, 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]!.s;
  assert.equal(await sysid(standby.state, standbyLeader), await sysid(source.state, sourcePrimary), 'a copy of the source');
  assert.equal(await isInRecovery(standby.state, standbyLeader), true, 'the standby leader is never a primary');
  const upstream = await query<{ p: number }>(standby.state, standbyLeader, "SELECT sender_port AS p FROM pg_stat_wal_receiver WHERE status = 'streaming'");
  assert.deepEqual(upstream.map((r) => r.p), [member(source.state, sourcePrimary).pgPort], 'the standby leader streams from the source primary');
  const fromLeader = await query<{ a: string }>(standby.state, standbyLeader, "SELECT application_name AS a FROM pg_stat_replication WHERE state = 'streaming'");
  assert.deepEqual(fromLeader.map((r) => r.a), [other], 'the other member streams from the standby leader');
  writer = new Writer(source.state, 600_000);
  writer.start();
  await waitFor('the writer committing on the source', 30_000, async () => writer!.acked.length >= 20);
  await caughtUp(standby.state, standbyLeader);
  await caughtUp(standby.state, other);
  // synchronous_mode in a standby cluster is ignored: nobody is recorded as synchronous.
  const syncKey = (await fetchCluster(standby.state))!.members.filter((m) => m.role === 'sync_standby');
  assert.deepEqual(syncKey, []);
});

test('REST health codes: /standby-leader on the standby leader only; /primary nowhere in the standby cluster', async () => {
  const other = standby.state.members.find((m) => m.name !== standbyLeader)!.name;
  const codes = async (state: LocalState, name: string) =>
    Object.fromEntries(await Promise.all(['/standby-leader', '/standby_leader', '/leader', '/primary', '/replica'].map(async (p) => [p, await status(state, name, p)] as const)));
  assert.deepEqual(await codes(standby.state, standbyLeader), { '/standby-leader': 200, '/standby_leader': 200, '/leader': 200, '/primary': 503, '/replica': 503 });
  assert.deepEqual(await codes(standby.state, other), { '/standby-leader': 503, '/standby_leader': 503, '/leader': 503, '/primary': 503, '/replica': 200 });
  assert.deepEqual(await codes(source.state, sourcePrimary), { '/standby-leader': 503, '/standby_leader': 503, '/leader': 200, '/primary': 200, '/replica': 503 });
  const patroni = (await (await fetch(`http://127.0.0.1:${member(standby.state, standbyLeader).apiPort}/patroni`)).json()) as { role: string };
  assert.equal(patroni.role, 'standby_leader');
  const list = await promisify(execFile)(process.execPath, [BIN, 'ctl', '-c', member(standby.state, standbyLeader).configFile, 'list'], { timeout: 60_000 });
  assert.match(list.stdout, new RegExp(`\\| ${standbyLeader} .*\\| Standby Leader \\|`), list.stdout);
  assert.ok(callLines().includes(`${standbyLeader} on_start standby_leader dc2`), callLines().join('\n'));
});

test('kill -9 of the standby leader: the other member becomes the standby leader (no promotion) and keeps receiving rows', async () => {
  const old = standbyLeader;
  const next = standby.state.members.find((m) => m.name !== old)!.name;
  await killMember(standby.state, old);
  await becomesStandbyLeader(next);
  standbyLeader = next;
  assert.equal(await isInRecovery(standby.state, next), true, 'still in recovery: a standby leader is never promoted');
  await streamingFromSource(next);
  await caughtUp(standby.state, next);
  await waitFor('on_role_change standby_leader', 30_000, async () => callLines().includes(`${next} on_role_change standby_leader dc2`));
  restartMember(standby.state, old);
  assert.equal(await standbyHealthy(2, 120_000), next, 'the old standby leader rejoins as a replica');
  await caughtUp(standby.state, old);
  assert.equal(await isInRecovery(source.state, sourcePrimary), false, 'the source is untouched');
});

test('POST /switchover in the standby cluster moves the standby leader to the candidate (no promotion), as Patroni', async () => {
  const old = standbyLeader;
  const next = standby.state.members.find((m) => m.name !== old)!.name;
  const res = await fetch(`http://127.0.0.1:${member(standby.state, old).apiPort}/switchover`, {
    method: 'POST',
    body: JSON.stringify({ leader: old, candidate: next }),
    signal: AbortSignal.timeout(90_000),
  });
  assert.equal(res.status, 200, await res.text());
  await becomesStandbyLeader(next);
  standbyLeader = next;
  assert.equal(await isInRecovery(standby.state, next), true, 'the new standby leader is not promoted');
  await streamingFromSource(next);
  assert.equal(await standbyHealthy(2, 120_000), next, 'the old standby leader follows the new one');
  await caughtUp(standby.state, old);
  await caughtUp(standby.state, next);
});

test('PATCH /config {"standby_cluster": null} promotes the standby leader: writable, a new timeline, the source unaffected', async () => {
  const other = standby.state.members.find((m) => m.name !== standbyLeader)!.name;
  await writer!.stop();
  const last = writer!.acked.at(-1) ?? 0;
  await caughtUp(standby.state, standbyLeader);
  const res = await fetch(`http://127.0.0.1:${member(standby.state, standbyLeader).apiPort}/config`, {
    method: 'PATCH',
    body: JSON.stringify({ standby_cluster: null }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, await res.text());
  await waitFor(`${standbyLeader} promoted`, 60_000, async () => (await isInRecovery(standby.state, standbyLeader)) === false);
  const view = await waitHealthy(standby.state, 60_000);
  assert.equal(leaderOf(view).name, standbyLeader, 'the same member leads, now as an ordinary leader');
  const tl = async (state: LocalState, name: string) => Number((await query<{ t: number }>(state, name, 'SELECT timeline_id AS t FROM pg_control_checkpoint()'))[0]?.t);
  const sourceTl = await tl(source.state, sourcePrimary);
  await waitFor('the new timeline in the checkpoint', 30_000, async () => (await tl(standby.state, standbyLeader)) > sourceTl);
  await query(standby.state, standbyLeader, 'INSERT INTO acked(id) VALUES ($1)', [last + 1_000_000]);
  await waitFor(`${other} following the promoted leader`, 60_000, async () => (await maxId(standby.state, other)) === last + 1_000_000);
  const history = await waitFor('a history entry', 30_000, async () => {
    const r = await fetch(`http://127.0.0.1:${member(standby.state, standbyLeader).apiPort}/history`);
    const h = (await r.json()) as unknown[][];
    return h.length > 0 ? h : null;
  });
  assert.equal(history.at(-1)![0], sourceTl, 'the switch from the source timeline is recorded');
  assert.equal(await isInRecovery(source.state, sourcePrimary), false, 'the source keeps its primary');
  assert.equal(await tl(source.state, sourcePrimary), sourceTl);
  await query(source.state, sourcePrimary, 'INSERT INTO acked(id) VALUES ($1)', [last + 2_000_000]);
  assert.equal((await query(standby.state, standbyLeader, 'SELECT 1 FROM acked WHERE id = $1', [last + 2_000_000])).length, 0, 'the clusters are separate now');
  assert.ok(callLines().includes(`${standbyLeader} on_role_change master dc2`), callLines().join('\n'));
});

test('PATCH /config adding standby_cluster to the running cluster: its primary is demoted, rewound to the source and streams from it', async () => {
  const leader = standbyLeader;
  const marker = (writer!.acked.at(-1) ?? 0) + 3_000_000;
  const res = await fetch(`http://127.0.0.1:${member(standby.state, leader).apiPort}/config`, {
    method: 'PATCH',
    body: JSON.stringify({ standby_cluster: { host: '127.0.0.1', port: member(source.state, sourcePrimary).pgPort } }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, await res.text());
  await waitFor(`${leader} back in recovery as the standby leader`, 90_000, async () =>
    (await isInRecovery(standby.state, leader)) === true && (await status(standby.state, leader, '/standby-leader')) === 200);
  await query(source.state, sourcePrimary, 'INSERT INTO acked(id) VALUES ($1)', [marker]);
  await waitFor(`the source's row on ${leader}`, 60_000, async () => (await query(standby.state, leader, 'SELECT 1 FROM acked WHERE id = $1', [marker])).length === 1);
  assert.match(await memberLogText(leader), /running pg_rewind/, 'it had diverged (a row of its own on a new timeline): rewound from the source');
  assert.equal(await isInRecovery(source.state, sourcePrimary), false);
});

async function memberLogText(name: string): Promise<string> {
  return readFileSync(member(standby.state, name).logFile, 'utf8');
}
