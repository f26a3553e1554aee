/**
 * bootstrap.method on real PostgreSQL: a "backup tool" script restores a base backup of another
 * server into --datadir, archive recovery runs with the configured recovery_conf until PostgreSQL
 * promotes itself, and the result is a primary with the backup's data, our roles and passwords.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { LocalPostgres } from '../../src/postgres/instance.js';
import { ensureDir, runPg } from '../../src/postgres/runas.js';
import { systemClock as clock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../../src/util/net.js';
import { testDaemonConfig } from '../helpers/config.js';

let root: string;
const instances: LocalPostgres[] = [];
const dynamic = effectiveDynamicConfig(null, { postgresql: { parameters: { max_connections: 20, shared_buffers: '16MB' } } }).dynamic;
const auth = { superuser: { username: 'postgres', password: 'new-su-pass' }, replication: { username: 'rep', password: 'r' } };

before(() => {
  root = mkdtempSync('/tmp/pgwarden-custom-bootstrap-');
  chmodSync(root, 0o755);
});

after(async () => {
  for (const p of instances) await p.stop('immediate', 30_000).catch(() => undefined);
  for (const p of instances) await p.close();
  rmSync(root, { recursive: true, force: true });
});

async function instance(name: string, bootstrap: Record<string, unknown>, superuserPassword = auth.superuser.password): Promise<LocalPostgres> {
  const home = join(root, name);
  ensureDir(home, 0o755);
  const authentication = { ...auth, superuser: { username: 'postgres', password: superuserPassword } };
  const config = testDaemonConfig({ name, port: await freePort(), dataDir: join(home, 'data'), bootstrap, postgresql: { authentication } });
  const p = new LocalPostgres({ config, dynamic, log: silentLogger(), clock });
  instances.push(p);
  return p;
}

test('restore a base backup through bootstrap.method, recover to consistency, promote', async () => {
  // The origin: a primary with data, and a self-contained base backup of it.
  const origin = await instance('origin', { initdb: [] }, 'the-old-password');
  await origin.bootstrap();
  await origin.query("CREATE TABLE from_backup(v text); INSERT INTO from_backup VALUES ('restored')");
  const backup = join(root, 'backup');
  ensureDir(backup, 0o700);
  const port = (await origin.query("SELECT current_setting('port') AS p"))[0]!.p as string;
  const bb = await runPg(join(findBinDir(), 'pg_basebackup'), ['-D', backup, '-h', '127.0.0.1', '-p', port, '-U', 'rep', '-X', 'stream', '-c', 'fast'], {
    timeoutMs: 120_000,
    env: { PGPASSWORD: auth.replication.password },
  });
  assert.equal(bb.code, 0, bb.stderr);
  const originSysid = (await origin.observe()).sysid;

  // The "backup tool": copies the backup into --datadir, and records its arguments.
  const script = join(root, 'restore.sh');
  writeFileSync(script, `#!/bin/sh\necho "$@" > ${join(root, 'args')}\nfor a in "$@"; do case "$a" in --datadir=*) D="\${a#--datadir=}";; esac; done\ncp -a ${backup}/. "$D"/\n`, { mode: 0o755 });
  chmodSync(root, 0o777);
  const restored = await instance('restored', {
    method: 'restore_from_backup',
    method_config: { command: script, recovery_conf: { restore_command: 'false', recovery_target: 'immediate', recovery_target_action: 'promote' } },
  });
  const sysid = await restored.bootstrap();
  assert.equal(sysid, originSysid, 'the same cluster, restored');
  assert.match(readFileSync(join(root, 'args'), 'utf8'), /^--scope=demo --datadir=\S+\/restored\/data$/m);
  const o = await restored.observe();
  assert.equal(o.inRecovery, false, 'archive recovery ended with a promotion');
  assert.ok(o.timeline! >= 2, 'a new timeline after recovery');
  assert.deepEqual(await restored.query('SELECT v FROM from_backup'), [{ v: 'restored' }]);
  assert.equal(existsSync(join(restored.dataDir, 'recovery.signal')), false);
  assert.doesNotMatch(readFileSync(join(restored.dataDir, 'postgresql.conf'), 'utf8'), /restore_command|recovery_target/, 'recovery settings removed afterwards');
  // The configured superuser password works over TCP (scram), whatever the backup had.
  const restoredPort = Number((await restored.query("SELECT current_setting('port') AS p"))[0]!.p);
  const c = new pg.Client({ host: '127.0.0.1', port: restoredPort, user: 'postgres', password: auth.superuser.password, database: 'postgres' });
  c.on('error', () => undefined);
  await c.connect();
  await c.end();
});

test('a failing bootstrap command fails the bootstrap with its output', async () => {
  const script = join(root, 'broken.sh');
  writeFileSync(script, '#!/bin/sh\necho "no backup found" >&2\nexit 4\n', { mode: 0o755 });
  const p = await instance('broken', { method: 'x', method_config: { command: script } });
  await assert.rejects(p.bootstrap(), /custom bootstrap .*broken\.sh failed \(exit 4\): no backup found/);
});
