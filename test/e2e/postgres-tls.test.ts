/**
 * PostgreSQL's own TLS settings pass through unchanged (issue 5): `ssl`, `ssl_cert_file`, `ssl_key_file`,
 * `ssl_ca_file` in the dynamic parameters reach postgresql.conf on every member; clients can require TLS;
 * replicas stream over TLS (primary_conninfo keeps Patroni's default sslmode=prefer).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { member } from '../../src/local/cluster.js';
import { pgOsUser } from '../../src/util/users.js';
import { leaderOf, query, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';

let tc: TestCluster;
let certs: TestCerts;

before(async () => {
  certs = makeTestCerts();
  const dir = mkdtempSync('/tmp/pgwarden-e2e-pgtls-');
  chmodSync(dir, 0o755);
  // PostgreSQL wants its key private to its own user.
  const key = join(dir, 'server.key');
  copyFileSync(certs.serverKey, key);
  const user = pgOsUser();
  if (user) chownSync(key, user.uid, user.gid);
  chmodSync(key, 0o600);
  tc = await startTestCluster({
    dir,
    members: 2,
    extra: {
      dcs: {
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: { wal_log_hints: 'on', max_connections: 100, ssl: 'on', ssl_cert_file: certs.serverCert, ssl_key_file: key, ssl_ca_file: certs.ca },
        },
      },
    },
  });
});

after(async () => {
  await tc?.destroy();
  certs?.remove();
});

test('ssl parameters reach PostgreSQL; a client requiring TLS gets it; replication runs over TLS', async () => {
  const view = await waitHealthy(tc.state, 180_000);
  const leader = leaderOf(view).name;
  for (const m of tc.state.members) {
    const rows = await query<{ name: string; setting: string }>(tc.state, m.name, "SELECT name, setting FROM pg_settings WHERE name IN ('ssl', 'ssl_cert_file', 'ssl_ca_file') ORDER BY name");
    assert.deepEqual(rows.map((r) => `${r.name}=${r.setting}`), [`ssl=on`, `ssl_ca_file=${certs.ca}`, `ssl_cert_file=${certs.serverCert}`], m.name);
  }
  const c = new pg.Client({
    host: '127.0.0.1',
    port: member(tc.state, leader).pgPort,
    user: tc.state.superuser.username,
    password: tc.state.superuser.password,
    database: 'postgres',
    ssl: { ca: (await import('node:fs')).readFileSync(certs.ca, 'utf8'), rejectUnauthorized: true },
  });
  await c.connect();
  try {
    const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    assert.equal(r.rows[0]?.ssl, true, 'our own connection is encrypted and the server certificate verified');
  } finally {
    await c.end();
  }
  const walsenders = await waitFor('the replica streaming', 60_000, async () => {
    const rows = await query<{ ssl: boolean }>(tc.state, leader, "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.state = 'streaming'");
    return rows.length === 1 ? rows : null;
  });
  assert.equal(walsenders[0]?.ssl, true, 'the replication connection runs over TLS');
});
