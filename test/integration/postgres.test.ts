/**
 * LocalPostgres on real PostgreSQL servers (as the postgres OS user when run as root):
 * bootstrap, basebackup replica, replication slots (PgSlots, SlotKeeper), promote, divergence and pg_rewind, stale postmaster.pid.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { DaemonConfig } from '../../src/config/types.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { LocalPostgres } from '../../src/postgres/instance.js';
import { postmasterReady } from '../../src/postgres/postmaster.js';
import { emptyCluster, type Cluster, type Member } from '../../src/dcs/types.js';
import { SlotKeeper } from '../../src/ha/slot-keeper.js';
import { chownToPg, ensureDir, runAsUser } from '../../src/postgres/runas.js';
import { systemClock as clock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/log.js';
import { testDaemonConfig } from '../helpers/config.js';
import { freePort } from '../../src/util/net.js';
import { waitForExit } from '../../src/util/proc.js';
import { CopyCancelledError } from '../../src/util/errors.js';

let root: string;
const instances: LocalPostgres[] = [];
const configs = new Map<string, DaemonConfig>();
const dynamic = effectiveDynamicConfig(null, { postgresql: { use_slots: true, parameters: { max_connections: 30, shared_buffers: '16MB' } } }).dynamic;

before(() => {
  root = mkdtempSync('/tmp/pgwarden-pg-test-');
  chmodSync(root, 0o755);
});

after(async () => {
  for (const p of instances) await p.stop('immediate', 30_000).catch(() => undefined);
  for (const p of instances) await p.close();
  rmSync(root, { recursive: true, force: true });
});

async function instance(name: string, extra: Partial<DaemonConfig['postgresql']> = {}): Promise<LocalPostgres> {
  const port = await freePort();
  const home = join(root, name);
  ensureDir(home, 0o755);
  const config = testDaemonConfig({
    name,
    port,
    scope: 'pgtest',
    dataDir: join(home, 'data'),
    etcd3: { hosts: ['127.0.0.1:2379'] },
    bootstrap: { initdb: [{ encoding: 'UTF8' }, 'data-checksums'], users: { app: { password: "app's", options: ['createdb'] } } },
    postgresql: {
      authentication: {
        superuser: { username: 'postgres', password: "su'per" },
        replication: { username: 'replicator', password: 'rep pass' },
        rewind: { username: 'rewinder', password: 'rw' },
      },
      ...extra,
    },
  });
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

test('findBinDir: the configured directory, else the installed PostgreSQL', () => {
  const dir = findBinDir();
  assert.ok(existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'initdb')), dir);
  assert.equal(findBinDir(dir), dir);
  assert.throws(() => findBinDir('/nonexistent/bin'), /postgresql\.bin_dir: no pg_ctl in \/nonexistent\/bin/);
});

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
  const roles = await a.query(
    "SELECT rolname, rolreplication, rolcanlogin, rolcreatedb FROM pg_roles WHERE rolname IN ('replicator', 'rewinder', 'app') ORDER BY 1",
  );
  assert.deepEqual(roles, [
    { rolname: 'app', rolreplication: false, rolcanlogin: true, rolcreatedb: true },
    { rolname: 'replicator', rolreplication: true, rolcanlogin: true, rolcreatedb: false },
    { rolname: 'rewinder', rolreplication: false, rolcanlogin: true, rolcreatedb: false },
  ]);
  const grants = await a.query("SELECT has_function_privilege('rewinder', 'pg_read_binary_file(text, bigint, bigint, boolean)', 'execute') AS ok");
  assert.deepEqual(grants, [{ ok: true }], 'the rewind user may read files for pg_rewind');
  assert.equal((await a.query('SHOW max_connections'))[0]!.max_connections, '30', 'dynamic parameters applied');
  assert.ok(!existsSync(join(a.dataDir, 'postgresql.log')) && existsSync(a.logFile), 'the server log lives outside the data dir');
  assert.equal((await a.query('SHOW unix_socket_directories'))[0]!.unix_socket_directories, join(root, 'a'), "socket in the data dir's parent");
  assert.equal((await a.query('SHOW cluster_name'))[0]!.cluster_name, 'pgtest');
  assert.equal(o.pendingRestart, false);
  assert.equal(o.serverVersion! >= 130000, true);
  assert.match(o.postmasterStartTime!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$/, "Patroni 3.0.2 prints str(datetime): a space, microseconds");
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
  await a.replicationSlots.createPhysical('b');
  b = await instance('b');
  await b.createReplica(conn(a));
  assert.equal((await b.observe()).dataDir, 'initialized');
  // A stale primary_conninfo in postgresql.auto.conf (pg_basebackup -R, ALTER SYSTEM) must not win over ours.
  const auto = join(b.dataDir, 'postgresql.auto.conf');
  writeFileSync(auto, `${readFileSync(auto, 'utf8')}primary_conninfo = 'host=192.0.2.1 port=1'\nwork_mem = '5MB'\n`);
  await b.start({ upstream: conn(a, 'b'), timeoutMs: 60_000 });
  // The copy was synced with one syncfs; its first start syncs the same way instead of file by file.
  const sync = await b.query("SELECT setting, source FROM pg_settings WHERE name = 'recovery_init_sync_method'");
  assert.deepEqual(sync, [{ setting: 'syncfs', source: 'command line' }]);
  await a.query('CREATE TABLE t(v text)');
  await a.query("INSERT INTO t VALUES ('one')");
  await until('the row on the replica', 30_000, async () => (await b.query('SELECT v FROM t').catch(() => [])).length === 1);
  assert.doesNotMatch(readFileSync(auto, 'utf8'), /primary_conninfo/);
  assert.match(readFileSync(auto, 'utf8'), /work_mem = '5MB'/, 'other ALTER SYSTEM settings stay');
  await until('b streaming', 30_000, async () => (await b.observe()).streaming);
  const o = await b.observe();
  assert.equal(o.inRecovery, true);
  assert.equal(o.streaming, true);
  assert.equal(o.accepting, true);
  assert.equal(o.timeline, 1);
  assert.equal(o.upstream, `127.0.0.1:${conn(a).port}`);
  assert.ok(o.receiveLsn! > 0 && o.replayLsn! > 0);
  assert.equal(o.walPosition, Math.max(o.receiveLsn!, o.replayLsn!));
  assert.equal(o.standbySignal, true);
  assert.equal(o.sysid, (await a.observe()).sysid);
  // The INSERT above committed a transaction the replica replayed: its commit time is reported.
  assert.match(o.replayTimestamp ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/);
  assert.equal(o.replayPaused, false);
  await b.query('SELECT pg_wal_replay_pause()');
  await until('replay paused observed', 10_000, async () => (await b.observe()).replayPaused);
  await b.query('SELECT pg_wal_replay_resume()');
  const slot = await a.query("SELECT active FROM pg_replication_slots WHERE slot_name = 'b'");
  assert.deepEqual(slot, [{ active: true }]);
  const pa = await a.observe();
  assert.deepEqual(pa.replication.map((r) => [r.application_name, r.usename, r.state, r.client_addr]), [['b', 'replicator', 'streaming', '127.0.0.1']]);
  assert.ok(pa.replication[0]!.flush_lsn! > 0);
  assert.equal(pa.timeline, 1);
});

test('replication slots (PgSlots): list, create twice, advance, drop only when idle, lost once invalidated', async () => {
  const slots = a.replicationSlots;
  await slots.createPhysical('idle');
  await slots.createPhysical('idle');
  const before = await slots.list();
  assert.deepEqual(
    before.map((s) => [s.name, s.type, s.active, s.walStatus]),
    [['b', 'physical', true, 'reserved'], ['idle', 'physical', false, 'reserved']],
  );
  const idle = before.find((s) => s.name === 'idle')!;
  assert.ok(idle.restartLsn! > 0, 'created with immediately_reserve: it holds WAL from the start');
  assert.equal(idle.xmin, null);
  await a.query("INSERT INTO t VALUES ('advance me')");
  const now = (await a.observe()).walPosition!;
  await slots.advance('idle', now, null);
  const advanced = (await slots.list()).find((s) => s.name === 'idle')!.restartLsn!;
  assert.ok(advanced > idle.restartLsn! && advanced <= now, `advanced from ${idle.restartLsn} to ${advanced} (asked ${now})`);
  assert.deepEqual(await slots.drop('b'), { active: true, dropped: false }, 'b streams through its slot: not dropped');
  assert.deepEqual(await slots.drop('nope'), { active: false, dropped: false });
  // Invalidated by max_slot_wal_keep_size: what planSlots reads as lost (wal_status lost, no restart_lsn).
  await slots.createPhysical('abandoned');
  await a.query("ALTER SYSTEM SET max_slot_wal_keep_size = '16MB'");
  await a.query('SELECT pg_reload_conf()');
  try {
    await until('the abandoned slot lost', 60_000, async () => {
      await a.query("INSERT INTO t VALUES ('wal')");
      await a.query('SELECT pg_switch_wal()');
      await a.query('CHECKPOINT');
      return (await slots.list()).find((s) => s.name === 'abandoned')?.walStatus === 'lost';
    });
  } finally {
    await a.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
    await a.query('SELECT pg_reload_conf()');
  }
  const lost = (await slots.list()).find((s) => s.name === 'abandoned')!;
  assert.equal(lost.restartLsn, null);
  assert.equal((await slots.list()).find((s) => s.name === 'b')!.walStatus, 'reserved', 'the streaming slot kept up');
  assert.deepEqual(await slots.drop('abandoned'), { active: false, dropped: true });
  assert.deepEqual(await slots.drop('idle'), { active: false, dropped: true });
  assert.deepEqual((await slots.list()).map((s) => s.name), ['b']);
});

test('SlotKeeper on a real primary: the member slot kept, a stray one dropped, a missing one created', async () => {
  await a.query("SELECT pg_create_physical_replication_slot('stray')");
  const keeper = new SlotKeeper({ me: 'a', tags: {}, pg: a, log: silentLogger(), wallNow: () => Date.now() });
  const at = (name: string, role: string, port: number): Member => ({
    name,
    version: 1,
    data: { conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: 'http://127.0.0.1:1/patroni', state: 'running', role, version: 'test' },
  });
  const cluster: Cluster = {
    ...emptyCluster,
    initialize: (await a.observe()).sysid!,
    members: [at('a', 'master', conn(a).port), at('b', 'replica', conn(b).port), at('c', 'replica', 1)],
    leader: { name: 'a', version: 1 },
  };
  await keeper.sync(cluster, await a.observe(), dynamic, 'primary');
  const after = await a.replicationSlots.list();
  assert.deepEqual(after.map((s) => [s.name, s.active]), [['b', true], ['c', false]]);
  // A second pass changes nothing; the positions published are those of the slots the last pass listed.
  await keeper.sync(cluster, await a.observe(), dynamic, 'primary');
  assert.deepEqual((await a.replicationSlots.list()).map((s) => [s.name, s.restartLsn]), after.map((s) => [s.name, s.restartLsn]));
  const status = keeper.leaderStatus(cluster, await a.observe(), dynamic);
  assert.deepEqual(Object.keys(status.slots ?? {}).sort(), ['a', 'b', 'c'], 'the leader publishes its own position and its member slots');
  assert.deepEqual(status.retain_slots, ['a', 'b', 'c']);
  assert.deepEqual(await a.replicationSlots.drop('c'), { active: false, dropped: true });
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
  await a.query("INSERT INTO t VALUES ('diverged after the checkpoint')");
  await a.stop('fast', 30_000);
  const oa = await a.observe();
  assert.equal(oa.running, false);
  assert.equal(oa.controlState, 'shut down');
  assert.equal(oa.controlTimeline, 1);
  await b.query("INSERT INTO t VALUES ('two')");
});

test('divergence: the former primary is rewound and follows the new one', async () => {
  assert.equal(await a.rewindNeeded(conn(b)), true);
  await a.rewind(conn(b));
  await b.replicationSlots.createPhysical('a');
  await a.start({ upstream: conn(b, 'a'), timeoutMs: 60_000 });
  await b.query("INSERT INTO t VALUES ('streamed')");
  await until('rows streamed to the rewound member', 30_000, async () =>
    (await a.query("SELECT v FROM t WHERE v IN ('two', 'streamed')").catch(() => [])).length === 2,
  );
  assert.deepEqual(await a.query("SELECT v FROM t WHERE v LIKE 'diverged%'"), [], 'the diverged rows are gone');
  const o = await a.observe();
  assert.equal(o.inRecovery, true);
  assert.equal(o.timeline, 2);
});

test('a cleanly stopped former primary has not diverged: no rewind needed', async () => {
  await b.stop('fast', 30_000);
  await a.promote(60_000);
  assert.equal((await a.observe()).timeline, 3);
  assert.equal(await b.rewindNeeded(conn(a)), false);
  await a.replicationSlots.createPhysical('b');
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
  assert.match(readFileSync(join(a.dataDir, 'postmaster.pid'), 'utf8').split('\n')[7] ?? '', /ready/, 'the dead server\'s file still says ready');
  assert.equal(postmasterReady(a.dataDir), false, 'but nobody is there');
  await a.start({ upstream: null, timeoutMs: 60_000 });
  assert.equal(postmasterReady(a.dataDir), true);
  assert.equal((await a.observe()).accepting, true);
});

test('postmaster.pid naming another live process (PID reuse) does not block start', async () => {
  await a.stop('immediate', 30_000);
  const pidFile = join(a.dataDir, 'postmaster.pid');
  const user = runAsUser();
  // A process of the postgres OS user that is not a postmaster: PostgreSQL alone would refuse to start.
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore', ...(user ? { uid: user.uid, gid: user.gid } : {}) });
  try {
    writeFileSync(pidFile, `${sleeper.pid}\n${a.dataDir}\n0\n5432\n/tmp\n127.0.0.1\n0 0\nready   \n`);
    chownToPg(pidFile);
    assert.equal((await a.observe()).running, false);
    assert.equal(postmasterReady(a.dataDir), false, 'ready, says the file; but its PID is no postmaster');
    await a.start({ upstream: null, timeoutMs: 60_000 });
    assert.equal((await a.observe()).accepting, true);
    assert.notEqual(a.postmasterPid(), sleeper.pid);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('the postmaster runs in its own session (like pg_ctl start); a start that fails says why, from the server log', async () => {
  const pid = a.postmasterPid()!;
  const sessionOf = (p: number) => Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]);
  assert.equal(sessionOf(pid), pid, 'a signal to the daemon\'s session or process group does not reach the server');
  await a.stop('fast', 30_000);
  // Someone else on the server's port: PostgreSQL cannot bind and exits. b streams from a and its WAL
  // receiver, retrying, may connect to the holder meanwhile: it gets hung up on at once (were it kept
  // open, without a connect_timeout it would wait for an answer, and close() for it, forever).
  const holder = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => holder.listen(conn(a).port, '127.0.0.1', resolve));
  try {
    await assert.rejects(a.start({ upstream: null, timeoutMs: 30_000 }), /postgresql failed to start \(exit 1\): .*could not (bind IPv4 address|create any TCP\/IP sockets)/);
    assert.equal(a.postmasterPid(), null);
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
  await a.start({ upstream: null, timeoutMs: 60_000 });
  assert.equal((await a.observe()).accepting, true);
});

test('a crashed former primary with diverged writes is rewound (pg_rewind recovers it first)', async () => {
  // a runs read-only without an upstream and b streams from it (cascading): make a the primary again.
  await until('b streaming from a', 30_000, async () => (await b.observe()).streaming);
  await a.promote(60_000);
  assert.equal((await a.observe()).timeline, 4);
  await until('b on timeline 4', 30_000, async () => {
    const o = await b.observe();
    return o.streaming && o.timeline === 4;
  });
  await b.promote(60_000);
  assert.equal((await b.observe()).timeline, 5);
  await a.query("INSERT INTO t VALUES ('crash-diverged')");
  const pid = a.postmasterPid()!;
  process.kill(pid, 'SIGKILL');
  assert.ok(await waitForExit(pid, 10_000));
  await until('the children to exit', 30_000, async () => (await a.observe()).running === false);
  const o = await a.observe();
  assert.equal(o.controlState, 'in production', 'pg_control says it crashed');
  assert.equal(await a.rewindNeeded(conn(b)), true);
  await a.rewind(conn(b));
  await b.replicationSlots.createPhysical('a');
  await a.start({ upstream: conn(b, 'a'), timeoutMs: 60_000 });
  await b.query("INSERT INTO t VALUES ('after the crash')");
  await until('a to replicate from b', 30_000, async () =>
    (await a.query("SELECT v FROM t WHERE v = 'after the crash'").catch(() => [])).length === 1,
  );
  assert.deepEqual(await a.query("SELECT v FROM t WHERE v = 'crash-diverged'"), []);
  await until('a streaming on timeline 5', 30_000, async () => {
    const x = await a.observe();
    return x.streaming && x.timeline === 5;
  });
});

test('reloadConfig applies changed parameters; a restart-only change shows as pendingRestart', async () => {
  const changed = effectiveDynamicConfig(null, {
    postgresql: { use_slots: true, parameters: { max_connections: 30, shared_buffers: '24MB', maintenance_work_mem: '77MB' } },
  }).dynamic;
  b.configure(changed);
  await b.reloadConfig();
  await until('maintenance_work_mem reloaded', 10_000, async () => (await b.query('SHOW maintenance_work_mem'))[0]!.maintenance_work_mem === '77MB');
  const o = await b.observe();
  assert.equal(o.pendingRestart, true);
  assert.equal(o.inRecovery, false, 'a reload keeps the primary a primary');
  assert.equal(o.standbySignal, false);
  await assert.rejects(b.moveDataDirAside('busy'), /while postgresql runs/);
});

test('stop: a smart shutdown that does not finish in time becomes an immediate one', async () => {
  const { default: pg } = await import('pg');
  // A smart shutdown waits for every session to end: this one never does by itself.
  const session = new pg.Client({ host: '127.0.0.1', port: conn(b).port, user: 'postgres', password: "su'per", database: 'postgres' });
  session.on('error', () => undefined);
  await session.connect();
  try {
    const t0 = clock.now();
    await b.stop('smart', 2000);
    const took = clock.now() - t0;
    assert.ok(took >= 1500 && took < 15_000, `escalated after the timeout (${Math.round(took)} ms)`);
    const o = await b.observe();
    assert.deepEqual([o.running, o.accepting, o.inRecovery, o.timeline, o.walPosition], [false, false, null, null, null]);
    assert.equal(o.controlState, 'in production', 'immediate: no shutdown checkpoint');
    await b.stop('fast', 5000); // not running: a no-op
  } finally {
    await session.end().catch(() => undefined);
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

test('callbacks: a first start as standby leader is on_start even when observe() sees the server in recovery before start() returns', async () => {
  const calls = join(root, 'calls-e');
  writeFileSync(calls, '');
  chmodSync(calls, 0o666);
  const e = await instance('e', { callbacks: { on_start: `sh -c 'echo "$0 $1" >> ${calls}'`, on_role_change: `sh -c 'echo "$0 $1" >> ${calls}'` } });
  await e.createReplica(conn(a));
  // The HA loop and the REST API observe while a long action such as this start runs.
  let starting = true;
  let seenInRecovery = 0;
  const observer = (async () => {
    for (let i = 0; starting && i < 100_000; i++) if ((await e.observe()).inRecovery === true) seenInRecovery++;
  })();
  try {
    await e.start({ upstream: { ...conn(a), remote: true, noSlot: true }, timeoutMs: 60_000 });
  } finally {
    starting = false;
    await observer;
  }
  await until('the callback ran', 30_000, async () => readFileSync(calls, 'utf8').trim() !== '');
  assert.equal(readFileSync(calls, 'utf8').trim(), 'on_start standby_leader', `observe() saw it in recovery ${seenInRecovery} times during start`);
  await e.stop('fast', 30_000);
});

test('a failed basebackup leaves the (previously empty) data dir empty', async () => {
  const d = await instance('d');
  await assert.rejects(d.createReplica({ host: '127.0.0.1', port: await freePort() }), /pg_basebackup failed/);
  assert.equal((await d.observe()).dataDir, 'empty');
  await d.stop('fast', 5000); // not running: a no-op
});

test("bootstrap: initdb's output is synced while the server starts, and the bootstrap ends only after the sync", async () => {
  const f = await instance('f');
  const bin = join(root, 'fake-sync-bin');
  ensureDir(bin, 0o755);
  const marks = join(root, 'sync-marks');
  writeFileSync(marks, '');
  chmodSync(marks, 0o666);
  // A `sync` that first waits (bounded) for the server to exist, then takes 2 s, then syncs for real. The 2 s
  // are not a wait for anything: a bootstrap that did not await the sync would return within them, and fail.
  writeFileSync(
    join(bin, 'sync'),
    `#!/bin/sh\ni=0; while [ ! -f ${f.dataDir}/postmaster.pid ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n` +
      `[ -f ${f.dataDir}/postmaster.pid ] && echo overlap >> ${marks}\nsleep 2\n/bin/sync "$@"\necho "end $(date +%s%3N)" >> ${marks}\n`,
  );
  chmodSync(join(bin, 'sync'), 0o755);
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  try {
    await f.bootstrap();
  } finally {
    process.env.PATH = path;
  }
  const done = Date.now();
  const lines = readFileSync(marks, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'overlap', 'the server was started while the sync ran');
  const end = Number(/^end (\d+)$/.exec(lines[1] ?? '')?.[1]);
  assert.ok(end > 0 && done >= end, `bootstrap returned at ${done}, the sync ended at ${end}`);
  await f.stop('fast', 30_000);
});

test('cancelCopy: a pg_basebackup in progress is stopped, its partial copy removed, no further method tried', async () => {
  const marker = join(root, 'g-marker');
  // A copy at pg_basebackup's lowest rate (32 kB/s) takes minutes: it is still running when cancelled.
  const g = await instance('g', {
    basebackup: [{ 'max-rate': '32k' }],
    create_replica_methods: ['basebackup', 'marker'],
    replica_methods: { marker: { command: `touch ${marker}`, no_params: true } },
  });
  const copy = g.createReplica(conn(a));
  try {
    await until('pg_basebackup to start writing', 60_000, async () => existsSync(join(g.dataDir, 'PG_VERSION')));
    g.cancelCopy();
    await assert.rejects(copy, CopyCancelledError);
    assert.equal((await g.observe()).dataDir, 'empty', 'the partial copy is removed');
    assert.equal(existsSync(marker), false, 'the next replica method was not tried');
  } finally {
    // Whatever failed above, no copy outlives the test.
    g.cancelCopy();
    await copy.catch(() => undefined);
  }
  g.cancelCopy(); // nothing in progress: a no-op
});
