/**
 * Failsafe mode, as Patroni 3.0 (`failsafe_mode`; ha.py `Failsafe`, `_handle_dcs_error`,
 * `check_failsafe_topology`, `update_failsafe`; dcs `failsafe` key):
 *
 * - While the store works, the leader keeps the `failsafe` key equal to the members it counts on
 *   (name → api_url, itself included).
 * - When the store fails, a running primary POSTs its own data to every other member of that topology.
 *   Only if every one answers `200 Accepted` does it keep running as primary; else it demotes in time.
 * - A replica that receives the POST remembers the sender as the leader for ttl: while it does, a
 *   cluster without a leader key reads as led by that member (it follows it, it never races), and a
 *   member missing from a non-empty topology never races.
 *
 * Why that is safe: a member remembers us for ttl from when it *received* our POST, which is after we
 * sent it, so nobody in the topology races before `sentAt + ttl`; a member outside the topology never
 * races. A primary acknowledged by everybody may therefore accept writes until then — the lease guard
 * uses the later of that time and the session's (see `validUntil`).
 *
 * The pure rules (withFailsafeLeader, failsafeRaceBlock, needsFailsafeCheck, failsafeTopology) are used
 * by decide.ts and the loop; the Failsafe class holds the state shared by the loop and the REST API.
 */
import type { Cluster, FailsafeLeader, FailsafeTopology, Member } from '../dcs/types.js';
import type { Clock } from '../util/clock.js';
import type { FailsafeObservation, HaObservation } from './types.js';

/** Patroni's call_failsafe_member: `timeout=2`. */
export const FAILSAFE_POST_TIMEOUT_MS = 2000;

/** POST /failsafe to one member: ok only for `200 Accepted`; `detail` says what happened otherwise. */
export type FailsafePoster = (apiUrl: string, data: FailsafeLeader, timeoutMs: number) => Promise<{ ok: boolean; detail: string }>;

// ---------------------------------------------------------------------------------------------
// Pure rules

/** The `failsafe` key the leader keeps (Patroni's `_failsafe_config`): every member's api_url, ours included. */
export function failsafeTopology(members: readonly Member[], me: string, myApiUrl: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of members) out[m.name] = m.data.api_url;
  if (!(me in out)) out[me] = myApiUrl;
  return out;
}

