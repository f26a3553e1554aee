/**
 * LocalPostgres on real PostgreSQL servers (as the postgres OS user when run as root):
 * bootstrap, basebackup replica, slots, promote, divergence and pg_rewind, stale postmaster.pid.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { DaemonConfig } from '../../src/config/types.js';
import { LocalPostgres } from '../../src/postgres/instance.js';
import { chownToPg, ensureDir, runAsUser } from '../../src/postgres/run.js';
import { systemClock as clock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../../src/util/net.js';
import { waitForExit } from '../../src/util/proc.js';

let root: string;
const instances: LocalPostgres[] = [];
const configs = new Map<string, DaemonConfig>();
const dynamic = effectiveDynamicConfig(null, { postgresql: { use_slots: true, parameters: { max_connections: 20, shared_buffers: '16MB' } } }).dynamic;

before(() => {
  root = mkdtempSync('/tmp/pgwarden-pg-test-');
  chmodSync(root, 0o755);
});

after(async () => {
  for (const p of instances) await p.stop('immediate', 30_000).catch(() => undefined);
  for (const p of instances) await p.close();
  rmSync(root, { recursive: true, force: true });
});

async function instance(name: string): Promise<LocalPostgres> {
  const port = await freePort();
  const home = join(root, name);
  ensureDir(home, 0o755);
  const config: DaemonConfig = {
    scope: 'pgtest',
    name,
    namespace: '/service/',
    restapi: { listen: '127.0.0.1:8008', connect_address: '127.0.0.1:8008' },
    etcd3: { hosts: ['127.0.0.1:2379'] },
    bootstrap: { dcs: {}, initdb: [{ encoding: 'UTF8' }, 'data-checksums'] },
    postgresql: {
      listen: `127.0.0.1:${port}`,
      connect_address: `127.0.0.1:${port}`,
      data_dir: join(home, 'data'),
      authentication: {
        superuser: { username: 'postgres', password: "su'per" },
        replication: { username: 'replicator', password: 'rep pass' },
        rewind: { username: 'rewinder', password: 'rw' },
      },
      parameters: {},
      remove_data_directory_on_rewind_failure: false,
      remove_data_directory_on_diverged_timelines: false,
      create_replica_methods: ['basebackup'],
    },
    tags: {},
    unsupported: [],
  };
  configs.set(name, config);
  const p = new LocalPostgres({ config, dynamic, log: silentLogger(), clock });
  instances.push(p);
  return p;
}

const conn = (p: LocalPostgres, slot?: string) => {
  const { port } = new URL(`postgres://${(p as unknown as { cfg: DaemonConfig }).cfg.postgresql.connect_address}`);
  return { host: '127.0.0.1', port: Number(port), slotName: slot };
};

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const end = clock.now() + ms;
  while (!(await fn())) {
    if (clock.now() > end) assert.fail(`timed out waiting for ${what}`);
    await clock.sleep(100);
  }
}

let a: LocalPostgres;
let b: LocalPostgres;

test('bootstrap: initdb, roles, running primary with a system identifier', async () => {
  a = await instance('a');
  assert.equal((await a.observe()).dataDir, 'empty');
  const sysid = await a.bootstrap();
  assert.match(sysid, /^\d{10,}$/);
  const o = await a.observe();
  assert.equal(o.running, true);
  assert.equal(o.inRecovery, false);
  assert.equal(o.timeline, 1);
  assert.equal(o.sysid, sysid);
  assert.ok(o.walPosition! > 0);
  assert.ok(existsSync(join(a.dataDir, 'postgresql.base.conf')), "initdb's conf kept as the base");
  const roles = await a.query("SELECT rolname, rolreplication FROM pg_roles WHERE rolname IN ('replicator', 'rewinder') ORDER BY 1");
  assert.deepEqual(roles, [{ rolname: 'replicator', rolreplication: true }, { rolname: 'rewinder', rolreplication: false }]);
  assert.equal((await a.query('SHOW max_connections'))[0]!.max_connections, '20', 'dynamic parameters applied');
  assert.ok(!existsSync(join(a.dataDir, 'postgresql.log')) && existsSync(a.logFile), 'the server log lives outside the data dir');
  assert.equal((await a.query('SHOW unix_socket_directories'))[0]!.unix_socket_directories, join(root, 'a'), "socket in the data dir's parent");
  assert.equal((await a.query('SHOW cluster_name'))[0]!.cluster_name, 'pgtest');
  assert.equal(o.pendingRestart, false);
  assert.equal(o.serverVersion! >= 130000, true);
  assert.match(o.postmasterStartTime!, /^\d{4}-\d\d-\d\dT/);
  assert.equal(o.standbySignal, false);
  assert.equal(o.upstream, null);
  // The replication user can open a replication connection with its password.
  const { default: pg } = await import('pg');
  const rc = new pg.Client({ host: '127.0.0.1', port: conn(a).port, user: 'replicator', password: 'rep pass', database: 'postgres', replication: true } as never);
  await rc.connect();
  const ident = await rc.query('IDENTIFY_SYSTEM');
  await rc.end();
  assert.equal(String(ident.rows[0].systemid), sysid);
});

test('replica: basebackup, start as standby, rows replicate through its slot', async () => {
  await a.syncSlots(['b']);
  b = await instance('b');
  await b.createReplica(conn(a));
  assert.equal((await b.observe()).dataDir, 'initialized');
  await b.start({ upstream: conn(a, 'b'), timeoutMs: 60_000 });
  await a.query('CREATE TABLE t(v text)');
  await a.query("INSERT INTO t VALUES ('one')");
  await until('the row on the replica', 30_000, async () => (await b.query('SELECT v FROM t').catch(() => [])).length === 1);
  const o = await b.observe();
  assert.equal(o.inRecovery, true);
  assert.equal(o.streaming, true);
  assert.equal(o.upstream, `127.0.0.1:${conn(a).port}`);
  assert.ok(o.walPosition! > 0);
  assert.equal(o.standbySignal, true);
  const slot = await a.query("SELECT active FROM pg_replication_slots WHERE slot_name = 'b'");
  assert.deepEqual(slot, [{ active: true }]);
  const pa = await a.observe();
  assert.deepEqual(pa.replication.map((r) => [r.application_name, r.state]), [['b', 'streaming']]);
});

test('syncSlots drops inactive slots of members that left and keeps active ones', async () => {
  await a.syncSlots(['b', 'gone']);
  await a.syncSlots(['b']);
  const names = (await a.query("SELECT slot_name FROM pg_replication_slots ORDER BY 1")).map((r) => r.slot_name);
  assert.deepEqual(names, ['b']);
});

test('promote while the old primary still runs: timeline 2, and the old primary diverges', async () => {
  await b.promote(60_000);
  const o = await b.observe();
  assert.equal(o.inRecovery, false);
  assert.equal(o.timeline, 2);
  const hist = await b.timelineHistory();
  assert.equal(hist.length, 1);
  assert.equal(hist[0]![0], 1);
  assert.ok(hist[0]![1] > 0);
  // Split brain by hand: the old primary accepts a write the new one never sees.
  await a.query("INSERT INTO t VALUES ('diverged')");
  await a.query('CHECKPOINT');
  await a.stop('fast', 30_000);
  assert.equal((await a.observe()).running, false);
  await b.query("INSERT INTO t VALUES ('two')");
});

test('divergence: the former primary is rewound and follows the new one', async () => {
  assert.equal(await a.rewindNeeded(conn(b)), true);
  await a.rewind(conn(b));
  await b.syncSlots(['a']);
  await a.start({ upstream: conn(b, 'a'), timeoutMs: 60_000 });
  await b.query("INSERT INTO t VALUES ('streamed')");
  await until('rows streamed to the rewound member', 30_000, async () =>
    (await a.query("SELECT v FROM t WHERE v IN ('two', 'streamed')").catch(() => [])).length === 2,
  );
  assert.deepEqual(await a.query("SELECT v FROM t WHERE v = 'diverged'"), [], 'the diverged row is gone');
  const o = await a.observe();
  assert.equal(o.inRecovery, true);
  assert.equal(o.timeline, 2);
});

test('a cleanly stopped former primary has not diverged: no rewind needed', async () => {
  await b.stop('fast', 30_000);
  await a.promote(60_000);
  assert.equal((await a.observe()).timeline, 3);
  assert.equal(await b.rewindNeeded(conn(a)), false);
  await a.syncSlots(['b']);
  // Read-only without an upstream first, then follow: the reload applies primary_conninfo.
  await b.start({ upstream: null, timeoutMs: 60_000 });
  let o = await b.observe();
  assert.equal(o.inRecovery, true);
  assert.equal(o.standbySignal, true);
  assert.equal(o.upstream, null);
  assert.equal(o.streaming, false);
  await b.follow(conn(a, 'b'));
  await a.query("INSERT INTO t VALUES ('three')");
  await until('b to follow a without a rewind', 30_000, async () =>
    (await b.query("SELECT v FROM t WHERE v = 'three'").catch(() => [])).length === 1,
  );
  await until('b streaming', 30_000, async () => (await b.observe()).streaming);
  o = await b.observe();
  assert.equal(o.upstream, `127.0.0.1:${conn(a).port}`);
  assert.equal(o.timeline, 3);
  await assert.rejects(a.follow(conn(b)), /not running as a replica/);
  // A daemon restarted over a running replica must not turn it into a primary on reload.
  const fresh = new LocalPostgres({ config: configs.get('b')!, dynamic, log: silentLogger(), clock });
  await fresh.reloadConfig();
  await fresh.close();
  assert.equal((await b.observe()).standbySignal, true);
  const ci = await b.query("SELECT current_setting('primary_conninfo') AS ci, current_setting('primary_slot_name') AS slot");
  assert.match(String(ci[0]!.ci), new RegExp(`port=${conn(a).port}`));
  assert.equal(ci[0]!.slot, 'b');
});

test('kill -9 of a postmaster leaves postmaster.pid behind; start copes', async () => {
  const pid = Number(readFileSync(join(a.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGKILL');
  assert.ok(await waitForExit(pid, 10_000));
  await until('the children to exit', 30_000, async () => (await a.observe()).running === false);
  assert.ok(existsSync(join(a.dataDir, 'postmaster.pid')));
  await a.start({ upstream: null, timeoutMs: 60_000 });
  assert.equal((await a.observe()).accepting, true);
});

test('postmaster.pid naming another live process (PID reuse) does not block start', async () => {
  await a.stop('immediate', 30_000);
  const pidFile = join(a.dataDir, 'postmaster.pid');
  const user = runAsUser();
  // A process of the postgres OS user that is not a postmaster: PostgreSQL alone would refuse to start.
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore', ...(user ? { uid: user.uid, gid: user.gid } : {}) });
  try {
    writeFileSync(pidFile, `${sleeper.pid}\n${a.dataDir}\n`);
    chownToPg(pidFile);
    assert.equal((await a.observe()).running, false);
    await a.start({ upstream: null, timeoutMs: 60_000 });
    assert.equal((await a.observe()).accepting, true);
    assert.notEqual(a.postmasterPid(), sleeper.pid);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('a data dir with foreign content is never touched', async () => {
  const c = await instance('c');
  const dir = (c as unknown as { dataDir: string }).dataDir;
  ensureDir(dir, 0o700);
  writeFileSync(join(dir, 'precious.txt'), 'keep me');
  chownToPg(join(dir, 'precious.txt'));
  assert.equal((await c.observe()).dataDir, 'invalid');
  await assert.rejects(c.bootstrap(), /not empty/);
  await assert.rejects(c.createReplica(conn(a)), /not empty/);
  assert.equal(readFileSync(join(dir, 'precious.txt'), 'utf8'), 'keep me');
  const moved = await c.moveDataDirAside('test');
  assert.equal(readFileSync(join(moved, 'precious.txt'), 'utf8'), 'keep me');
  assert.equal((await c.observe()).dataDir, 'empty');
});

test('a failed basebackup leaves the (previously empty) data dir empty', async () => {
  const d = await instance('d');
  await assert.rejects(d.createReplica({ host: '127.0.0.1', port: await freePort() }), /pg_basebackup failed/);
  assert.equal((await d.observe()).dataDir, 'empty');
  await d.stop('fast', 5000); // not running: a no-op
});
