/**
 * bench/failover — the same 3-member cluster (identical Patroni-format configs, same etcd, same machine)
 * run by pgwarden and by Debian's Patroni, one after the other in one invocation. Measures:
 *   bootstrap time · kill -9 of the primary: longest write gap of a client committing every ~20 ms,
 *   time to a new primary, acknowledged rows lost, time for the old primary to rejoin · daemon RSS and
 *   CPU at idle. Prints both and their ratios (pgwarden / Patroni; lower is better for every row).
 *
 *   node --import tsx bench/failover.ts [--ttl 20 --loop-wait 1 --retry-timeout 3] [--only pgwarden|patroni] [--idle 30]
 *                                       [--bootstrap-runs 3]
 *
 * Bootstrap time is the median of --bootstrap-runs fresh clusters per engine (it varies run to run by more
 * than the settings change it); the failover part runs on the last of them.
 *
 * A script, not a test: it asserts nothing and its numbers are printed, not compared to thresholds.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { findBinDir } from '../src/postgres/bin.js';
import { createLocalCluster, member, postmasterPid, signalMember, startLocalEtcd, startMember, type LocalState } from '../src/local/cluster.js';
import { fetchCluster, localDown } from '../src/local/run.js';
import { systemClock as clock } from '../src/util/clock.js';
import { waitForExit } from '../src/util/proc.js';

type Engine = 'pgwarden' | 'patroni';

interface Result {
  bootstrapS: number;
  writeGapS: number;
  newPrimaryS: number;
  lostRows: number;
  rejoinS: number;
  rssMB: number;
  cpuPct: number;
}

const { values: args } = parseArgs({
  options: {
    ttl: { type: 'string', default: '20' },
    'loop-wait': { type: 'string', default: '1' },
    'retry-timeout': { type: 'string', default: '3' },
    only: { type: 'string' },
    idle: { type: 'string', default: '30' },
    'bootstrap-runs': { type: 'string', default: '3' },
  },
});

const timing = { ttl: Number(args.ttl), loopWait: Number(args['loop-wait']), retryTimeout: Number(args['retry-timeout']) };

async function main(): Promise<void> {
  const engines: Engine[] = args.only ? [args.only as Engine] : ['pgwarden', 'patroni'];
  const results = new Map<Engine, Result>();
  for (const engine of engines) {
    log(`\n=== ${engine} (ttl ${timing.ttl}, loop_wait ${timing.loopWait}, retry_timeout ${timing.retryTimeout}) ===`);
    results.set(engine, await runOne(engine));
  }
  printTable(results);
}

async function runOne(engine: Engine): Promise<Result> {
  const earlier: number[] = [];
  for (let i = 1; i < Number(args['bootstrap-runs']); i++) earlier.push(await bootstrapOnly(engine));
  return failoverRun(engine, earlier);
}

/** A fresh cluster bootstrapped and torn down: seconds from spawning the daemons to a healthy cluster. */
async function bootstrapOnly(engine: Engine): Promise<number> {
  const { dir, state } = await newCluster(engine);
  try {
    await startLocalEtcd(state);
    const t0 = clock.now();
    for (const m of state.members) startMember(state, m.name);
    await healthy(state, 300_000);
    const s = (clock.now() - t0) / 1000;
    log(`bootstrap: ${s.toFixed(1)} s`);
    return s;
  } finally {
    await teardown(dir);
  }
}

async function newCluster(engine: Engine): Promise<{ dir: string; state: LocalState }> {
  const dir = mkdtempSync(`/tmp/pgwarden-bench-${engine}-`);
  const state = await createLocalCluster({
    dir,
    members: 3,
    ttl: timing.ttl,
    loopWait: timing.loopWait,
    retryTimeout: timing.retryTimeout,
    engine,
    extra: { postgresql: { bin_dir: findBinDir() } },
  });
  return { dir, state };
}

async function teardown(dir: string): Promise<void> {
  await localDown(dir, { info: () => undefined }).catch((e: unknown) => log(`teardown: ${String(e)}`));
  rmSync(dir, { recursive: true, force: true });
}

