/**
 * The store contract and the immutable cluster snapshot the HA loop reads once per tick.
 * Key layout (etcd): /<namespace>/<scope>/{initialize,config,leader,members/<name>,failover,sync,history,status}
 * — exactly Patroni's, so patronictl and monitoring read a pgwarden cluster unchanged.
 */
import type { Tags } from '../config/types.js';

/** What a member publishes in `members/<name>` — Patroni's JSON field names. */
export interface MemberData {
  conn_url: string;
  api_url: string;
  /** running | starting | stopped | stopping | crashed | creating replica | initializing new cluster | … */
  state: string;
  /** master | replica | standby_leader | uninitialized | demoted (Patroni 3.0 names, for patronictl 3.0) */
  role: string;
  version: string;
  xlog_location?: number;
  timeline?: number;
  tags?: Tags;
  pending_restart?: boolean;
  [k: string]: unknown;
}

export interface Member {
  readonly name: string;
  /** Store revision of the member key (etcd mod_revision). */
  readonly version: number;
  readonly data: Readonly<MemberData>;
}

export interface Leader {
  readonly name: string;
  /** Store revision of the leader key. */
  readonly version: number;
  /** The etcd lease id (decimal string) the key is bound to, if any. */
  readonly session?: string;
}

export interface FailoverRequest {
  readonly leader?: string;
  readonly member?: string;
  readonly scheduled_at?: string;
  readonly version: number;
}

export interface SyncState {
  readonly leader?: string;
  readonly sync_standby: readonly string[];
  /** Quorum commit (Patroni 4 `synchronous_mode: quorum`): every commit is on this many of sync_standby. */
  readonly quorum?: number;
  readonly version: number;
}

/** What a leader writes to `sync`: comma-joined names or null, and the quorum in quorum mode. */
export interface SyncValue {
  leader: string;
  sync_standby: string | null;
  quorum?: number;
}

/** `[timeline, lsn, reason, timestamp, new_leader]`: the LSN is where `timeline` ended. */
export type HistoryEntry = readonly [number, number, string, string?, string?];

export interface ClusterStatus {
  readonly optime?: number;
  readonly slots?: Readonly<Record<string, number>>;
  /** Patroni 4: slots of members kept for member_slots_ttl after they were last seen (src/ha/slots.ts). */
  readonly retain_slots?: readonly string[];
}

export interface Cluster {
  /** null: no `initialize` key; '': someone is initializing; otherwise the system identifier. */
  readonly initialize: string | null;
  /** The stored dynamic config JSON, or null when the key is absent. */
  readonly config: { readonly value: Readonly<Record<string, unknown>>; readonly version: number } | null;
  readonly leader: Leader | null;
  readonly members: readonly Member[];
  readonly failover: FailoverRequest | null;
  readonly sync: SyncState | null;
  readonly history: readonly HistoryEntry[];
  readonly status: ClusterStatus;
  /**
   * The `failsafe` key (failsafe mode): member name → api_url of every member the leader counted when
   * the store last worked. undefined/null: absent or not an object (Patroni ignores such a value).
   */
  readonly failsafe?: FailsafeTopology | null;
}

/** The value of the `failsafe` key: member name → REST API URL. */
export type FailsafeTopology = Readonly<Record<string, string>>;

/**
 * What a leader running in failsafe mode sends in `POST /failsafe` (Patroni 3.0 `check_failsafe_topology`):
 * who it is and where to reach it; the receiver treats it as the leader for ttl (Patroni's RemoteMember).
 */
export interface FailsafeLeader {
  readonly name: string;
  readonly conn_url: string;
  readonly api_url: string;
  /** Permanent slots and their positions, when the leader has any (Patroni's `slots`). */
  readonly slots?: Readonly<Record<string, number>>;
}

export const emptyCluster: Cluster = Object.freeze({
  initialize: null,
  config: null,
  leader: null,
  members: [],
  failover: null,
  sync: null,
  history: [],
  status: {},
});

export function findMember(cluster: Cluster, name: string): Member | undefined {
  return cluster.members.find((m) => m.name === name);
}

/**
 * The store port. Contract, for every adapter (etcd3, Kubernetes, in-memory):
 * - Every call finishes within `retry_timeout` (set with `setTimeouts`) or rejects with `DcsError`.
 * - `load()` is one consistent read of the whole cluster prefix.
 * - Writes marked CAS succeed only if the key is unchanged since the given version
 *   (or absent, for creates); a lost race resolves `false`, it does not throw.
 * - `leader` and `members/<me>` live only as long as this member keeps its session alive
 *   (etcd: a lease of `ttl` seconds renewed by `refreshSession()` / `updateLeader()`).
 * - `sessionValidUntil()` is the monotonic time (Clock.now()) until which our session — and so a
 *   leader key we hold — is guaranteed to exist, measured from when the last successful renewal
 *   was *sent*. The HA loop must stop accepting writes as primary before that time passes.
 */
export interface DcsStore {
  load(): Promise<Cluster>;

  /** Renew our session (lease), creating a new one if it expired. */
  refreshSession(): Promise<void>;
  sessionValidUntil(): number;

  /** CAS create of `initialize` (value `sysid`, '' while initializing); with `create=false`, overwrite. */
  initialize(sysid: string, create: boolean): Promise<boolean>;
  /** Delete `initialize` (a failed bootstrap gives others a chance). */
  cancelInitialization(): Promise<void>;

  /** CAS on `version` (null: create only if absent). */
  setConfig(value: Record<string, unknown>, version: number | null): Promise<boolean>;

  /** Publish our member data, bound to our session. */
  touchMember(data: MemberData): Promise<boolean>;

  /** Create `leader` = our name, bound to our session, only if absent. */
  attemptToAcquireLeader(): Promise<boolean>;
  /** Renew the session and check that `leader` is still ours; also writes `status` (optime). */
  updateLeader(status: ClusterStatus): Promise<boolean>;
  /** Delete `leader` only if it is ours. */
  deleteLeader(): Promise<boolean>;

  setHistory(history: readonly HistoryEntry[]): Promise<boolean>;
  /** CAS on `version` (null: create only if absent). */
  setFailover(value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null): Promise<boolean>;
  deleteFailover(version?: number): Promise<boolean>;
  setSync(value: SyncValue, version: number | null): Promise<boolean>;
  deleteSync(): Promise<boolean>;
  /**
   * Write the `failsafe` key (failsafe mode: the leader keeps it equal to the members it counts on).
   * Unconditional, like Patroni's write_failsafe. Optional: a store without it never keeps a primary
   * running through an outage (failsafe mode then demotes like without it).
   */
  setFailsafe?(value: FailsafeTopology): Promise<boolean>;

  /** Change the session TTL and the per-call deadline (dynamic config changed). */
  setTimeouts(opts: { ttl: number; retryTimeout: number }): void;

  /**
   * Call `onChange` whenever the leader key changes (created, deleted, expired, rewritten) —
   * replicas race at once instead of at their next loop. Returns a function that stops watching.
   */
  watchLeader(onChange: () => void): () => void;

  close(): Promise<void>;
}
