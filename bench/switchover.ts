/**
 * bench/switchover — planned switchovers under a writing client, the same 3-member cluster (identical
 * Patroni-format configs, same machine) run by pgwarden and by Debian's Patroni, one after the other in one
 * invocation. Each round: `POST <leader>/switchover {"leader", "candidate"}` to the leader's REST API, then
 * wait until the candidate is primary and the old leader streams from it again. Measured per round:
 *   the longest gap between two acknowledged commits of a client committing every ~20 ms (the write
 *   unavailability an application sees) · time from the POST to the candidate being out of recovery
 *   (polled every 10 ms on a connection held open to the candidate) · whether the old leader ran pg_rewind
 *   (it should not: a planned switchover shuts the old primary down cleanly) — and at the end, acknowledged
 *   rows missing on the final primary (must be 0).
 * Prints per-round lines and a table with both engines and the ratio pgwarden / Patroni (lower is better).
 *
 *   node --import tsx bench/switchover.ts [--rounds 5] [--only pgwarden|patroni] [--ttl 20 --loop-wait 1 --retry-timeout 3]
 *
 * pgwarden members run from dist/ (bin/pgwarden): `npm run build` first. A script, not a test: it asserts
 * nothing. Every wait is bounded; the cluster is torn down (by PID) whatever happens.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import type { ClusterJson } from '../src/api/cluster-json.js';
import { member, startLocalEtcd, startMember, type LocalState } from '../src/local/cluster.js';
import { fetchCluster, isHealthy } from '../src/local/run.js';
import {
  GapWriter,
  client,
  clock,
  commonOptions,
  enginesFrom,
  fmt,
  healthy,
  leaderIn,
  log,
  median,
  newCluster,
  sql,
  tableRow,
  teardown,
  timingFrom,
  waitUntil,
  type Engine,
} from './lib.js';

interface Round {
  from: string;
  to: string;
  status: number;
  writeGapS: number;
  newPrimaryS: number;
  /** From the POST to the writer's first acknowledged commit on the new primary. */
  firstCommitS: number;
  /** From the POST to the candidate leading with every other member (the old leader too) streaming from it. */
  healthyS: number;
  rewinds: number;
}

interface Result {
  rounds: Round[];
  lostRows: number | null;
  acked: number;
  error?: string;
}

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    ...commonOptions({ ttl: 20, loopWait: 1, retryTimeout: 3 }),
  },
});

const timing = timingFrom(args);
const ROUNDS = Number(args.rounds);
/** The longest a single round may take, from waiting for a healthy cluster to the writer back on the new primary. */
const ROUND_MS = 180_000;

async function main(): Promise<void> {
  const engines = enginesFrom(args.only);
  if (!(ROUNDS >= 1 && ROUNDS <= 100)) throw new Error('--rounds must be between 1 and 100');
  const results = new Map<Engine, Result>();
  for (const engine of engines) {
    log(`\n=== ${engine}: ${ROUNDS} switchovers (ttl ${timing.ttl}, loop_wait ${timing.loopWait}, retry_timeout ${timing.retryTimeout}) ===`);
    results.set(engine, await runOne(engine));
  }
  printTable(results);
}

async function runOne(engine: Engine): Promise<Result> {
  const { dir, state } = await newCluster(engine, timing, 'pgwarden-switchover');
  const result: Result = { rounds: [], lostRows: null, acked: 0 };
  let writer: GapWriter | null = null;
  let writing: Promise<void> | null = null;
  let writerStart = clock.now();
  try {
    await startLocalEtcd(state);
    for (const m of state.members) startMember(state, m.name);
    const view = await healthy(state, 300_000);
    await sql(state, leaderIn(view)!, 'CREATE TABLE IF NOT EXISTS bench(id int PRIMARY KEY, at timestamptz DEFAULT now())');
    writer = new GapWriter(state);
    writerStart = clock.now();
    writing = writer.run(ROUNDS * ROUND_MS + 60_000);
    const w = writer;
    const t0 = clock.now();
    await waitUntil(() => w.okAfter(t0) >= 20, 30_000, 'the writer to commit');
    for (let i = 1; i <= ROUNDS; i++) {
      const r = await round(state, w);
      result.rounds.push(r);
      log(
        `round ${i}: ${r.from} → ${r.to} (HTTP ${r.status}): write gap ${r.writeGapS.toFixed(3)} s, new primary after ${r.newPrimaryS.toFixed(3)} s, ` +
          `first commit on it after ${r.firstCommitS.toFixed(3)} s, old leader streaming after ${r.healthyS.toFixed(2)} s, ` +
          `pg_rewind runs on the old leader: ${r.rewinds}`,
      );
    }
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
    log(`${engine}: stopped early: ${result.error}`);
  } finally {
    writer?.stop();
    await writing?.catch(() => undefined);
    if (writer) {
      result.acked = writer.acked.length;
      result.lostRows = await lostRows(state, writer).catch((e: unknown) => {
        log(`${engine}: could not count lost rows: ${String(e)}`);
        return null;
      });
      const secs = (clock.now() - writerStart) / 1000;
      log(`${engine}: ${result.acked} acknowledged commits in ${secs.toFixed(1)} s, ${result.lostRows ?? '?'} missing on the final primary`);
    }
    await teardown(dir);
  }
  return result;
}

