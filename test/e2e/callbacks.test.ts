/**
 * Patroni's callbacks and pre_promote on a real 2-member cluster: the scripts run with
 * `<action> <role> <scope>` at bootstrap, start, promotion, restart and reload; a pre_promote script
 * that exits non-zero cancels a failover (the lock is given back, nobody is promoted) until it allows it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { member } from '../../src/local/cluster.js';
import { pgOsUser } from '../../src/util/users.js';
import { clusterView, isInRecovery, killMember, leaderOf, memberLog, query, restartMember, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';

let tc: TestCluster;
const scripts = mkdtempSync('/tmp/pgwarden-callbacks-');
const out = join(scripts, 'calls');
const allow = join(scripts, 'pre_promote_rc');

before(async () => {
  const pgUser = pgOsUser();
  assert.ok(pgUser, 'the postgres OS user exists');
  chmodSync(scripts, 0o755);
  chownSync(scripts, pgUser.uid, pgUser.gid);
  writeFileSync(join(scripts, 'cb.sh'), `#!/bin/sh\necho "$@" >> ${out}\n`, { mode: 0o755 });
  writeFileSync(join(scripts, 'fence.sh'), `#!/bin/sh\nexit "$(cat ${allow})"\n`, { mode: 0o755 });
  writeFileSync(allow, '0\n', { mode: 0o644 });
  const cb = join(scripts, 'cb.sh');
  tc = await startTestCluster({
    members: 2,
    ttl: 10,
    loopWait: 1,
    retryTimeout: 3,
    extra: { postgresql: { callbacks: { on_start: cb, on_stop: cb, on_restart: cb, on_reload: cb, on_role_change: cb }, pre_promote: join(scripts, 'fence.sh') } },
  });
});

after(async () => {
  await tc?.destroy();
  rmSync(scripts, { recursive: true, force: true });
});

const calls = () => {
  try {
    return readFileSync(out, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
};

async function api(name: string, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${member(tc.state, name).apiPort}${path}`, { method, ...(body ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(60_000) });
  await res.text();
  return res.status;
}

test('bootstrap and start run on_start with the member role and the scope', async () => {
  await waitHealthy(tc.state, 180_000);
  await waitFor('on_start of both members', 30_000, async () => calls().includes('on_start master demo') && calls().includes('on_start replica demo'));
});

test('pre_promote exiting 1 cancels the failover and gives the lock back; exiting 0 lets it happen', async () => {
  const view = await waitHealthy(tc.state, 60_000);
  const old = leaderOf(view).name;
  const next = view.members.find((m) => m.name !== old)!.name;
  writeFileSync(allow, '1\n');
  await killMember(tc.state, old);
  try {
    await prePromoteRound(old, next);
  } finally {
    restartMember(tc.state, old);
  }
  await waitHealthy(tc.state, 120_000);
});

async function prePromoteRound(old: string, next: string): Promise<void> {
  await waitFor(`${next} refused by pre_promote`, 60_000, async () => memberLog(tc.state, next).includes('pre_promote refused the promotion'));
  const during = await clusterView(tc.state);
  assert.ok(!during?.members.some((m) => m.role === 'leader'), 'the lock was given back');
  assert.equal((await query<{ r: boolean }>(tc.state, next, 'SELECT pg_is_in_recovery() AS r'))[0]?.r, true, 'not promoted');
  writeFileSync(allow, '0\n');
  await waitFor(`${next} promoted once pre_promote allows it`, 60_000, async () => {
    const v = await clusterView(tc.state);
    // The lock holder is listed as leader from the moment it holds the lock (as in Patroni);
    // the promotion itself finishes a moment later.
    return v?.members.some((m) => m.name === next && m.role === 'leader' && m.state === 'running') && (await isInRecovery(tc.state, next)) === false;
  });
  await waitFor('on_role_change master', 30_000, async () => calls().includes('on_role_change master demo'));
}

test('POST /restart runs on_restart, POST /reload on_reload', async () => {
  const leader = leaderOf(await waitHealthy(tc.state, 60_000)).name;
  assert.equal(await api(leader, 'POST', '/restart', {}), 200);
  await waitFor('on_restart master', 30_000, async () => calls().includes('on_restart master demo'));
  assert.equal(await api(leader, 'POST', '/reload'), 202);
  await waitFor('on_reload master', 30_000, async () => calls().includes('on_reload master demo'));
});
