/** `pgwarden local up|status|down`: the one-machine cluster, with progress and a member table. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { clusterAsJson, type ClusterJson } from '../api/cluster-json.js';
import { renderTable } from '../ctl/table.js';
import type { Clock } from '../util/clock.js';
import { isSameProcess, waitForExit } from '../util/proc.js';
import {
  connString,
  createLocalCluster,
  loadState,
  postmasterPid,
  saveState,
  signalMember,
  startLocalEtcd,
  startMember,
  type LocalState,
} from './cluster.js';

export const DEFAULT_DIR = join(tmpdir(), 'pgwarden-local');

export interface Out {
  info(line: string): void;
}

/** Start (or restart) the cluster in `dir` and wait until a leader and n-1 streaming replicas run. */
export async function localUp(opts: { dir: string; members: number; timeoutMs: number; clock: Clock; out: Out }): Promise<LocalState> {
  const dir = resolve(opts.dir);
  const state = existsSync(join(dir, 'state.json'))
    ? loadState(dir)
    : await createLocalCluster({ dir, members: opts.members });
  opts.out.info(`cluster "${state.scope}" in ${dir}: starting etcd on 127.0.0.1:${state.etcd.clientPort}`);
  await startLocalEtcd(state);
  for (const m of state.members) {
    startMember(state, m.name);
    opts.out.info(`started ${m.name} (daemon pid ${m.pid}, PostgreSQL port ${m.pgPort}, REST http://127.0.0.1:${m.apiPort})`);
  }
  await waitHealthy(state, opts);
  return state;
}

/** Wait until the cluster has one leader and every other member streams from it; print progress. */
export async function waitHealthy(state: LocalState, opts: { timeoutMs: number; clock: Clock; out: Out }): Promise<ClusterJson> {
  const deadline = opts.clock.now() + opts.timeoutMs;
  let last = '';
  for (;;) {
    const c = await fetchCluster(state);
    const summary = c ? clusterProgress(c, state.members.length) : 'waiting for the REST API';
    if (c && summary === 'healthy') return c;
    if (summary !== last) opts.out.info(`… ${summary}`);
    last = summary;
    if (opts.clock.now() > deadline) {
      throw new Error(`cluster not healthy after ${opts.timeoutMs / 1000}s (${summary}); the logs are in ${state.dir}\n${memberLogTails(state)}`);
    }
    await opts.clock.sleep(500);
  }
}

/** 'healthy' when one leader runs and every other of the `n` members runs as a replica with a known lag; else what is missing. */
export function clusterProgress(c: ClusterJson, n: number): string {
  const leaders = c.members.filter((m) => m.role === 'leader' && m.state === 'running');
  const replicas = c.members.filter((m) => m.role !== 'leader' && m.state === 'running' && typeof m.lag === 'number');
  if (leaders.length === 1 && replicas.length === n - 1) return 'healthy';
  const states = c.members.map((m) => `${m.name}: ${m.role} ${m.state}`).join(', ');
  return `${leaders.length} leader, ${replicas.length}/${n - 1} replicas streaming (${states || 'no members yet'})`;
}

export function isHealthy(c: ClusterJson | null, n: number): boolean {
  return c !== null && clusterProgress(c, n) === 'healthy';
}

/** The last `lines` lines of each member's daemon log, for an error that must say where a cluster got stuck. */
export function memberLogTails(state: LocalState, lines = 12): string {
  return state.members
    .map((m) => {
      let text = '';
      try {
        text = readFileSync(m.logFile, 'utf8');
      } catch {
        // no log yet
      }
      const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
      return `--- ${m.name}, last lines of ${m.logFile}:\n${tail || '(empty)'}`;
    })
    .join('\n');
}

/** GET /cluster from the first member whose REST API answers. */
export async function fetchCluster(state: LocalState): Promise<ClusterJson | null> {
  for (const m of state.members) {
    try {
      const res = await fetch(`http://127.0.0.1:${m.apiPort}/cluster`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return (await res.json()) as ClusterJson;
    } catch {
      // try the next member
    }
  }
  return null;
}

export function memberTable(state: LocalState, c: ClusterJson | null): string {
  const byName = new Map((c?.members ?? []).map((m) => [m.name, m]));
  const rows = state.members.map((m) => {
    const j = byName.get(m.name);
    return [
      m.name,
      j?.role ?? '-',
      j?.state ?? 'not reachable',
      j?.timeline ?? '',
      j ? (j.role === 'leader' ? '' : String(j.lag ?? '')) : '',
      `http://127.0.0.1:${m.apiPort}`,
      connString(state, m),
    ];
  });
  return renderTable(['Member', 'Role', 'State', 'TL', 'Lag (bytes)', 'REST API', 'Connection'], rows, `Cluster: ${state.scope}`);
}

export async function localStatus(dir: string): Promise<string> {
  const state = loadState(dir);
  return memberTable(state, await fetchCluster(state));
}

/** Stop every daemon (they stop PostgreSQL cleanly), then etcd; by PID, and only our own processes. */
export async function localDown(dir: string, out: Out, opts: { daemonStopMs?: number } = {}): Promise<void> {
  const state = loadState(dir);
  const stopMs = opts.daemonStopMs ?? 90_000;
  await Promise.all(
    state.members.map(async (m) => {
      if (await signalMember(state, m.name, 'SIGTERM', stopMs)) out.info(`stopped ${m.name}`);
      // Still the daemon we started, still running: it would outlive `down`, which forgets its PID below.
      else if (await signalMember(state, m.name, 'SIGKILL', 10_000)) out.info(`killed ${m.name} (pid ${m.pid}): it had not stopped ${stopMs / 1000} s after SIGTERM`);
      const pm = postmasterPid(state, m.name);
      if (pm !== null) {
        // The daemon died earlier (e.g. kill -9) and left PostgreSQL running: stop it too.
        process.kill(pm, 'SIGINT');
        await waitForExit(pm, 60_000);
        out.info(`stopped the orphaned PostgreSQL of ${m.name} (pid ${pm})`);
      }
      m.pid = null;
      m.startTime = null;
    }),
  );
  const { pid, startTime } = state.etcd;
  if (pid && startTime && isSameProcess(pid, startTime)) {
    process.kill(pid, 'SIGTERM');
    await waitForExit(pid, 30_000);
    out.info('stopped etcd');
  }
  state.etcd.pid = null;
  state.etcd.startTime = null;
  saveState(state);
}
