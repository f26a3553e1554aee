/**
 * Three (or more) HaLoops on one in-memory store with fake PostgreSQL servers and a fake clock, driven
 * tick by tick: the component harness of the HA loop's unit tests. Peers' REST calls reach the other
 * loops directly (GET /patroni from their views, POST /failsafe through the real route handler).
 */
import { route } from '../../src/api/routes.js';
import type { ApiBackend } from '../../src/api/types.js';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import { MemoryBackend, MemoryStore } from '../../src/dcs/memory.js';
import type { FailsafePoster } from '../../src/ha/failsafe.js';
import { HaLoop } from '../../src/ha/loop.js';
import type { HaDecision } from '../../src/ha/types.js';
import type { Clock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/log.js';
import { testDaemonConfig } from './config.js';
import { FakePostgres, type FakeCluster } from './fake-postgres.js';

/** A clock the test moves by hand; sleeping takes no time. */
export class FakeClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  wallNow(): Date {
    return new Date(this.t);
  }
  async sleep(): Promise<void> {}
}

export interface WorldNode {
  name: string;
  loop: HaLoop;
  pg: FakePostgres;
  store: MemoryStore;
  /** false: the member's daemon is gone (its loop does not tick, its REST API does not answer). */
  alive: boolean;
  api: ApiBackend;
}

export interface World {
  clock: FakeClock;
  backend: MemoryBackend;
  nodes: WorldNode[];
  /** `n` rounds: every live member ticks once (in `order`), then the clock moves one second. */
  round(n?: number, order?: WorldNode[]): Promise<Record<string, HaDecision>>;
  /** The leader key's holder, read through the first member's store. */
  leaderKey(): Promise<string | null>;
  /** Members whose fake PostgreSQL runs as a primary. */
  primaries(): string[];
}

/** `ttl` (s) and extra dynamic settings go into bootstrap.dcs (loop_wait 1, retry_timeout 3, use_pg_rewind). */
export function haWorld(opts: { ttl: number; names?: string[]; dcs?: Record<string, unknown> }): World {
  const clock = new FakeClock();
  const backend = new MemoryBackend(clock);
  const pgWorld: FakeCluster = { sysid: '7000', instances: new Map() };
  const nodes: WorldNode[] = [];
  const names = opts.names ?? ['m1', 'm2', 'm3'];
  const bootstrapDcs = { ttl: opts.ttl, loop_wait: 1, retry_timeout: 3, ...opts.dcs, postgresql: { use_pg_rewind: true } };
  const byUrl = (url: string): WorldNode | undefined => nodes.find((n) => url.includes(`:${8001 + names.indexOf(n.name)}/`));
  const postFailsafe: FailsafePoster = async (url, data) => {
    const peer = byUrl(url);
    if (!peer?.alive) return { ok: false, detail: 'connect ECONNREFUSED' };
    const res = await route({ method: 'POST', path: '/failsafe', query: new URLSearchParams(), headers: {}, body: JSON.stringify(data) }, peer.api);
    return { ok: res.status === 200 && res.text === 'Accepted', detail: `${res.status} ${res.text ?? JSON.stringify(res.body)}` };
  };
  for (const [i, name] of names.entries()) {
    const port = 5001 + i;
    const config = testDaemonConfig({ name, port, restPort: 8001 + i, dataDir: `/d/${name}`, bootstrap: { dcs: bootstrapDcs } });
    const pg = new FakePostgres(name, port, pgWorld);
    const store = new MemoryStore(backend, name, opts.ttl);
    const loop = new HaLoop({
      config,
      store,
      pg,
      clock,
      log: silentLogger(),
      version: '0.1.0',
      dynamicFrom: (stored) => effectiveDynamicConfig(stored, bootstrapDcs).dynamic,
      fetchPeer: async (url) => {
        const peer = byUrl(url);
        if (!peer?.alive) return null;
        const o = await peer.pg.observe();
        return { state: peer.loop.view.state, role: peer.loop.view.role, xlog: { location: o.walPosition } };
      },
      postFailsafe,
    });
    const api: ApiBackend = {
      view: () => ({ ...loop.view, name, scope: 'demo', version: '0.1.0', config, paused: false, failsafeActive: loop.failsafe.isActive() }),
      loadCluster: () => store.load(),
      now: () => clock.now(),
      acceptFailsafe: (l) => loop.failsafe.receive(l),
      failsafeTopology: () => loop.failsafe.topology(),
    };
    nodes.push({ name, loop, pg, store, alive: true, api });
  }
  const flush = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  return {
    clock,
    backend,
    nodes,
    async round(n = 1, order = nodes) {
      const out: Record<string, HaDecision> = {};
      for (let k = 0; k < n; k++) {
        for (const node of order) if (node.alive) out[node.name] = await node.loop.tick();
        await flush();
        clock.t += 1000;
      }
      return out;
    },
    leaderKey: async () => (await nodes[0]!.store.load()).leader?.name ?? null,
    primaries: () => nodes.filter((n) => n.pg.running && !n.pg.inRecovery).map((n) => n.name),
  };
}
