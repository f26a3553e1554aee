/**
 * bootstrap.post_bootstrap on a real PostgreSQL: the script gets a connection string to the new
 * primary (the superuser's password through a pgpass file, synchronous_commit=local) and its work is
 * there; a script that fails fails the bootstrap.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { LocalPostgres } from '../../src/postgres/instance.js';
import { ensureDir } from '../../src/postgres/runas.js';
import { systemClock as clock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../../src/util/net.js';
import { testDaemonConfig } from '../helpers/config.js';

let root: string;
const instances: LocalPostgres[] = [];
const dynamic = effectiveDynamicConfig(null, { postgresql: { parameters: { max_connections: 20, shared_buffers: '16MB' } } }).dynamic;

before(() => {
  root = mkdtempSync('/tmp/pgwarden-post-bootstrap-');
  chmodSync(root, 0o755);
  const psql = join(findBinDir(), 'psql');
  // Writes what it got, then uses the connection string: a table made by the script, and the settings it ran with.
  writeFileSync(
    join(root, 'post.sh'),
    `#!/bin/sh\nexec ${psql} "$1" -v ON_ERROR_STOP=1 -c "CREATE TABLE made_by_post_bootstrap AS SELECT current_setting('synchronous_commit') AS sc, current_user AS who"\n`,
    { mode: 0o755 },
  );
  writeFileSync(join(root, 'fail.sh'), '#!/bin/sh\necho "cannot do that" >&2\nexit 3\n', { mode: 0o755 });
});

after(async () => {
  for (const p of instances) await p.stop('immediate', 30_000).catch(() => undefined);
  for (const p of instances) await p.close();
  rmSync(root, { recursive: true, force: true });
});

async function instance(name: string, script: string): Promise<LocalPostgres> {
  const home = join(root, name);
  ensureDir(home, 0o755);
  const config = testDaemonConfig({
    name,
    port: await freePort(),
    dataDir: join(home, 'data'),
    bootstrap: { post_bootstrap: join(root, script) },
    postgresql: {
      authentication: { superuser: { username: 'postgres', password: 'se:cr\\et' }, replication: { username: 'rep', password: 'r' } },
      // No trust: the script's connection needs the password from the pgpass file.
      pg_hba: ['local all all scram-sha-256', 'host all all 127.0.0.1/32 scram-sha-256'],
    },
  });
  const p = new LocalPostgres({ config, dynamic, log: silentLogger(), clock });
  instances.push(p);
  return p;
}

test('post_bootstrap runs against the new primary, with the password from pgpass and synchronous_commit=local', async () => {
  const p = await instance('ok', 'post.sh');
  await p.bootstrap();
  const rows = await p.query('SELECT sc, who FROM made_by_post_bootstrap');
  assert.deepEqual(rows, [{ sc: 'local', who: 'postgres' }]);
});

test('a failing post_bootstrap fails the bootstrap with its output', async () => {
  const p = await instance('fail', 'fail.sh');
  await assert.rejects(p.bootstrap(), /post_bootstrap script .*fail\.sh failed \(exit 3\): cannot do that/);
});