async function failoverRun(engine: Engine, earlierBootstraps: number[]): Promise<Result> {
  const { dir, state } = await newCluster(engine);
  try {
    await startLocalEtcd(state);
    const t0 = clock.now();
    for (const m of state.members) startMember(state, m.name);
    await healthy(state, 300_000);
    const lastBootstrap = (clock.now() - t0) / 1000;
    log(`bootstrap: ${lastBootstrap.toFixed(1)} s`);
    const bootstrapS = median([...earlierBootstraps, lastBootstrap]);

    const { rssMB, cpuPct } = await idleUsage(state, Number(args.idle) * 1000);
    log(`idle: ${rssMB.toFixed(1)} MB RSS per daemon, ${cpuPct.toFixed(2)} % CPU per daemon`);

    const leader = await leaderName(state);
    await sql(state, leader, 'CREATE TABLE IF NOT EXISTS bench(id int PRIMARY KEY, at timestamptz DEFAULT now())');
    const writer = new GapWriter(state);
    const writing = writer.run(240_000);
    await clock.sleep(3000);
    const killedAt = clock.now();
    await kill9(state, leader);
    const next = await waitForPrimary(state, leader, 180_000);
    const newPrimaryS = (clock.now() - killedAt) / 1000;
    log(`new primary ${next} after ${newPrimaryS.toFixed(1)} s`);
    await waitUntil(() => writer.lastOkAt > clock.now() - 1000 && writer.okAfter(killedAt) >= 50, 60_000);
    writer.stop();
    await writing;
    const present = new Set((await sql<{ id: number }>(state, next, 'SELECT id FROM bench')).map((r) => r.id));
    const lostRows = writer.acked.filter((id) => !present.has(id)).length;
    log(`longest write gap ${(writer.maxGapMs / 1000).toFixed(2)} s, acknowledged rows lost: ${lostRows}`);

    const r0 = clock.now();
    startMember(state, leader);
    await healthy(state, 300_000);
    const rejoinS = (clock.now() - r0) / 1000;
    log(`old primary rejoined after ${rejoinS.toFixed(1)} s`);
    return { bootstrapS, writeGapS: writer.maxGapMs / 1000, newPrimaryS, lostRows, rejoinS, rssMB, cpuPct };
  } finally {
    await teardown(dir);
  }
}

