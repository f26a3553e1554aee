/**
 * What the HA loop sees in one tick (HaObservation) and what it decides (HaDecision).
 * `decide()` (decide.ts) maps one to the other without I/O or clock reads; `execute()` (execute.ts)
 * performs the decision. Action names are a stable, documented enum: they are logged every tick
 * and served by the REST API.
 */
import type { Tags } from '../config/types.js';
import type { Cluster, FailsafeLeader } from '../dcs/types.js';
import type { PgObservation, StopMode, UpstreamConn } from '../postgres/types.js';
import type { StandbyCluster } from './standby.js';

export interface HaSettings {
  readonly ttl: number;
  readonly loopWait: number;
  readonly maximumLagOnFailover: number;
  readonly usePgRewind: boolean;
  readonly removeDataDirectoryOnRewindFailure: boolean;
  readonly removeDataDirectoryOnDivergedTimelines: boolean;
  readonly pause: boolean;
  /** synchronous_mode on (true or quorum): only a member listed in the `sync` key may be promoted. */
  readonly synchronousMode: boolean;
  /** synchronous_mode: quorum — `ANY k (…)`, promotion needs a visible quorum (Patroni 4). */
  readonly quorumCommit: boolean;
  /** A configured replica method works without a running member (no_leader / no_master). */
  readonly replicaWithoutLeader: boolean;
  /** `standby_cluster` in the dynamic config (standby.ts); absent or null: an ordinary cluster. */
  readonly standbyCluster?: StandbyCluster | null;
}

/** A member we could copy from or follow: its name and where its PostgreSQL listens. */
export interface Source {
  readonly member: string;
  readonly conn: UpstreamConn;
}

/** What a peer answered on GET /patroni during a leader race. */
export interface PeerStatus {
  readonly name: string;
  readonly reachable: boolean;
  readonly inRecovery: boolean | null;
  readonly walPosition: number | null;
  readonly nofailover: boolean;
}

/** The verdict of a divergence check, remembered between ticks for one upstream timeline. */
export interface RewindVerdict {
  /** `<member>@<timeline>`: a new leader or timeline invalidates the verdict. */
  readonly against: string;
  readonly verdict: 'needed' | 'not_needed' | 'failed' | 'done';
}

/** What earlier ticks learned; kept by the loop, read by decide. */
export interface HaMemory {
  /** Monotonic time since which PostgreSQL has been seen not running (null: running). */
  readonly pgDownSince: number | null;
  readonly rewind: RewindVerdict | null;
  /** A long action started by an earlier tick is still running (bootstrap, basebackup, rewind). */
  /** `state`: what the action published for us while it still runs (bootstrap: 'running' once PostgreSQL is up). */
  readonly actionInProgress: { readonly name: string; readonly startedAt: number; readonly state?: string } | null;
  /** The last bootstrap attempt failed: do not race again (needs a person). */
  readonly bootstrapFailed: boolean;
  /**
   * Monotonic time since which we, the candidate of a switchover, have been waiting for the old
   * leader's last WAL record (null: not waiting).
   */
  readonly takeoverWaitSince: number | null;
  /** Monotonic time since which the running replica has not been streaming (null: streaming or not a replica). */
  readonly notStreamingSince: number | null;
  /** Monotonic time until which we do not race: our pre_promote script refused a promotion. */
  readonly raceBackoffUntil: number | null;
}

export const initialMemory: HaMemory = Object.freeze({
  pgDownSince: null,
  rewind: null,
  actionInProgress: null,
  bootstrapFailed: false,
  takeoverWaitSince: null,
  notStreamingSince: null,
  raceBackoffUntil: null,
});

export type DcsView =
  | { readonly ok: true; readonly cluster: Cluster }
  | { readonly ok: false; readonly error: string };

export interface HaObservation {
  /** Monotonic ms. */
  readonly now: number;
  /** Wall-clock epoch ms: only for times people give (a scheduled switchover's `scheduled_at`). */
  readonly wallNow: number;
  readonly me: { readonly name: string; readonly tags: Tags };
  readonly settings: HaSettings;
  readonly dcs: DcsView;
  /** Monotonic ms until which our store session (and a leader key bound to it) surely exists. */
  readonly sessionValidUntil: number;
  readonly pg: PgObservation;
  readonly memory: HaMemory;
  /** Statuses of the other members, fetched only when the lock is free (see needsPeerStatuses). */
  readonly peers: readonly PeerStatus[] | null;
  /** Failsafe mode (failsafe.ts); absent: failsafe mode off. */
  readonly failsafe?: FailsafeObservation;
  /** false: `watchdog.mode: required` and no usable watchdog (watchdog.ts): never race for the lock. */
  readonly watchdogHealthy?: boolean;
}

