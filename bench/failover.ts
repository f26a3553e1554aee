/**
 * bench/failover — the same 3-member cluster (identical Patroni-format configs, same etcd, same machine)
 * run by pgwarden and by Debian's Patroni, one after the other in one invocation. Measures:
 *   bootstrap time · kill -9 of the primary: longest write gap of a client committing every ~20 ms,
 *   time to a new primary, acknowledged rows lost, time for the old primary to rejoin · daemon RSS and
 *   CPU at idle. Prints both and their ratios (pgwarden / Patroni; lower is better for every row).
 *
 *   node --import tsx bench/failover.ts [--ttl 20 --loop-wait 1 --retry-timeout 3] [--only pgwarden|patroni] [--idle 30]
 *                                       [--bootstrap-runs 3] [--failover-runs 1]
 *
 * Bootstrap time is the median of --bootstrap-runs fresh clusters per engine (it varies run to run by more
 * than the settings change it). A cluster that never gets healthy is counted and printed with its daemons'
 * last log lines, and another is bootstrapped instead (a third failure ends the bench). The failover part
 * runs on the last cluster: --failover-runs rounds of
 * kill -9 and rejoin, whose medians are printed (where in the lease a kill lands varies the gap by up to
 * loop_wait). Idle usage is measured right after bootstrap and again after the rounds.
 *
 * A script, not a test: it asserts nothing and its numbers are printed, not compared to thresholds.
 */
import { parseArgs } from 'node:util';
import { postmasterPid, signalMember, startMember, type LocalState } from '../src/local/cluster.js';
import { waitForExit } from '../src/util/proc.js';
import {
  GapWriter,
  bootstrap,
  clock,
  commonOptions,
  enginesFrom,
  fmt,
  healthy,
  idleUsage,
  leaderName,
  log,
  median,
  newCluster,
  sql,
  tableRow,
  teardown,
  timingFrom,
  waitForPrimary,
  waitUntil,
  usageLine,
  type Engine,
  type Usage,
} from './lib.js';

interface Round {
  writeGapS: number;
  newPrimaryS: number;
  lostRows: number;
  rejoinS: number;
}

interface Result {
  bootstrapS: number;
  /** Bootstraps that did not get healthy within bench/lib's bound (each printed with the daemons' last log lines). */
  bootstrapFailures: number;
  /** Medians over the failover rounds (lost rows: the sum). */
  writeGapS: number;
  newPrimaryS: number;
  lostRows: number;
  rejoinS: number;
  rounds: Round[];
  /** Idle right after bootstrap, and again after the failover rounds (a member that has been through failovers). */
  fresh: Usage;
  settled: Usage;
}

const { values: args } = parseArgs({
  options: {
    ...commonOptions({ ttl: 20, loopWait: 1, retryTimeout: 3 }),
    idle: { type: 'string', default: '30' },
    'bootstrap-runs': { type: 'string', default: '3' },
    'failover-runs': { type: 'string', default: '1' },
  },
});

