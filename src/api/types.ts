/**
 * The REST API is an edge: it reads a state view owned by the HA loop and records intents (through
 * optional backend hooks); it never manages PostgreSQL or decides anything about HA.
 */
import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import type { Cluster, FailsafeLeader, FailsafeTopology } from '../dcs/types.js';
import type { PgObservation } from '../postgres/types.js';

/** A consistent, cheap, synchronous snapshot owned by the HA loop, plus this member's identity. */
export interface ApiView {
  name: string;
  scope: string;
  /** pgwarden's version, reported as `patroni.version` and encoded into `patroni_version`. */
  version: string;
  config: DaemonConfig;
  dynamic: DynamicConfig;
  /** The last snapshot read from the store (null: never read). */
  cluster: Cluster | null;
  /** Wall-clock epoch seconds of the last successful store read. */
  dcsLastSeen: number | null;
  /** The last observation of the local PostgreSQL. */
  pg: PgObservation | null;
  /** Patroni's state: running | starting | stopped | stopping | crashed | creating replica | … */
  state: string;
  /** Patroni 3.0 role names. */
  role: 'master' | 'replica' | 'standby_leader' | 'uninitialized' | 'demoted';
  /** We hold the leader key (as of the last store read). */
  isLeader: boolean;
  paused: boolean;
  /** Monotonic ms (Clock.now()) when the last HA loop completed. */
  lastLoopAt: number | null;
  /** A restart scheduled through POST /restart (shown in /patroni). */
  scheduledRestart?: Record<string, unknown> | null;
  /** What the last HA tick did and why. */
  lastAction: { action: string; reason: string } | null;
  /** Failsafe mode is keeping this primary running, or a failsafe leader pinged this replica within ttl. */
  failsafeActive?: boolean;
}

export interface ApiBackend {
  view(): ApiView;
  /** A fresh store read (/cluster and /history force one, as Patroni does); a rejection gives 503. */
  loadCluster(): Promise<Cluster>;
  /** Monotonic ms (for /liveness). */
  now(): number;
  /** POST /reload: re-read the config file (the SIGHUP equivalent). */
  requestReload?(): void;

  // The management half. Optional so read-only backends (tests, tools) need not stub them:
  // a route whose hook is missing answers 503.
  /** Make the HA loop look at the store now (a request it must act on). */
  wake?(): void;
  /** Monotonic sleep (polling a switchover's result). */
  sleep?(ms: number): Promise<void>;
  /** Wall clock (scheduled times people give). */
  wallNow?(): Date;
  /** GET /patroni of another member (null: unreachable). */
  memberStatus?(apiUrl: string, timeoutMs: number): Promise<Record<string, unknown> | null>;
  /** CAS writes of the store's `failover` and `config` keys (version null: create only if absent). */
  setFailover?(value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null): Promise<boolean>;
  deleteFailover?(version: number): Promise<boolean>;
  setConfig?(value: Record<string, unknown>, version: number | null): Promise<boolean>;
  /** Restart PostgreSQL now (filters as Patroni's); resolves when done. */
  restart?(r: RestartFilters): Promise<{ ok: boolean; message: string }>;
  /** false: another restart is already scheduled. */
  scheduleRestart?(r: RestartFilters & { schedule: string }): boolean;
  /** false: none was scheduled. */
  cancelScheduledRestart?(): boolean;
  /** Start rebuilding this replica; null when started, else why not. */
  reinitialize?(force: boolean): Promise<string | null>;
  /** POST /failsafe accepted: `leader` is our leader for the next ttl (failsafe mode). */
  acceptFailsafe?(leader: FailsafeLeader): void;
  /** The failsafe topology as last read or written (GET /failsafe); null: none. */
  failsafeTopology?(): FailsafeTopology | null;
}

export interface RestartFilters {
  role?: string;
  postgresVersionNum?: number;
  pendingOnly?: boolean;
  timeoutS?: number;
}

export interface ApiRequest {
  method: string;
  /** Decoded-as-sent path without the query string, e.g. `/replica`. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Came over TLS with a client certificate that verified against restapi.cafile (verify_client). */
  clientCertificate?: boolean;
}

export interface ApiResponse {
  status: number;
  /** A JSON body. */
  body?: unknown;
  /** A text/plain body (metrics, Patroni's plain messages); wins over `body`. */
  text?: string;
  headers?: Record<string, string>;
}
