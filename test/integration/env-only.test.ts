/**
 * Members configured only through the environment, on a real etcd and real PostgreSQL 15:
 *   - member-a: `pgwarden daemon a.yml` where a.yml is `{}` and every key comes from PATRONI_*
 *     variables (restapi basic auth and TLS with verify_client optional, etcd3 hosts, PostgreSQL users,
 *     a bootstrap user with options, log level, ctl client certificate);
 *   - member-b: no file at all, its whole config in PATRONI_CONFIGURATION.
 * Then SIGTERM of the primary's daemon (Patroni's shutdown): PostgreSQL shut down cleanly
 * (pg_controldata "shut down"), the leader key gone by the time the daemon has exited, the shutdown
 * checkpoint published as the optime, exit status 0, and the replica primary well before the ttl.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import pg from 'pg';
import { createHttp, type HttpSettings } from '../../src/ctl/http.js';
import { startEtcd, type EtcdProcess } from '../../src/local/etcd.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { parseControlData } from '../../src/postgres/controldata.js';
import { runningPostmaster } from '../../src/postgres/postmaster.js';
import { runPg } from '../../src/postgres/runas.js';
import { systemClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/net.js';
import { pgOsUser } from '../../src/util/users.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { waitFor } from '../helpers/e2e.js';

const BIN = fileURLToPath(new URL('../../bin/pgwarden', import.meta.url));
const SCOPE = 'envonly';
const NAMESPACE = '/pgwarden-env-test/';
const TTL_S = 30; // Patroni's default: bootstrap.dcs cannot come from the environment
const API = { username: 'admin', password: 'api:pw' };
const SUPERUSER = { username: 'postgres', password: 'su-secret' };

interface Member {
  name: string;
  dir: string;
  dataDir: string;
  pgPort: number;
  apiPort: number;
  logFile: string;
  child: ChildProcess | null;
  exit: Promise<number | null> | null;
}

let root: string;
let certs: TestCerts;
let etcd: EtcdProcess;
let etcdClient: Etcd3;
const members: Member[] = [];

before(async () => {
  root = mkdtempSync('/tmp/pgwarden-env-only-');
  chmodSync(root, 0o755);
  certs = makeTestCerts();
  etcd = await startEtcd({ dir: join(root, 'etcd') });
  etcdClient = new Etcd3({ hosts: etcd.endpoint });
  for (const name of ['member-a', 'member-b']) {
    const dir = join(root, name);
    mkdirSync(dir, { mode: 0o755 });
    const user = pgOsUser();
    if (user) chownSync(dir, user.uid, user.gid);
    members.push({ name, dir, dataDir: join(dir, 'data'), pgPort: await freePort(), apiPort: await freePort(), logFile: join(dir, 'daemon.log'), child: null, exit: null });
  }
});

after(async () => {
  for (const m of members) {
    if (m.child?.exitCode === null && m.child.signalCode === null) {
      m.child.kill('SIGTERM');
      const code = await Promise.race([m.exit, systemClock.sleep(60_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') m.child.kill('SIGKILL');
    }
    // A postmaster left behind by a daemon that had to be killed.
    const pm = runningPostmaster(m.dataDir);
    if (pm !== null) process.kill(pm, 'SIGQUIT');
  }
  etcdClient?.close();
  await etcd?.stop();
  certs?.remove();
  if (process.env.PGWARDEN_KEEP_TEST_DIR) console.error(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
});

/** The variables member-a is made of (its config file is `{}`). */
function envOf(m: Member): NodeJS.ProcessEnv {
  return {
    PATRONI_NAME: m.name,
    PATRONI_SCOPE: SCOPE,
    PATRONI_NAMESPACE: NAMESPACE,
    PATRONI_LOG_LEVEL: 'DEBUG',
    PATRONI_RESTAPI_LISTEN: `127.0.0.1:${m.apiPort}`,
    PATRONI_RESTAPI_CONNECT_ADDRESS: `127.0.0.1:${m.apiPort}`,
    PATRONI_RESTAPI_USERNAME: API.username,
    PATRONI_RESTAPI_PASSWORD: API.password,
    PATRONI_RESTAPI_CERTFILE: certs.serverCert,
    PATRONI_RESTAPI_KEYFILE: certs.serverKeyEncrypted,
    PATRONI_RESTAPI_KEYFILE_PASSWORD: certs.keyPassword,
    PATRONI_RESTAPI_CAFILE: certs.ca,
    PATRONI_RESTAPI_VERIFY_CLIENT: 'optional',
    PATRONI_CTL_CERTFILE: certs.clientCert,
    PATRONI_CTL_KEYFILE: certs.clientKey,
    PATRONI_ETCD3_HOSTS: `127.0.0.1:${etcd.clientPort}`,
    PATRONI_POSTGRESQL_LISTEN: `127.0.0.1:${m.pgPort}`,
    PATRONI_POSTGRESQL_CONNECT_ADDRESS: `127.0.0.1:${m.pgPort}`,
    PATRONI_POSTGRESQL_DATA_DIR: m.dataDir,
    PATRONI_POSTGRESQL_PGPASS: join(m.dir, 'pgpass'),
    PATRONI_SUPERUSER_USERNAME: SUPERUSER.username,
    PATRONI_SUPERUSER_PASSWORD: SUPERUSER.password,
    PATRONI_REPLICATION_USERNAME: 'replicator',
    PATRONI_REPLICATION_PASSWORD: 'rep-secret',
    PATRONI_app_owner_PASSWORD: 'app-secret',
    PATRONI_app_owner_OPTIONS: 'createdb,createrole',
  };
}