/** Average RSS (MB) and CPU (% of one core) of the member daemons over an idle window. */
async function idleUsage(state: LocalState, ms: number): Promise<{ rssMB: number; cpuPct: number }> {
  const pids = state.members.map((m) => m.pid!).filter(Boolean);
  const ticks = (pid: number) => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const before = pids.map(ticks);
  const t0 = clock.now();
  await clock.sleep(ms);
  const elapsed = (clock.now() - t0) / 1000;
  const after = pids.map(ticks);
  const hz = 100;
  const cpu = pids.map((_, i) => ((after[i]! - before[i]!) / hz / elapsed) * 100);
  const rss = pids.map((pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
  return { rssMB: avg(rss), cpuPct: avg(cpu) };
}

class GapWriter {
  readonly acked: number[] = [];
  maxGapMs = 0;
  lastOkAt = clock.now();
  private okTimes: number[] = [];
  private stopped = false;

  constructor(private readonly state: LocalState) {}

  stop(): void {
    this.stopped = true;
  }

  okAfter(t: number): number {
    return this.okTimes.filter((x) => x > t).length;
  }

  async run(maxMs: number): Promise<void> {
    const deadline = clock.now() + maxMs;
    let id = 1;
    let client: pg.Client | null = null;
    while (!this.stopped && clock.now() < deadline) {
      try {
        client ??= await connectPrimary(this.state);
        if (client) {
          await client.query('INSERT INTO bench(id) VALUES ($1)', [id]);
          const now = clock.now();
          this.maxGapMs = Math.max(this.maxGapMs, now - this.lastOkAt);
          this.lastOkAt = now;
          this.okTimes.push(now);
          this.acked.push(id);
          id++;
        }
      } catch {
        await client?.end().catch(() => undefined);
        client = null;
        id++;
      }
      await clock.sleep(20);
    }
    await client?.end().catch(() => undefined);
  }
}

async function connectPrimary(state: LocalState): Promise<pg.Client | null> {
  for (const m of state.members) {
    const c = client(state, m.pgPort, 1000);
    try {
      await c.connect();
      if ((await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === false) return c;
    } catch {
      // next
    }
    await c.end().catch(() => undefined);
  }
  return null;
}

function client(state: LocalState, port: number, timeout: number): pg.Client {
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    user: state.superuser.username,
    password: state.superuser.password,
    database: 'postgres',
    connectionTimeoutMillis: timeout,
    statement_timeout: 5000,
  });
  c.on('error', () => undefined);
  return c;
}

async function sql<T = Record<string, unknown>>(state: LocalState, name: string, text: string): Promise<T[]> {
  const c = client(state, member(state, name).pgPort, 3000);
  await c.connect();
  try {
    return (await c.query(text)).rows as T[];
  } finally {
    await c.end();
  }
}

async function healthy(state: LocalState, ms: number): Promise<void> {
  await waitUntil(async () => {
    const c = await fetchCluster(state);
    if (!c) return false;
    const leaders = c.members.filter((m) => m.role === 'leader' && m.state === 'running').length;
    const replicas = c.members.filter((m) => m.role !== 'leader' && m.state === 'running' && typeof m.lag === 'number').length;
    return leaders === 1 && replicas === state.members.length - 1;
  }, ms);
}

async function leaderName(state: LocalState): Promise<string> {
  const c = await fetchCluster(state);
  const l = c?.members.find((m) => m.role === 'leader');
  if (!l) throw new Error('no leader');
  return l.name;
}

async function waitForPrimary(state: LocalState, old: string, ms: number): Promise<string> {
  let found = '';
  await waitUntil(async () => {
    for (const m of state.members.filter((x) => x.name !== old)) {
      try {
        const r = await sql<{ r: boolean }>(state, m.name, 'SELECT pg_is_in_recovery() AS r');
        if (r[0]?.r === false) {
          found = m.name;
          return true;
        }
      } catch {
        // not up
      }
    }
    return false;
  }, ms);
  return found;
}

async function kill9(state: LocalState, name: string): Promise<void> {
  const pm = postmasterPid(state, name);
  await signalMember(state, name, 'SIGKILL', 10_000);
  if (pm) {
    process.kill(pm, 'SIGKILL');
    await waitForExit(pm, 10_000);
  }
}

async function waitUntil(fn: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = clock.now() + ms;
  while (!(await fn())) {
    if (clock.now() > deadline) throw new Error(`timed out after ${ms / 1000} s`);
    await clock.sleep(100);
  }
}

function printTable(results: Map<Engine, Result>): void {
  const rows: Array<[string, keyof Result, number]> = [
    ['bootstrap of 3 members, median (s)', 'bootstrapS', 1],
    ['failover: longest write gap (s)', 'writeGapS', 2],
    ['failover: time to new primary (s)', 'newPrimaryS', 2],
    ['failover: acknowledged rows lost', 'lostRows', 0],
    ['old primary rejoin (s)', 'rejoinS', 1],
    ['daemon RSS at idle (MB)', 'rssMB', 1],
    ['daemon CPU at idle (%)', 'cpuPct', 2],
  ];
  const a = results.get('pgwarden');
  const b = results.get('patroni');
  log(`\n${'metric'.padEnd(36)}${'pgwarden'.padStart(12)}${'patroni'.padStart(12)}${'ratio'.padStart(10)}`);
  for (const [label, key, digits] of rows) {
    const x = a?.[key];
    const y = b?.[key];
    const ratio = x !== undefined && y ? (x / y).toFixed(2) : '-';
    log(`${label.padEnd(36)}${fmt(x, digits).padStart(12)}${fmt(y, digits).padStart(12)}${ratio.padStart(10)}`);
  }
}

function fmt(v: number | undefined, digits: number): string {
  return v === undefined ? '-' : v.toFixed(digits);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function avg(xs: number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}

function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

await main();