/** Acknowledged ids missing on the primary of a healthy cluster. */
async function lostRows(state: LocalState, writer: GapWriter): Promise<number> {
  const primary = leaderIn(await healthy(state, 120_000))!;
  const present = new Set((await sql<{ id: number }>(state, primary, 'SELECT id FROM bench')).map((r) => r.id));
  return writer.acked.filter((id) => !present.has(id)).length;
}

async function round(state: LocalState, writer: GapWriter): Promise<Round> {
  const view = await healthy(state, ROUND_MS);
  const leader = leaderIn(view)!;
  await waitUntil(() => allStreaming(state, leader), 60_000, `replicas streaming from ${leader}`);
  const candidate = nextCandidate(state, view, leader);
  const rewindsBefore = rewindRuns(state, leader);
  const stopWatch = new AbortController();
  const promoted = promotionWatch(state, candidate, ROUND_MS, stopWatch.signal);
  promoted.catch(() => undefined);

  const postAt = clock.now();
  const res = await postSwitchover(state, leader, candidate).catch((e: unknown) => {
    stopWatch.abort();
    throw e;
  });
  if (res.status !== 200) log(`  POST /switchover answered ${res.status}: ${res.text.trim()}`);
  if (res.status >= 400 && res.status < 500) {
    stopWatch.abort();
    throw new Error(`switchover ${leader} → ${candidate} refused: ${res.status} ${res.text.trim()}`);
  }
  const promotedAt = await promoted;
  await waitUntil(
    async () => {
      const c = await fetchCluster(state);
      return leaderIn(c) === candidate && isHealthy(c, state.members.length) && (await allStreaming(state, candidate));
    },
    ROUND_MS,
    `${candidate} leading with ${leader} streaming from it`,
    50,
  );
  const healthyAt = clock.now();
  const port = member(state, candidate).pgPort;
  await waitUntil(() => writer.okAfter(promotedAt, port) >= 10, 30_000, `the writer committing on ${candidate}`);
  const endAt = clock.now();
  const rewinds = rewindRuns(state, leader) - rewindsBefore;
  if (rewinds > 0) log(`  ${leader} ran pg_rewind: ${rewindLines(state, leader).slice(-rewinds).join(' | ')}`);
  return {
    from: leader,
    to: candidate,
    status: res.status,
    writeGapS: writer.longestGapIn(postAt, endAt) / 1000,
    newPrimaryS: (promotedAt - postAt) / 1000,
    firstCommitS: ((writer.firstOkAfter(postAt, port) ?? endAt) - postAt) / 1000,
    healthyS: (healthyAt - postAt) / 1000,
    rewinds,
  };
}

/** The healthy replica that follows `leader` in member order (cyclic), so that the rounds visit every member. */
function nextCandidate(state: LocalState, view: ClusterJson, leader: string): string {
  const ok = new Set(view.members.filter((m) => m.role !== 'leader' && m.state === 'running' && typeof m.lag === 'number').map((m) => m.name));
  const names = state.members.map((m) => m.name);
  const at = names.indexOf(leader);
  for (let i = 1; i < names.length; i++) {
    const name = names[(at + i) % names.length]!;
    if (ok.has(name)) return name;
  }
  throw new Error(`no healthy replica to switch over to from ${leader}`);
}

/** POST /switchover to `leader`'s REST API, with Basic auth when the member config asks for it. */
async function postSwitchover(state: LocalState, leader: string, candidate: string): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...authHeader(state, leader) };
  const res = await fetch(`http://127.0.0.1:${member(state, leader).apiPort}/switchover`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ leader, candidate }),
    signal: AbortSignal.timeout(90_000),
  });
  return { status: res.status, text: await res.text() };
}

