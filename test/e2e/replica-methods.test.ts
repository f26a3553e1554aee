/**
 * Patroni's create_replica_methods on a real cluster: methods are tried in order; a failing one is
 * skipped; a custom command gets `--scope --role --datadir --connstring` plus its own options and the
 * replication password through a pgpass file, and the replica it builds joins the cluster.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { member } from '../../src/local/cluster.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { pgOsUser } from '../../src/util/users.js';
import { leaderOf, memberLog, query, startTestCluster, waitHealthy, type TestCluster } from '../helpers/e2e.js';

let tc: TestCluster;
const scripts = mkdtempSync('/tmp/pgwarden-replica-methods-');
const argsFile = join(scripts, 'args');

before(async () => {
  const u = pgOsUser();
  assert.ok(u, 'the postgres OS user exists');
  chmodSync(scripts, 0o755);
  chownSync(scripts, u.uid, u.gid);
  // A "backup tool": logs its arguments, then copies the source with pg_basebackup through the pgpass file.
  writeFileSync(
    join(scripts, 'mycopy.sh'),
    `#!/bin/sh
echo "$@" >> ${argsFile}
for a in "$@"; do
  case "$a" in
    --datadir=*) D="\${a#--datadir=}" ;;
    --connstring=*) C="\${a#--connstring=}" ;;
  esac
done
exec ${join(findBinDir(), 'pg_basebackup')} -D "$D" -d "$C" -X stream -c fast --no-password
`,
    { mode: 0o755 },
  );
  tc = await startTestCluster({
    members: 2,
    ttl: 10,
    loopWait: 1,
    retryTimeout: 3,
    extra: {
      postgresql: {
        create_replica_methods: ['broken', 'mycopy', 'basebackup'],
        broken: { command: '/bin/false' },
        mycopy: { command: join(scripts, 'mycopy.sh'), extra_opt: 42 },
      },
    },
  });
});

after(async () => {
  await tc?.destroy();
  rmSync(scripts, { recursive: true, force: true });
});

test('the failing method is skipped, the custom command builds the replica with Patroni arguments', async () => {
  const view = await waitHealthy(tc.state, 180_000);
  const leader = leaderOf(view).name;
  const replica = view.members.find((m) => m.name !== leader)!.name;
  const log = memberLog(tc.state, replica);
  assert.match(log, /"method":"broken".*replica method failed/);
  assert.match(log, /replica has been created using mycopy/);
  assert.doesNotMatch(log, /running pg_basebackup/, 'the built-in basebackup was not needed');
  const args = readFileSync(argsFile, 'utf8').trim().split(' ');
  const m = member(tc.state, replica);
  const lm = member(tc.state, leader);
  assert.ok(args.includes('--extra_opt=42'), args.join(' '));
  assert.ok(args.includes('--scope=demo'));
  assert.ok(args.includes('--role=replica'));
  assert.ok(args.includes(`--datadir=${m.dataDir}`));
  assert.ok(args.includes(`--connstring=dbname=postgres`), 'connstring starts with dbname, as Patroni formats it');
  assert.match(readFileSync(argsFile, 'utf8'), new RegExp(`--connstring=dbname=postgres user=\\S+ host=127\\.0\\.0\\.1 port=${lm.pgPort}`));
  assert.doesNotMatch(readFileSync(argsFile, 'utf8'), /password/, 'the password travels in a pgpass file, not on the command line');
  await query(tc.state, leader, "CREATE TABLE rm_probe(v text); INSERT INTO rm_probe VALUES ('x')");
  const rows = await query(tc.state, replica, 'SELECT 1 FROM pg_stat_wal_receiver').catch(() => []);
  assert.equal(rows.length, 1, 'the replica streams from the leader');
});
