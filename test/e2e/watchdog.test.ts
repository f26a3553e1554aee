/**
 * The watchdog on a real 2-member cluster, with Patroni's testing driver (the device is a file the test
 * reads): the primary arms it with ttl - safety_margin before it becomes primary and feeds it every loop;
 * a member whose required watchdog does not exist never bootstraps, never races and is never promoted,
 * even when the primary is gone; a clean shutdown closes the device with the magic 'V'.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signalMember } from '../../src/local/cluster.js';
import { pgOsUser } from '../../src/util/users.js';
import { clusterView, isInRecovery, killMember, memberLog, restartMember, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';

let tc: TestCluster;
let device: string;

before(async () => {
  const dir = (await import('node:fs')).mkdtempSync('/tmp/pgwarden-e2e-wd-');
  device = join(dir, 'watchdog-1');
  tc = await startTestCluster({
    dir,
    members: 2,
    ttl: 10,
    loopWait: 1,
    retryTimeout: 3,
    extra: {
      sections: {
        'member-1': { watchdog: { mode: 'required', driver: 'testing', device, safety_margin: 5 } },
        'member-2': { watchdog: { mode: 'required', driver: 'testing', device: join(dir, 'no-such-watchdog') } },
      },
    },
  });
  // The device exists before member-1 starts looking for it (the daemons are already starting: create it at once).
  writeFileSync(device, '');
  const user = pgOsUser();
  if (user) chownSync(device, user.uid, user.gid);
});

after(async () => {
  await tc?.destroy();
});

const dev = (): string => readFileSync(device, 'utf8');

test('the member with a watchdog bootstraps and feeds it; the one whose required watchdog is missing never leads', async () => {
  const view = await waitHealthy(tc.state, 180_000);
  assert.equal(view.members.find((m) => m.role === 'leader')?.name, 'member-1');
  assert.ok(dev().startsWith('Ctimeout=5\n'), `armed with ttl - safety_margin before anything else: ${JSON.stringify(dev().slice(0, 20))}`);
  const fed = dev().length;
  await waitFor('keepalives every loop', 30_000, async () => dev().length >= fed + 5 || null);
  assert.doesNotMatch(dev().slice('Ctimeout=5\n'.length), /[^1]/, 'only keepalives while it is primary');

  await killMember(tc.state, 'member-1');
  await waitFor('member-2 refusing to race', 60_000, async () => memberLog(tc.state, 'member-2').includes('not racing for the leader lock: the watchdog is required but not usable') || null);
  const v = await clusterView(tc.state);
  assert.ok(!v?.members.some((m) => m.role === 'leader'), 'nobody took the lock');
  assert.equal(await isInRecovery(tc.state, 'member-2'), true, 'member-2 was not promoted');

  restartMember(tc.state, 'member-1');
  await waitFor('member-1 primary again', 120_000, async () => {
    const c = await clusterView(tc.state);
    return (c?.members.some((m) => m.name === 'member-1' && m.role === 'leader' && m.state === 'running') && (await isInRecovery(tc.state, 'member-1')) === false) || null;
  });
  assert.equal((dev().match(/Ctimeout=5\n/g) ?? []).length, 2, 're-armed after the restart, before promoting');
});

test('a clean shutdown of the primary closes the watchdog with the magic V', async () => {
  await waitHealthy(tc.state, 120_000);
  assert.ok(await signalMember(tc.state, 'member-1', 'SIGTERM', 90_000));
  assert.ok(dev().endsWith('V'), `closed: ${JSON.stringify(dev().slice(-10))}`);
});