/** What failsafe mode contributes to a tick (see failsafe.ts). */
export interface FailsafeObservation {
  /** `failsafe_mode` is on in the dynamic config. */
  readonly mode: boolean;
  /**
   * Leader whose store is unreachable: whether every other member of the failsafe topology acknowledged
   * us through POST /failsafe this tick, and who did not (null: not asked this tick).
   */
  readonly acked: { readonly ok: boolean; readonly detail: string } | null;
  /**
   * Monotonic ms until which earlier acknowledgements keep every member of the topology from racing
   * (each remembers us for ttl from when we sent it); -Infinity: none.
   */
  readonly validUntil: number;
  /** Replica: the leader that POSTed /failsafe to us within the last ttl (null: none). */
  readonly leader: FailsafeLeader | null;
}

export type HaDecision =
  /** Nothing to do this tick. */
  | { readonly action: 'noop'; readonly reason: string }
  /** We hold the lock and run as primary: keep the lock, publish optime, keep slots. */
  | { readonly action: 'lead'; readonly reason: string }
  /** Take the `initialize` key; on success run initdb and become the first leader. */
  | { readonly action: 'bootstrap'; readonly reason: string }
  /** Build an empty data dir as a copy of `source` (pg_basebackup). */
  | { readonly action: 'create_replica'; readonly reason: string; readonly source: Source | null; readonly methods?: readonly string[] }
  /** Standby cluster: take the `initialize` key; on success copy the remote `source` and run as its standby leader. */
  | { readonly action: 'bootstrap_standby_leader'; readonly reason: string; readonly source: Source }
  /** Standby cluster: we hold the lock and stay in recovery; keep the lock, stream from (restore from) the remote `upstream`. */
  | { readonly action: 'lead_standby'; readonly reason: string; readonly upstream: Source }
  /** Start the stopped PostgreSQL read-only, streaming from `upstream` (null: no upstream yet). */
  | { readonly action: 'start_replica'; readonly reason: string; readonly upstream: Source | null }
  /** Stop PostgreSQL and keep it stopped (e.g. a system identifier mismatch). */
  | { readonly action: 'stop'; readonly reason: string; readonly mode: StopMode }
  /** Race for the leader key; `promote` when we win while running as a replica. */
  | { readonly action: 'acquire_lock'; readonly reason: string; readonly promote: boolean }
  /** We hold the lock but run as a replica: promote. */
  | { readonly action: 'promote'; readonly reason: string }
  /**
   * Stop running as primary. `deadline` (monotonic ms) is when writes must have stopped at the latest
   * (our lock may expire then); the executor escalates to an immediate stop to meet it.
   * `releaseLock`: delete the leader key after the stop. `follow`: restart as a replica of it.
   */
  | {
      readonly action: 'demote';
      readonly reason: string;
      readonly mode: 'graceful' | 'immediate';
      readonly deadline: number | null;
      readonly releaseLock: boolean;
      readonly follow: Source | null;
    }
  /** Running replica: point primary_conninfo at `upstream`. */
  | { readonly action: 'follow'; readonly reason: string; readonly upstream: Source }
  /** Stopped former primary: find out whether it diverged from `upstream` (result goes to memory.rewind). */
  | { readonly action: 'check_rewind'; readonly reason: string; readonly upstream: Source; readonly against: string }
  | { readonly action: 'rewind'; readonly reason: string; readonly upstream: Source; readonly against: string }
  /** Move the data dir aside (never deleted) so that a fresh replica can be built next tick. */
  | { readonly action: 'reinitialize'; readonly reason: string }
  /** Delete our leader key (PostgreSQL did not come back in time). */
  | { readonly action: 'release_lock'; readonly reason: string }
  /** Delete the `failover` key (stale, impossible or done); `version` guards against a newer request. */
  | { readonly action: 'clear_failover'; readonly reason: string; readonly version: number }
  /**
   * The switchover candidate has not received the old leader's last WAL record yet: look again
   * shortly (not after loop_wait) — every moment here is a moment without a primary.
   */
  | { readonly action: 'wait_for_wal'; readonly reason: string; readonly target: number };

export type HaActionName = HaDecision['action'];
