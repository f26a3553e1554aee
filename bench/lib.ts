/**
 * Shared pieces of the benchmarks: one engine-parameterised local cluster, a PostgreSQL client, bounded
 * waits, and the GapWriter (the "application" whose write gaps and acknowledged commits we measure).
 * Every wait here is bounded in time; nothing here asserts — the benchmarks print what they measured.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import pg from 'pg';
import type { ClusterJson } from '../src/api/cluster-json.js';
import { findBinDir } from '../src/postgres/bin.js';
import { createLocalCluster, member, startLocalEtcd, startMember, type LocalState } from '../src/local/cluster.js';
import { clusterProgress, fetchCluster, isHealthy, localDown, memberLogTails } from '../src/local/run.js';
import { systemClock as clock } from '../src/util/clock.js';

export { clock };

export type Engine = 'pgwarden' | 'patroni';

export interface Timing {
  ttl: number;
  loopWait: number;
  retryTimeout: number;
}

/** The options every bench takes: `--only` and the cluster's timing, with this bench's defaults. */
export function commonOptions(defaults: Timing) {
  return {
    only: { type: 'string' },
    ttl: { type: 'string', default: String(defaults.ttl) },
    'loop-wait': { type: 'string', default: String(defaults.loopWait) },
    'retry-timeout': { type: 'string', default: String(defaults.retryTimeout) },
  } as const;
}

/** The timing given by commonOptions' flags; anything but a positive number ends the bench with a line naming the flag. */
export function timingFrom(args: { ttl: string; 'loop-wait': string; 'retry-timeout': string }): Timing {
  const num = (flag: 'ttl' | 'loop-wait' | 'retry-timeout'): number => {
    const v = Number(args[flag]);
    if (v > 0) return v;
    process.stderr.write(`--${flag} must be a positive number of seconds, not ${JSON.stringify(args[flag])}\n`);
    process.exit(2);
  };
  return { ttl: num('ttl'), loopWait: num('loop-wait'), retryTimeout: num('retry-timeout') };
}

/** `--only pgwarden|patroni` → the engines to run, in the usual order (ours first). */
export function enginesFrom(only: string | undefined): Engine[] {
  if (only === undefined) return ['pgwarden', 'patroni'];
  if (only !== 'pgwarden' && only !== 'patroni') throw new Error(`--only must be pgwarden or patroni, not ${only}`);
  return [only];
}

