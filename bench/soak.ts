/**
 * bench/soak — no false failover under load at a short TTL. For each engine (pgwarden, then Debian's
 * Patroni, identical configs): a 3-member cluster at ttl 5 / loop_wait 1 / retry_timeout 2, pgbench
 * writing to the primary and two busy-looping processes hogging both cores, for `--minutes`.
 * Prints the leader changes (timeline switches) seen, the right number being 0, and the daemons' RSS
 * (average of the three) when the load starts, at its end and at its highest, sampled every second: a
 * daemon that leaks shows it here.
 *
 *   node --import tsx bench/soak.ts [--minutes 10] [--only pgwarden|patroni] [--ttl 5 --loop-wait 1 --retry-timeout 2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findBinDir } from '../src/postgres/bin.js';
import { member, startLocalEtcd, startMember, type LocalState } from '../src/local/cluster.js';
import { fetchCluster } from '../src/local/run.js';
import { avg, clock, commonOptions, enginesFrom, healthy, leaderIn, log, memoryOf, newCluster, tableRow, teardown, timingFrom, type Engine } from './lib.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    ...commonOptions({ ttl: 5, loopWait: 1, retryTimeout: 2 }),
  },
});

const bin = findBinDir();

const timing = timingFrom(args);

interface Soaked {
  engine: Engine;
  changes: number;
  tps: number;
  /** Daemon RSS (MB, the members' average) as the load starts, as it ends, and the highest sample. */
  rss: { start: number; end: number; max: number };
}

async function main(): Promise<void> {
  const out: Soaked[] = [];
  for (const e of enginesFrom(args.only)) out.push(await soak(e));
  const widths = [10, 16, 14, 16, 14, 14];
  log('\n' + tableRow(['engine', 'leader changes', 'pgbench tps', 'RSS start (MB)', 'RSS end (MB)', 'RSS max (MB)'], widths));
  for (const o of out) {
    log(tableRow([o.engine, String(o.changes), o.tps.toFixed(0), o.rss.start.toFixed(1), o.rss.end.toFixed(1), o.rss.max.toFixed(1)], widths));
  }
}

/** The average RSS (MB) of the member daemons still running. */
function daemonsRss(state: LocalState): number {
  const rss = state.members.flatMap((m) => {
    try {
      return m.pid ? [memoryOf(m.pid).rssMB] : [];
    } catch {
      return []; // gone: the leader changes say what happened
    }
  });
  return rss.length ? avg(rss) : NaN;
}

async function soak(engine: Engine): Promise<Soaked> {
  const { dir, state } = await newCluster(engine, timing, 'pgwarden-soak');
  const children: ChildProcess[] = [];
  try {
    await startLocalEtcd(state);
    for (const m of state.members) startMember(state, m.name);
    const leader = leaderIn(await healthy(state, 300_000, 500))!;
    log(`${engine}: healthy, leader ${leader}; soaking ${args.minutes} min under pgbench + CPU hogs`);
    const secs = Math.round(Number(args.minutes) * 60);
    await pgbench(state, leader, ['-i', '-s', '5', '-q']);
    const bench = pgbenchChild(state, leader, ['-c', '4', '-j', '2', '-T', String(secs), '-n']);
    children.push(bench.child);
    for (let i = 0; i < 2; i++) {
      children.push(spawn('timeout', [String(secs), process.execPath, '-e', 'for(;;){}'], { stdio: 'ignore' }));
    }
    const start = daemonsRss(state);
    const rss = { start, end: NaN, max: start };
    const timelines = new Set<number>();
    const leaders = new Set<string>([leader]);
    const end = clock.now() + secs * 1000;
    while (clock.now() < end) {
      const c = await fetchCluster(state);
      for (const m of c?.members ?? []) {
        if (m.role === 'leader') leaders.add(m.name);
        if (typeof m.timeline === 'number') timelines.add(m.timeline);
      }
      rss.max = Math.max(rss.max, daemonsRss(state));
      await clock.sleep(1000);
    }
    rss.end = daemonsRss(state);
    rss.max = Math.max(rss.max, rss.end);
    const tps = await bench.tps;
    const changes = Math.max(timelines.size - 1, leaders.size - 1);
    log(`${engine}: leader changes ${changes} (leaders seen: ${[...leaders].join(', ')}), pgbench ${tps.toFixed(0)} tps, daemon RSS ${rss.start.toFixed(1)} -> ${rss.end.toFixed(1)} MB (max ${rss.max.toFixed(1)})`);
    return { engine, changes, tps, rss };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await teardown(dir);
  }
}

function pgbenchEnv(state: LocalState): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: state.superuser.password, PGUSER: state.superuser.username, PGHOST: '127.0.0.1' };
}

function pgbench(state: LocalState, name: string, extra: string[]): Promise<void> {
  const { child, tps } = pgbenchChild(state, name, extra);
  void child;
  return tps.then(() => undefined);
}

function pgbenchChild(state: LocalState, name: string, extra: string[]): { child: ChildProcess; tps: Promise<number> } {
  const child = spawn(join(bin, 'pgbench'), ['-p', String(member(state, name).pgPort), ...extra, 'postgres'], { env: pgbenchEnv(state), stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const tps = new Promise<number>((resolve) =>
    child.on('close', () => resolve(Number(/tps = ([\d.]+)/.exec(text)?.[1] ?? 0))),
  );
  return { child, tps };
}

await main();