/** member-b's whole config as one YAML document, as PATRONI_CONFIGURATION carries it. */
function configurationOf(m: Member): string {
  return [
    `scope: ${SCOPE}`,
    `namespace: ${NAMESPACE}`,
    `name: ${m.name}`,
    'restapi:',
    `  listen: 127.0.0.1:${m.apiPort}`,
    `  connect_address: 127.0.0.1:${m.apiPort}`,
    `  authentication: {username: ${API.username}, password: "${API.password}"}`,
    `  certfile: ${certs.serverCombined}`,
    `  cafile: ${certs.ca}`,
    '  verify_client: optional',
    `ctl: {certfile: ${certs.clientCert}, keyfile: ${certs.clientKey}}`,
    `etcd3: {hosts: "127.0.0.1:${etcd.clientPort}"}`,
    'postgresql:',
    `  listen: 127.0.0.1:${m.pgPort}`,
    `  connect_address: 127.0.0.1:${m.pgPort}`,
    `  data_dir: ${m.dataDir}`,
    `  pgpass: ${join(m.dir, 'pgpass')}`,
    '  authentication:',
    `    superuser: {username: ${SUPERUSER.username}, password: ${SUPERUSER.password}}`,
    '    replication: {username: replicator, password: rep-secret}',
    '',
  ].join('\n');
}