/** A fresh, not yet started 3-member cluster of `engine` in a new temp dir (identical configs for both engines). */
export async function newCluster(engine: Engine, timing: Timing, prefix = 'pgwarden-bench'): Promise<{ dir: string; state: LocalState }> {
  const dir = mkdtempSync(`/tmp/${prefix}-${engine}-`);
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

/** Stop every daemon, orphaned postmaster and etcd of the cluster in `dir` (by PID), then remove the dir. */
export async function teardown(dir: string): Promise<void> {
  await localDown(dir, { info: () => undefined }).catch((e: unknown) => log(`teardown: ${String(e)}`));
  rmSync(dir, { recursive: true, force: true });
}

/** Poll `fn` every `everyMs` until it is true; throw after `ms`. */
export async function waitUntil(fn: () => boolean | Promise<boolean>, ms: number, what = 'condition', everyMs = 100): Promise<void> {
  const deadline = clock.now() + ms;
  while (!(await fn())) {
    if (clock.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await clock.sleep(everyMs);
  }
}

/** Wait until the cluster is healthy (src/local/run.ts isHealthy); returns the healthy view. */
export async function healthy(state: LocalState, ms: number, everyMs = 100): Promise<ClusterJson> {
  let view: ClusterJson | null = null;
  try {
    await waitUntil(
      async () => {
        view = await fetchCluster(state);
        return isHealthy(view, state.members.length);
      },
      ms,
      'a healthy cluster',
      everyMs,
    );
  } catch (e) {
    // The cluster's dir goes at teardown: what it last said and each daemon's last lines go with the error.
    const last = view ? clusterProgress(view, state.members.length) : 'no REST API answered';
    throw new Error(`${e instanceof Error ? e.message : String(e)}; last: ${last}\n${memberLogTails(state)}`);
  }
  return view!;
}

export function leaderIn(c: ClusterJson | null): string | null {
  return c?.members.find((m) => m.role === 'leader')?.name ?? null;
}

export async function leaderName(state: LocalState): Promise<string> {
  const l = leaderIn(await fetchCluster(state));
  if (!l) throw new Error('no leader');
  return l;
}

/** A client to one PostgreSQL port as the cluster's superuser; errors after connect are swallowed (callers see them on query). */
export function client(state: LocalState, port: number, timeout: number): pg.Client {
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

/** One statement on one member, on a connection of its own. */
export async function sql<T = Record<string, unknown>>(state: LocalState, name: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = client(state, member(state, name).pgPort, 3000);
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** A connection to whichever member is out of recovery right now, or null. */
export async function connectPrimary(state: LocalState): Promise<{ client: pg.Client; port: number } | null> {
  for (const m of state.members) {
    const c = client(state, m.pgPort, 1000);
    try {
      await c.connect();
      if ((await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === false) return { client: c, port: m.pgPort };
    } catch {
      // next
    }
    await c.end().catch(() => undefined);
  }
  return null;
}

/** Wait until a member other than `old` is out of recovery; returns its name. */
export async function waitForPrimary(state: LocalState, old: string, ms: number): Promise<string> {
  let found = '';
  await waitUntil(
    async () => {
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
    },
    ms,
    'a new primary',
  );
  return found;
}

/**
 * The application: commits one row into `table(id)` every ~20 ms on whichever member is primary,
 * reconnecting (to any member out of recovery) after every error. Records the acknowledged ids,
 * when each acknowledgement came and from which port, and the longest gap between two of them.
 */
export class GapWriter {
  readonly acked: number[] = [];
  maxGapMs = 0;
  lastOkAt = clock.now();
  private readonly okTimes: number[] = [];
  private readonly okPorts: number[] = [];
  private stopped = false;

  constructor(
    private readonly state: LocalState,
    private readonly table = 'bench',
  ) {}

  stop(): void {
    this.stopped = true;
  }

  /** Acknowledged commits after monotonic time `t` (optionally only those on PostgreSQL port `port`). */
  okAfter(t: number, port?: number): number {
    let n = 0;
    for (let i = 0; i < this.okTimes.length; i++) if (this.okTimes[i]! > t && (port === undefined || this.okPorts[i] === port)) n++;
    return n;
  }

  /** The first acknowledgement after `t` on `port`, or null. */
  firstOkAfter(t: number, port: number): number | null {
    for (let i = 0; i < this.okTimes.length; i++) if (this.okTimes[i]! > t && this.okPorts[i] === port) return this.okTimes[i]!;
    return null;
  }

  /**
   * The longest interval between two consecutive acknowledgements that overlaps [from, to] — the
   * write unavailability an application saw during that window (including the gap in progress at `from`).
   */
  longestGapIn(from: number, to: number): number {
    let max = 0;
    for (let i = 1; i < this.okTimes.length; i++) {
      const a = this.okTimes[i - 1]!;
      const b = this.okTimes[i]!;
      if (b > from && a < to) max = Math.max(max, b - a);
    }
    return max;
  }

  async run(maxMs: number): Promise<void> {
    const deadline = clock.now() + maxMs;
    let id = 1;
    let conn: { client: pg.Client; port: number } | null = null;
    while (!this.stopped && clock.now() < deadline) {
      try {
        conn ??= await connectPrimary(this.state);
        if (conn) {
          await conn.client.query(`INSERT INTO ${this.table}(id) VALUES ($1)`, [id]);
          const now = clock.now();
          this.maxGapMs = Math.max(this.maxGapMs, now - this.lastOkAt);
          this.lastOkAt = now;
          this.okTimes.push(now);
          this.okPorts.push(conn.port);
          this.acked.push(id);
          id++;
        }
      } catch {
        await conn?.client.end().catch(() => undefined);
        conn = null;
        id++;
      }
      await clock.sleep(20);
    }
    await conn?.client.end().catch(() => undefined);
  }
}

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function avg(xs: number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}

/** One line of a printed table: the first cell left-aligned, the others right-aligned, each to its width. */
export function tableRow(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('');
}

export function fmt(v: number | undefined, digits: number): string {
  return v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);
}

export function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

/** Start etcd, then every member at once: seconds from spawning the daemons to a healthy cluster. */
export async function bootstrap(state: LocalState): Promise<number> {
  await startLocalEtcd(state);
  const t0 = clock.now();
  for (const m of state.members) startMember(state, m.name);
  await healthy(state, 300_000);
  const s = (clock.now() - t0) / 1000;
  log(`bootstrap: ${s.toFixed(1)} s`);
  return s;
}

/** Memory of one process (MB): RSS, private memory (USS: Private_Clean + Private_Dirty) and PSS, from /proc. */
export interface Memory {
  rssMB: number;
  ussMB: number;
  pssMB: number;
}

export interface Usage extends Memory {
  cpuPct: number;
}

export function usageLine(u: Usage): string {
  return `${u.rssMB.toFixed(1)} MB RSS (${u.ussMB.toFixed(1)} private, ${u.pssMB.toFixed(1)} PSS) per daemon, ${u.cpuPct.toFixed(2)} % CPU per daemon`;
}

/**
 * RSS counts the interpreter's shared file pages (node's binary, python's libraries) in full for every
 * process; private memory is what a process costs on its own; PSS shares the rest among those mapping it.
 */
export function memoryOf(pid: number): Memory {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const mb = (...keys: string[]): number =>
    keys.reduce((sum, k) => sum + Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0), 0) / 1024;
  const rssMB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  return { rssMB, ussMB: mb('Private_Clean', 'Private_Dirty'), pssMB: mb('Pss') };
}

/** Average memory (memoryOf) and CPU (% of one core) of the member daemons over an idle window. */
export async function idleUsage(state: LocalState, ms: number): Promise<Usage> {
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
  const mem = pids.map(memoryOf);
  return { rssMB: avg(mem.map((m) => m.rssMB)), ussMB: avg(mem.map((m) => m.ussMB)), pssMB: avg(mem.map((m) => m.pssMB)), cpuPct: avg(cpu) };
}
