/**
 * End-to-end helpers: a real local cluster (etcd + N daemons + PostgreSQL) in a temp dir, torn down
 * (by PID) and removed after the test, whatever happened.
 */
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { ClusterJson, ClusterMemberJson } from '../../src/api/cluster-json.js';
import {
  createLocalCluster,
  member,
  postmasterPid,
  signalMember,
  startLocalEtcd,
  startMember,
  type CreateOptions,
  type LocalState,
} from '../../src/local/cluster.js';
import { fetchCluster, isHealthy, localDown, memberLogTails } from '../../src/local/run.js';
import type { EtcdProcess } from '../../src/local/etcd.js';
import { systemClock } from '../../src/util/clock.js';
import { waitForExit } from '../../src/util/proc.js';

export interface TestCluster {
  state: LocalState;
  etcd: EtcdProcess;
  /** Tear down: every daemon, orphaned postmaster and etcd, then the temp dir. */
  destroy(): Promise<void>;
}

export async function startTestCluster(opts: Omit<CreateOptions, 'dir'> & { dir?: string }): Promise<TestCluster> {
  const dir = opts.dir ?? mkdtempSync('/tmp/pgwarden-e2e-');
  const state = await createLocalCluster({ ttl: 10, loopWait: 1, retryTimeout: 3, ...opts, dir });
  const etcd = await startLocalEtcd(state);
  for (const m of state.members) startMember(state, m.name);
  return {
    state,
    etcd,
    async destroy() {
      const quiet = { info: () => undefined };
      await localDown(dir, quiet).catch((e: unknown) => console.error('teardown:', e));
      if (process.env.PGWARDEN_KEEP_TEST_DIR) {
        console.error(`kept ${dir}`);
        return;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Poll `fn` until it returns a non-null value; fail with `what` and the last value after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = systemClock.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== null && v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (systemClock.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${describe(last)})`);
    await systemClock.sleep(200);
  }
}

function describe(v: unknown): string {
  if (v instanceof Error) return v.message;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

export async function clusterView(state: LocalState): Promise<ClusterJson | null> {
  return fetchCluster(state);
}

/** A healthy cluster: one running leader and every other member running with a known lag. */
export async function waitHealthy(state: LocalState, timeoutMs = 120_000, expectMembers = state.members.length): Promise<ClusterJson> {
  let last: ClusterJson | null = null;
  try {
    return await waitFor('a leader and streaming replicas', timeoutMs, async () => {
      last = await fetchCluster(state);
      return isHealthy(last, expectMembers) ? last : null;
    });
  } catch (e) {
    // The cluster's dir goes with the test: what it last said and each daemon's last lines go with the error.
    throw new Error([e instanceof Error ? e.message : String(e), `last /cluster: ${JSON.stringify(last)}`, memberLogTails(state)].join('\n'));
  }
}

export function leaderOf(c: ClusterJson): ClusterMemberJson {
  const l = c.members.find((m) => m.role === 'leader');
  if (!l) throw new Error('no leader');
  return l;
}

export async function withClient<T>(state: LocalState, name: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const m = member(state, name);
  const client = new pg.Client({
    host: '127.0.0.1',
    port: m.pgPort,
    user: state.superuser.username,
    password: state.superuser.password,
    database: 'postgres',
    connectionTimeoutMillis: 3000,
    statement_timeout: 10_000,
  });
  // A server going away mid-query also emits 'error' on the client (the query itself rejects): without a
  // listener that second report would crash the test run.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function query<T = Record<string, unknown>>(state: LocalState, name: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return withClient(state, name, async (c) => (await c.query(sql, params)).rows as T[]);
}

export async function isInRecovery(state: LocalState, name: string): Promise<boolean | null> {
  try {
    const rows = await query<{ r: boolean }>(state, name, 'SELECT pg_is_in_recovery() AS r');
    return rows[0]?.r ?? null;
  } catch {
    return null;
  }
}

/** kill -9 a member's daemon and its postmaster (a crashed machine, from PostgreSQL's point of view). */
export async function killMember(state: LocalState, name: string): Promise<void> {
  const pm = postmasterPid(state, name);
  await signalMember(state, name, 'SIGKILL', 10_000);
  if (pm !== null) {
    process.kill(pm, 'SIGKILL');
    await waitForExit(pm, 10_000);
  }
}

export function restartMember(state: LocalState, name: string): void {
  startMember(state, name);
}

/**
 * A writer that inserts one row every ~20 ms into `acked(id)` on whichever member is primary and
 * records the ids whose COMMIT was acknowledged. Bounded: stops after `maxMs` or when stopped.
 */
export class Writer {
  readonly acked: number[] = [];
  errors = 0;
  /** Monotonic ms (systemClock) when the last COMMIT was acknowledged (0: none yet). */
  lastAckAt = 0;
  private stopped = false;
  private done: Promise<void> | null = null;

  constructor(
    private readonly state: LocalState,
    private readonly maxMs = 120_000,
  ) {}

  start(): void {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async run(): Promise<void> {
    const deadline = systemClock.now() + this.maxMs;
    let next = 1;
    let client: pg.Client | null = null;
    while (!this.stopped && systemClock.now() < deadline) {
      try {
        client ??= await this.connectPrimary();
        if (!client) {
          await systemClock.sleep(50);
          continue;
        }
        const id = next++;
        await client.query('INSERT INTO acked(id) VALUES ($1)', [id]);
        this.acked.push(id);
        this.lastAckAt = systemClock.now();
      } catch {
        this.errors++;
        await client?.end().catch(() => undefined);
        client = null;
      }
      await systemClock.sleep(20);
    }
    await client?.end().catch(() => undefined);
  }

  private async connectPrimary(): Promise<pg.Client | null> {
    for (const m of this.state.members) {
      const c = new pg.Client({
        host: '127.0.0.1',
        port: m.pgPort,
        user: this.state.superuser.username,
        password: this.state.superuser.password,
        database: 'postgres',
        connectionTimeoutMillis: 1000,
        statement_timeout: 5000,
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const r = await c.query('SELECT pg_is_in_recovery() AS r');
        if (r.rows[0]?.r === false) return c;
      } catch {
        // not this one
      }
      await c.end().catch(() => undefined);
    }
    return null;
  }
}

export function memberLog(state: LocalState, name: string): string {
  const f = member(state, name).logFile;
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

export { join };