function start(m: Member, args: string[], env: NodeJS.ProcessEnv): void {
  const user = pgOsUser();
  const out = openSync(m.logFile, 'a');
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: m.dir, LANG: 'C.UTF-8' };
  const child = spawn(process.execPath, [BIN, 'daemon', ...args], {
    cwd: m.dir,
    stdio: ['ignore', out, out],
    env: { ...base, ...env },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  closeSync(out);
  m.child = child;
  m.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function client(extra: Partial<HttpSettings> = {}): ReturnType<typeof createHttp> {
  return createHttp({ insecure: false, cacert: certs.ca, ...extra }, 5000);
}

const url = (m: Member): string => `https://127.0.0.1:${m.apiPort}/patroni`;

async function patroni(m: Member): Promise<Record<string, unknown> | null> {
  try {
    const r = await client().request(url(m), 'GET', 'patroni');
    return r.status === 200 || r.status === 503 ? (JSON.parse(r.body) as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

async function leaderKey(): Promise<string | null> {
  return etcdClient.get(`${NAMESPACE}${SCOPE}/leader`).string();
}

function log(m: Member): string {
  try {
    return readFileSync(m.logFile, 'utf8');
  } catch {
    return '';
  }
}

async function query<T>(m: Member, sql: string): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port: m.pgPort, database: 'postgres', ...{ user: SUPERUSER.username, password: SUPERUSER.password }, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end().catch(() => undefined);
  }
}

test('a member configured only by PATRONI_* variables (config file `{}`) bootstraps; its REST API wants TLS client certificates and basic auth', async () => {
  const [a] = members as [Member];
  writeFileSync(join(a.dir, 'a.yml'), '{}\n');
  start(a, [join(a.dir, 'a.yml')], envOf(a));
  const status = await waitFor('member-a running as primary', 120_000, async () => {
    const s = await patroni(a);
    return s?.state === 'running' && s.role === 'master' ? s : null;
  }).catch((e: unknown) => assert.fail(`${String(e)}\n${log(a)}`));
  assert.equal((status.patroni as { scope: string }).scope, SCOPE);
  assert.equal(await leaderKey(), 'member-a', 'the lock is in the namespace and scope from the environment');

  // PATRONI_LOG_LEVEL=DEBUG took effect.
  assert.match(log(a), /"level":20/);
  // The bootstrap user from PATRONI_app_owner_PASSWORD / _OPTIONS, and the superuser password.
  const roles = await query<{ rolcreatedb: boolean; rolcreaterole: boolean }>(a, "SELECT rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'app_owner'");
  assert.deepEqual(roles, [{ rolcreatedb: true, rolcreaterole: true }]);

  // verify_client optional: safe requests need no certificate, unsafe ones do, then basic auth.
  const auth = { auth: API };
  const cert = { certfile: certs.clientCert, keyfile: certs.clientKey };
  const post = async (extra: Partial<HttpSettings>): Promise<number> => (await client(extra).request(url(a), 'POST', 'reload')).status;
  assert.equal(await post(auth), 403);
  assert.equal(await post(cert), 401);
  assert.equal(await post({ ...cert, auth: { username: API.username, password: 'wrong' } }), 401);
  assert.equal(await post({ ...cert, ...auth }), 202);
  await assert.rejects(client({ insecure: false, cacert: undefined }).request(url(a), 'GET', 'patroni'), 'the server is verified');
});

test('a member configured by PATRONI_CONFIGURATION alone (no file) joins as a replica streaming from member-a', async () => {
  const [a, b] = members as [Member, Member];
  start(b, [], { PATRONI_CONFIGURATION: configurationOf(b) });
  await waitFor('member-b streaming from member-a', 120_000, async () => {
    const s = await patroni(b);
    return s?.state === 'running' && s.role === 'replica' ? s : null;
  }).catch((e: unknown) => assert.fail(`${String(e)}\n${log(b)}`));
  await waitFor('member-a sees member-b streaming', 60_000, async () => {
    const s = await patroni(a);
    const repl = (s?.replication ?? []) as Array<{ application_name: string; state: string }>;
    return repl.some((r) => r.application_name === 'member-b' && r.state === 'streaming');
  });
});

test('SIGTERM to the primary daemon: clean shutdown, lock released with the checkpoint as optime, exit 0, the replica takes over before the ttl', async () => {
  const [a, b] = members as [Member, Member];
  assert.equal(await leaderKey(), 'member-a');
  const t0 = systemClock.now();
  a.child!.kill('SIGTERM');
  const code = await Promise.race([a.exit, systemClock.sleep(120_000).then(() => 'timeout' as const)]);
  assert.equal(code, 0, `the daemon exits 0\n${log(a).split('\n').slice(-20).join('\n')}`);
  assert.equal(runningPostmaster(a.dataDir), null, 'its PostgreSQL is down');
  // By the time the daemon has exited, the lock is no longer member-a's (gone, or taken by member-b).
  assert.notEqual(await leaderKey(), 'member-a');

  const cd = await runPg(join(findBinDir(), 'pg_controldata'), ['-D', a.dataDir], { timeoutMs: 10_000 });
  const control = parseControlData(cd.stdout);
  assert.equal(control.state, 'shut down', 'a clean shutdown, not a crash');
  const status = JSON.parse((await etcdClient.get(`${NAMESPACE}${SCOPE}/status`).string()) ?? '{}') as { optime?: number };
  // The optime published at shutdown is the shutdown checkpoint (member-b may since have written its own).
  assert.ok(log(a).includes(`"optime":${control.checkpointLsn}`), `the released lock carried optime ${control.checkpointLsn}`);
  assert.ok(typeof status.optime === 'number' && status.optime >= control.checkpointLsn!, JSON.stringify(status));

  await waitFor('member-b primary', TTL_S * 1000, async () => (await patroni(b))?.role === 'master');
  const took = systemClock.now() - t0;
  assert.ok(took < TTL_S * 1000, `handover took ${took} ms; the ttl is ${TTL_S} s`);
  assert.equal(await leaderKey(), 'member-b');

  // A replica's SIGTERM: PostgreSQL stopped too, exit 0.
  b.child!.kill('SIGTERM');
  assert.equal(await b.exit, 0);
  assert.equal(runningPostmaster(b.dataDir), null);
});