const timing = timingFrom(args);
const bootstrapRuns = Number(args['bootstrap-runs']);
if (!Number.isInteger(bootstrapRuns) || bootstrapRuns < 1) {
  process.stderr.write(`--bootstrap-runs must be a whole number of at least 1, not ${JSON.stringify(args['bootstrap-runs'])}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const engines = enginesFrom(args.only);
  const results = new Map<Engine, Result>();
  for (const engine of engines) {
    log(`\n=== ${engine} (ttl ${timing.ttl}, loop_wait ${timing.loopWait}, retry_timeout ${timing.retryTimeout}) ===`);
    results.set(engine, await runOne(engine));
  }
  printTable(results);
}

/** Bootstraps that never got healthy are counted and printed, up to this many; one more ends the bench. */
const MAX_BOOTSTRAP_FAILURES = 2;

interface Bootstraps {
  seconds: number[];
  failures: number;
}

/** Fresh clusters until --bootstrap-runs of them got healthy; the failover part runs on the last one. */
async function runOne(engine: Engine): Promise<Result> {
  const bootstraps: Bootstraps = { seconds: [], failures: 0 };
  for (;;) {
    const { dir, state } = await newCluster(engine, timing);
    try {
      const ok = await countedBootstrap(state, bootstraps);
      if (ok && bootstraps.seconds.length >= bootstrapRuns) return await failoverRun(state, bootstraps);
    } finally {
      await teardown(dir);
    }
  }
}

/** Bootstrap `state`'s cluster; one that does not get healthy is a result too (what it said is printed), not the end of the bench. */
async function countedBootstrap(state: LocalState, bootstraps: Bootstraps): Promise<boolean> {
  try {
    bootstraps.seconds.push(await bootstrap(state));
    return true;
  } catch (e) {
    bootstraps.failures++;
    log(`bootstrap failed: ${e instanceof Error ? e.message : String(e)}`);
    if (bootstraps.failures > MAX_BOOTSTRAP_FAILURES) throw new Error(`${bootstraps.failures} bootstraps failed: giving up`);
    return false;
  }
}

/** On a bootstrapped cluster: idle usage, the failover rounds, idle usage again. */
async function failoverRun(state: LocalState, bootstraps: Bootstraps): Promise<Result> {
  const fresh = await idleUsage(state, Number(args.idle) * 1000);
  log(`idle after bootstrap: ${usageLine(fresh)}`);

  const rounds: Round[] = [];
  const n = Number(args['failover-runs']);
  for (let i = 1; i <= n; i++) {
    log(`-- failover ${i} of ${n}`);
    rounds.push(await failoverRound(state));
  }
  const settled = await idleUsage(state, Number(args.idle) * 1000);
  log(`idle after the failovers: ${usageLine(settled)}`);
  const med = (k: keyof Round) => median(rounds.map((r) => r[k]));
  return {
    bootstrapS: median(bootstraps.seconds),
    bootstrapFailures: bootstraps.failures,
    writeGapS: med('writeGapS'),
    newPrimaryS: med('newPrimaryS'),
    lostRows: rounds.reduce((sum, r) => sum + r.lostRows, 0),
    rejoinS: med('rejoinS'),
    rounds,
    fresh,
    settled,
  };
}

/** kill -9 of the primary's daemon and postmaster under a writer; then the old primary is started again. */
async function failoverRound(state: LocalState): Promise<Round> {
  const leader = await leaderName(state);
  await sql(state, leader, 'CREATE TABLE IF NOT EXISTS bench(id int PRIMARY KEY, at timestamptz DEFAULT now())');
  const writer = new GapWriter(state);
  const writing = writer.run(240_000);
  await clock.sleep(3000);
  const killedAt = clock.now();
  await kill9(state, leader);
  // What each replica holds once the primary is gone, before any promotion: a lost row that one of them
  // had would be a wrong election; one that none had was acknowledged but never streamed.
  const heldAtKill = await replicaMaxIds(state, leader);
  const next = await waitForPrimary(state, leader, 180_000);
  const newPrimaryS = (clock.now() - killedAt) / 1000;
  log(`new primary ${next} after ${newPrimaryS.toFixed(1)} s`);
  await waitUntil(() => writer.lastOkAt > clock.now() - 1000 && writer.okAfter(killedAt) >= 50, 60_000);
  writer.stop();
  await writing;
  const present = new Set((await sql<{ id: number }>(state, next, 'SELECT id FROM bench')).map((r) => r.id));
  const lost = writer.acked.filter((id) => !present.has(id));
  log(`longest write gap ${(writer.maxGapMs / 1000).toFixed(2)} s, acknowledged rows lost: ${lost.length}`);
  if (lost.length > 0) {
    const held = [...heldAtKill].map(([n, max]) => `${n} up to ${max}`).join(', ');
    const onAReplica = lost.filter((id) => [...heldAtKill.values()].some((max) => max >= id));
    log(`lost rows ${lost.join(', ')}; at the kill the replicas held rows ${held}: ${onAReplica.length ? `rows ${onAReplica.join(', ')} were on a replica (a wrong election)` : 'none had them (acknowledged by the primary, never streamed)'}`);
  }
  await sql(state, next, 'TRUNCATE bench');

  const r0 = clock.now();
  startMember(state, leader);
  await healthy(state, 300_000);
  const rejoinS = (clock.now() - r0) / 1000;
  log(`old primary rejoined after ${rejoinS.toFixed(1)} s`);
  return { writeGapS: writer.maxGapMs / 1000, newPrimaryS, lostRows: lost.length, rejoinS };
}

/** The highest row id each member other than `old` holds (replayed), by member name. */
async function replicaMaxIds(state: LocalState, old: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of state.members) {
    if (m.name === old) continue;
    const r = await sql<{ m: number }>(state, m.name, 'SELECT coalesce(max(id), 0) AS m FROM bench').catch(() => []);
    out.set(m.name, Number(r[0]?.m ?? -1));
  }
  return out;
}

async function kill9(state: LocalState, name: string): Promise<void> {
  const pm = postmasterPid(state, name);
  await signalMember(state, name, 'SIGKILL', 10_000);
  if (pm) {
    process.kill(pm, 'SIGKILL');
    await waitForExit(pm, 10_000);
  }
}

function printTable(results: Map<Engine, Result>): void {
  const rows: Array<[string, (r: Result) => number, number]> = [
    ['bootstrap of 3 members, median (s)', (r) => r.bootstrapS, 1],
    ['bootstraps that never got healthy', (r) => r.bootstrapFailures, 0],
    ['failover: longest write gap, median (s)', (r) => r.writeGapS, 2],
    ['failover: time to new primary, median (s)', (r) => r.newPrimaryS, 2],
    ['failover: acknowledged rows lost, all rounds', (r) => r.lostRows, 0],
    ['old primary rejoin, median (s)', (r) => r.rejoinS, 1],
    ['daemon RSS, idle after bootstrap (MB)', (r) => r.fresh.rssMB, 1],
    ['daemon RSS, idle after failovers (MB)', (r) => r.settled.rssMB, 1],
    ['daemon USS, idle after bootstrap (MB)', (r) => r.fresh.ussMB, 1],
    ['daemon USS, idle after failovers (MB)', (r) => r.settled.ussMB, 1],
    ['daemon PSS, idle after bootstrap (MB)', (r) => r.fresh.pssMB, 1],
    ['daemon PSS, idle after failovers (MB)', (r) => r.settled.pssMB, 1],
    ['daemon CPU, idle after bootstrap (%)', (r) => r.fresh.cpuPct, 2],
  ];
  const a = results.get('pgwarden');
  const b = results.get('patroni');
  const widths = [46, 12, 12, 10];
  log('\n' + tableRow(['metric', 'pgwarden', 'patroni', 'ratio'], widths));
  for (const [label, get, digits] of rows) {
    const x = a && get(a);
    const y = b && get(b);
    const ratio = x !== undefined && y ? (x / y).toFixed(2) : '-';
    log(tableRow([label, fmt(x, digits), fmt(y, digits), ratio], widths));
  }
  for (const [engine, r] of results) {
    if (r.rounds.length < 2) continue;
    const each = (k: keyof Round, d: number) => r.rounds.map((x) => x[k].toFixed(d)).join(' / ');
    log(`${engine} rounds: write gap ${each('writeGapS', 2)} s; new primary ${each('newPrimaryS', 2)} s; rejoin ${each('rejoinS', 1)} s; lost ${each('lostRows', 0)}`);
  }
}

await main();
