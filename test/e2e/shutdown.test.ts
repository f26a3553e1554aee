/**
 * A daemon stopped (SIGTERM) while a long action runs in the background: here the bootstrap, whose initdb,
 * first start and roles take a few seconds. It must let the action finish, stop the PostgreSQL it made
 * and exit, rather than exit the HA loop, close the store and then have the action start PostgreSQL
 * behind it (a daemon that never exits, a server nobody stops, an `initialize` key never written).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { member, postmasterPid, signalMember, startMember } from '../../src/local/cluster.js';
import { memberLog, query, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';

let tc: TestCluster;

before(async () => {
  tc = await startTestCluster({ members: 1 });
});

after(async () => {
  await tc?.destroy();
});

test('SIGTERM during the bootstrap: the daemon finishes it, stops PostgreSQL and exits; started again, it leads', async () => {
  const name = tc.state.members[0]!.name;
  await waitFor('initdb to start', 60_000, async () => memberLog(tc.state, name).includes('running initdb'));
  // 90 s, as `pgwarden local down` waits: a daemon that has not exited by then hangs.
  assert.equal(await signalMember(tc.state, name, 'SIGTERM', 90_000), true, `the daemon did not exit after SIGTERM:\n${memberLog(tc.state, name).slice(-3000)}`);
  const log = memberLog(tc.state, name);
  assert.match(log, /waiting for the action in progress to finish/, 'SIGTERM landed after the bootstrap: nothing was in progress to wait for');
  assert.doesNotMatch(log, /action failed/);
  assert.equal(postmasterPid(tc.state, name), null, 'PostgreSQL is still running after its daemon exited');

  startMember(tc.state, name);
  const view = await waitHealthy(tc.state, 120_000);
  assert.equal(view.members[0]!.role, 'leader');
  const rows = await query(tc.state, name, 'SELECT 1 AS one');
  assert.equal(rows[0]?.one, 1);
});

test('SIGTERM during a replica copy: the copy is cancelled, its partial data removed, and the daemon exits', async () => {
  // pg_basebackup at its lowest rate (32 kB/s) copies for minutes: it is still running when the signal comes.
  const c = await startTestCluster({ members: 2, extra: { postgresql: { basebackup: [{ 'max-rate': '32k' }] } } });
  try {
    const copier = await waitFor('a member to run pg_basebackup', 120_000, async () => c.state.members.find((m) => memberLog(c.state, m.name).includes('running pg_basebackup'))?.name);
    const { dataDir } = member(c.state, copier);
    await waitFor('the copy to start writing', 60_000, async () => existsSync(`${dataDir}/PG_VERSION`));
    assert.equal(await signalMember(c.state, copier, 'SIGTERM', 90_000), true, `the daemon did not exit after SIGTERM:\n${memberLog(c.state, copier).slice(-3000)}`);
    const log = memberLog(c.state, copier);
    assert.match(log, /cancelling the replica copy in progress/);
    assert.match(log, /basebackup cancelled: the daemon is shutting down/);
    assert.deepEqual(existsSync(dataDir) ? readdirSync(dataDir) : [], [], 'the partial copy is removed');
  } finally {
    await c.destroy();
  }
});