export function sameTopology(a: FailsafeTopology | null | undefined, b: FailsafeTopology): boolean {
  if (!a) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * Patroni's `Failsafe.update_cluster`, applied in `load_cluster_from_dcs`: with failsafe mode on, a
 * cluster without a leader key whose leader POSTed /failsafe to us within ttl reads as led by it (and
 * lists it as a member, so we can follow it). Anything else is returned unchanged.
 */
export function withFailsafeLeader<T extends Pick<HaObservation, 'dcs' | 'me' | 'failsafe'>>(o: T): T {
  const fs = o.failsafe;
  if (!fs?.mode || !fs.leader || fs.leader.name === o.me.name || !o.dcs.ok || o.dcs.cluster.leader !== null) return o;
  const l = fs.leader;
  const c = o.dcs.cluster;
  const known = c.members.find((m) => m.name === l.name);
  const member: Member = {
    name: l.name,
    version: known?.version ?? 0,
    data: { ...(known?.data ?? { state: 'running', role: 'master', version: '' }), conn_url: l.conn_url, api_url: l.api_url },
  };
  const cluster: Cluster = {
    ...c,
    leader: { name: l.name, version: 0 },
    members: [...c.members.filter((m) => m.name !== l.name), member],
    status: l.slots ? { ...c.status, slots: l.slots } : c.status,
  };
  return { ...o, dcs: { ok: true, cluster } };
}

/**
 * Patroni's `is_failsafe_mode` part of `_is_healthiest_node`: a member missing from a non-empty
 * failsafe topology never races (the leader did not count on it, so it never acknowledged anybody).
 */
export function failsafeRaceBlock(o: Pick<HaObservation, 'me' | 'failsafe'>, cluster: Cluster): string | null {
  const t = cluster.failsafe;
  if (!o.failsafe?.mode || !t || Object.keys(t).length === 0 || o.me.name in t) return null;
  return 'not racing: i am not in the failsafe topology';
}

/** The loop must run the POST /failsafe round before deciding: a running primary that cannot reach the store. */
export function needsFailsafeCheck(o: Pick<HaObservation, 'dcs' | 'pg' | 'memory' | 'settings' | 'failsafe'>): boolean {
  return (
    o.failsafe?.mode === true &&
    !o.dcs.ok &&
    !o.settings.pause &&
    !o.memory.actionInProgress &&
    o.pg.running &&
    o.pg.accepting &&
    o.pg.inRecovery === false
  );
}

/** Every member of `topology` but us acknowledged `data` (Patroni's check_failsafe_topology). */
export async function checkFailsafeTopology(
  topology: FailsafeTopology | null,
  data: FailsafeLeader,
  post: FailsafePoster | undefined,
  timeoutMs: number,
): Promise<{ ok: boolean; detail: string }> {
  if (!topology) return { ok: false, detail: 'no failsafe topology is known (the failsafe key was never read)' };
  if (!(data.name in topology)) return { ok: false, detail: `i am not in the failsafe topology (${Object.keys(topology).join(', ')})` };
  const others = Object.entries(topology).filter(([name]) => name !== data.name);
  if (others.length === 0) return { ok: true, detail: 'single-member topology' };
  if (!post) return { ok: false, detail: 'no way to reach the other members' };
  const results = await Promise.all(
    others.map(async ([name, url]) => ({ name, ...(await post(url, data, timeoutMs).catch((e: unknown) => ({ ok: false, detail: String(e) }))) })),
  );
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return { ok: true, detail: `acknowledged by ${results.map((r) => r.name).join(', ')}` };
  return { ok: false, detail: `no acknowledgement from ${failed.map((r) => `${r.name} (${r.detail})`).join(', ')}` };
}

// ---------------------------------------------------------------------------------------------
// State shared by the HA loop (leader side) and the REST API (replica side)

export class Failsafe {
  /** Replica: the last POST /failsafe we accepted, and when (monotonic ms). */
  private ping: { at: number; leader: FailsafeLeader } | null = null;
  /** Leader: the last round was acknowledged by everybody, and the store has not been read since. */
  private activeAsLeader = false;
  /** Leader: monotonic ms until which acknowledged rounds keep the topology from racing. */
  private acknowledgedUntil = -Infinity;
  /** The topology as last read from the store or written by us (Patroni's `dcs.failsafe`). */
  private known: FailsafeTopology | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: () => number,
  ) {}

  /** POST /failsafe accepted (Patroni's `Failsafe.update`): `leader` is the leader for the next ttl. */
  receive(leader: FailsafeLeader): void {
    this.ping = { at: this.clock.now(), leader };
  }

  /** The leader that pinged us within ttl. */
  leader(): FailsafeLeader | null {
    return this.ping && this.clock.now() - this.ping.at < this.ttlMs() ? this.ping.leader : null;
  }

  /** What `/patroni` reports as `failsafe_mode_is_active` (Patroni's `Failsafe.is_active`). */
  isActive(): boolean {
    return this.activeAsLeader || this.leader() !== null;
  }

  /** The failsafe key as last read or written. */
  topology(): FailsafeTopology | null {
    return this.known;
  }

  /** Monotonic ms until which acknowledged rounds let us run as primary without the store (-Infinity: none). */
  validUntil(): number {
    return this.acknowledgedUntil;
  }

  /**
   * The store answered (Patroni: `set_is_active(0)` after a cycle without a store error). Our session
   * was renewed just now and outlives every earlier acknowledgement. Once we hold the lock ourselves,
   * a ping from an earlier leader means nothing any more.
   */
  storeRead(cluster: Cluster, me: string): void {
    this.known = cluster.failsafe ?? null;
    this.activeAsLeader = false;
    this.acknowledgedUntil = -Infinity;
    if (cluster.leader?.name === me) this.ping = null;
  }

  /** We wrote the failsafe key. */
  wrote(topology: FailsafeTopology): void {
    this.known = topology;
  }

  /** This tick's failsafe view for decide(); runs the POST round when `needsFailsafeCheck`. */
  async observe(
    o: Pick<HaObservation, 'dcs' | 'pg' | 'memory' | 'settings'>,
    mode: boolean,
    self: FailsafeLeader,
    post: FailsafePoster | undefined,
    timeoutMs: number,
  ): Promise<FailsafeObservation> {
    const base: FailsafeObservation = { mode, acked: null, validUntil: this.acknowledgedUntil, leader: mode ? this.leader() : null };
    if (!needsFailsafeCheck({ ...o, failsafe: base })) return base;
    const sentAt = this.clock.now();
    const acked = await checkFailsafeTopology(this.known, self, post, timeoutMs);
    this.activeAsLeader = acked.ok;
    if (acked.ok) this.acknowledgedUntil = Math.max(this.acknowledgedUntil, sentAt + this.ttlMs());
    return { ...base, acked, validUntil: this.acknowledgedUntil };
  }
}