function authHeader(state: LocalState, name: string): Record<string, string> {
  const cfg = parse(readFileSync(member(state, name).configFile, 'utf8')) as { restapi?: { authentication?: { username: string; password: string } } };
  const a = cfg.restapi?.authentication;
  return a ? { Authorization: `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}` } : {};
}

/**
 * Resolves with the monotonic time at which `name` was first seen out of recovery, polling every 10 ms on
 * one connection held open across the promotion (a promotion keeps client connections); reconnects if it drops.
 */
async function promotionWatch(state: LocalState, name: string, ms: number, signal: AbortSignal): Promise<number> {
  const deadline = clock.now() + ms;
  let c: ReturnType<typeof client> | null = null;
  try {
    while (clock.now() < deadline && !signal.aborted) {
      try {
        if (!c) {
          c = client(state, member(state, name).pgPort, 1000);
          await c.connect();
        }
        if ((await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === false) return clock.now();
      } catch {
        await c?.end().catch(() => undefined);
        c = null;
      }
      await clock.sleep(10);
    }
    throw new Error(signal.aborted ? 'promotion watch cancelled' : `${name} was not promoted within ${ms / 1000} s`);
  } finally {
    await c?.end().catch(() => undefined);
  }
}

/** Every other member streams from `leader` (pg_stat_replication on it). */
async function allStreaming(state: LocalState, leader: string): Promise<boolean> {
  try {
    const rows = await sql<{ n: number }>(state, leader, "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'");
    return rows[0]?.n === state.members.length - 1;
  } catch {
    return false;
  }
}

/** Lines of a member's daemon log that say pg_rewind was started (pgwarden: JSON "running pg_rewind"; Patroni: "running pg_rewind from …"). */
function rewindLines(state: LocalState, name: string): string[] {
  let text = '';
  try {
    text = readFileSync(member(state, name).logFile, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l.includes('running pg_rewind'));
}

function rewindRuns(state: LocalState, name: string): number {
  return rewindLines(state, name).length;
}

function summary(r: Result): Record<string, number | undefined> {
  const gaps = r.rounds.map((x) => x.writeGapS);
  return {
    rounds: r.rounds.length,
    medianGap: gaps.length ? median(gaps) : undefined,
    maxGap: gaps.length ? Math.max(...gaps) : undefined,
    medianNewPrimary: r.rounds.length ? median(r.rounds.map((x) => x.newPrimaryS)) : undefined,
    medianFirstCommit: r.rounds.length ? median(r.rounds.map((x) => x.firstCommitS)) : undefined,
    medianHealthy: r.rounds.length ? median(r.rounds.map((x) => x.healthyS)) : undefined,
    lost: r.lostRows ?? undefined,
    rewinds: r.rounds.reduce((s, x) => s + x.rewinds, 0),
  };
}

function printTable(results: Map<Engine, Result>): void {
  const rows: Array<[string, string, number, boolean]> = [
    ['switchovers completed', 'rounds', 0, false],
    ['longest write gap, median (s)', 'medianGap', 3, true],
    ['longest write gap, max (s)', 'maxGap', 3, true],
    ['POST to new primary, median (s)', 'medianNewPrimary', 3, true],
    ['POST to first commit on it, median (s)', 'medianFirstCommit', 3, true],
    ['POST to old leader streaming, median (s)', 'medianHealthy', 2, true],
    ['acknowledged rows lost', 'lost', 0, false],
    ['pg_rewind runs on the old leader', 'rewinds', 0, false],
  ];
  const a = results.get('pgwarden');
  const b = results.get('patroni');
  const sa = a ? summary(a) : {};
  const sb = b ? summary(b) : {};
  const widths = [40, 12, 12, 10];
  log('\n' + tableRow(['metric', 'pgwarden', 'patroni', 'ratio'], widths));
  for (const [label, key, digits, ratio] of rows) {
    const x = sa[key];
    const y = sb[key];
    const r = ratio && x !== undefined && y ? (x / y).toFixed(2) : '-';
    log(tableRow([label, fmt(x, digits), fmt(y, digits), r], widths));
  }
  for (const [engine, r] of results) if (r.error) log(`${engine} stopped early: ${r.error}`);
}

await main();
