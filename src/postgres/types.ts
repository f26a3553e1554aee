import type { DynamicConfig } from '../config/types.js';
import type { SlotsPort } from './slots.js';

/**
 * One PostgreSQL instance, seen through a narrow port so the HA loop can be tested without processes.
 * LSNs are numbers (bytes; safe up to 2^53, i.e. 8 PiB of WAL).
 */

/** pg_controldata "Database cluster state". */
export type ControlState =
  | 'starting up'
  | 'shut down'
  | 'shut down in recovery'
  | 'shutting down'
  | 'in crash recovery'
  | 'in archive recovery'
  | 'in production';

export interface PgObservation {
  /** 'empty': data_dir missing or empty; 'initialized': has PG_VERSION + global/pg_control. */
  readonly dataDir: 'empty' | 'initialized' | 'invalid';
  /** From pg_controldata, when initialized. */
  readonly sysid: string | null;
  readonly controlState: ControlState | null;
  /** Latest checkpoint's TimeLineID / REDO location from pg_control (valid while stopped). */
  readonly controlTimeline: number | null;
  readonly controlCheckpointLsn: number | null;
  /** The postmaster process is alive (postmaster.pid names a live postgres process). */
  readonly running: boolean;
  /** A query succeeded just now. */
  readonly accepting: boolean;
  readonly inRecovery: boolean | null;
  readonly timeline: number | null;
  /** Primary: pg_current_wal_lsn(); replica: max(receive, replay). */
  readonly walPosition: number | null;
  readonly receiveLsn: number | null;
  readonly replayLsn: number | null;
  /** Replica: commit time of the last replayed transaction (ISO, Patroni's replayed_timestamp). */
  readonly replayTimestamp: string | null;
  /** Replica: WAL replay is paused (pg_wal_replay_pause()). */
  readonly replayPaused: boolean;
  /** standby.signal present. */
  readonly standbySignal: boolean;
  /** host:port of the current primary_conninfo, if any (replica). */
  readonly upstream: string | null;
  /** pg_stat_wal_receiver has a streaming row. */
  readonly streaming: boolean;
  readonly serverVersion: number | null;
  readonly pendingRestart: boolean;
  /** Postmaster start time as an ISO string (REST `postmaster_start_time`). */
  readonly postmasterStartTime: string | null;
  /** Replication rows of pg_stat_replication (primary only). */
  readonly replication: readonly ReplicationRow[];
}

export interface ReplicationRow {
  readonly usename: string;
  readonly application_name: string;
  readonly client_addr: string | null;
  readonly state: string;
  readonly sync_state: string;
  readonly sync_priority: number;
  readonly flush_lsn: number | null;
  readonly replay_lsn: number | null;
}

export interface UpstreamConn {
  host: string;
  port: number;
  /** Used for application_name and the slot on the upstream. */
  slotName?: string;
  /** Standby cluster: the upstream is the remote cluster (Patroni's RemoteMember); we are its standby leader. */
  remote?: boolean;
  /** Stream without a replication slot (a remote without primary_slot_name). */
  noSlot?: boolean;
  /** Standby cluster: restore_command, archive_cleanup_command (and from the remote recovery_min_apply_delay). */
  recovery?: Readonly<Record<string, string | number>>;
}

export type StopMode = 'smart' | 'fast' | 'immediate';

/** Effects on the local PostgreSQL. Every method rejects with PostgresError on failure. */
export interface PostgresControl {
  /** The effective dynamic config changed (parameters, pg_hba, use_slots …): used for the next config write. */
  configure(dynamic: DynamicConfig): void;
  observe(): Promise<PgObservation>;
  /** initdb + write config + start as primary + create roles. Returns the system identifier. */
  bootstrap(): Promise<string>;
  /**
   * Build the data dir with the configured replica methods (pg_basebackup from `from` by default);
   * `from` null: only methods that need no running member (no_leader). Does not start. `methods`
   * replaces the configured list (a standby cluster's `standby_cluster.create_replica_methods`).
   */
  createReplica(from: UpstreamConn | null, methods?: readonly string[]): Promise<void>;
  /**
   * Stop a createReplica() in progress (the daemon shuts down): its program (pg_basebackup, a replica
   * method) is sent SIGTERM and no further method is tried; createReplica() then rejects with
   * CopyCancelledError. A partial pg_basebackup copy is removed as after any failed one (the directory was
   * empty before). Without a copy in progress it does nothing.
   */
  cancelCopy(): void;
  /**
   * Write postgresql.conf/pg_hba.conf/standby config and start; waits until it accepts connections.
   * Always starts read-only: `upstream: null` is a standby with nobody to stream from, never a primary
   * (only promote() makes a primary). Already running: only waits until it accepts connections.
   */
  start(opts: { upstream: UpstreamConn | null; timeoutMs: number }): Promise<void>;
  stop(mode: StopMode, timeoutMs: number): Promise<void>;
  /**
   * CHECKPOINT while still accepting writes, so that the shutdown checkpoint that follows (and the
   * time without a primary) is short — Patroni's checkpoint before a graceful demotion.
   */
  checkpoint(timeoutMs: number): Promise<void>;
  /** Stop (fast) and start again with the same role and standby settings. */
  restart(timeoutMs: number): Promise<void>;
  /** pg_ctl promote and wait until out of recovery. */
  promote(timeoutMs: number): Promise<void>;
  /** Rewrite the standby settings (primary_conninfo, primary_slot_name) and reload; restarts if needed. */
  follow(upstream: UpstreamConn): Promise<void>;
  /** Does the local (stopped) data dir need pg_rewind to follow `from`? */
  rewindNeeded(from: UpstreamConn): Promise<boolean>;
  rewind(from: UpstreamConn): Promise<void>;
  /** Move the data dir aside (never delete) so a new replica can be built. Returns where it went. */
  moveDataDirAside(reason: string): Promise<string>;
  /** Replication slot effects (src/postgres/slots.ts), planned by src/ha/slots.ts. */
  readonly replicationSlots: SlotsPort;
  /**
   * The current timeline's history file as `[timeline, switch LSN, reason]` rows (primary only):
   * the leader publishes it in the store's `history` key after a promotion.
   */
  timelineHistory?(): Promise<Array<[number, number, string]>>;
  /**
   * synchronous_standby_names in synchronous_mode (undefined: not managed, the configured value
   * stands); rewrites the config and reloads a running server.
   */
  setSynchronousStandbyNames(value: string | undefined): Promise<void>;
  /** Apply parameter changes: reload; report whether a restart is pending. */
  reloadConfig(): Promise<void>;
  close(): Promise<void>;
}

/** Patroni's rule for slot names: lower case, anything outside [a-z0-9_] becomes '_'. */
export function slotNameForMember(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}
