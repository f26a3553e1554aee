/**
 * Standby cluster (Patroni 3.0 `standby_cluster` in the dynamic config): a replica of a whole remote
 * cluster. Its lock holder is a *standby leader* — it holds the leader lock, stays in recovery and
 * streams from the remote (`host`/`port`, optionally through `primary_slot_name`) or restores WAL
 * (`restore_command`); the other members stream from the standby leader. Nobody is ever promoted
 * while the section is there; removing it makes the standby leader an ordinary leader (it promotes),
 * adding it to a running cluster demotes the primary to a standby leader.
 *
 * The cluster's own decisions (decide.ts) stay the rules; `inStandbyCluster` changes what a standby
 * cluster changes (Patroni 3.0.2 ha.py: `bootstrap_standby_leader`, `recover`, `_get_node_to_follow`,
 * `process_unhealthy_cluster`, `process_healthy_cluster`, `enforce_follow_remote_member`). Pure.
 */
import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import { isObj, toInt } from '../config/values.js';
import { replicaMethodWorksWithoutLeader } from '../postgres/options.js';
import { slotNameForMember, type UpstreamConn } from '../postgres/types.js';
import type { HaDecision, HaObservation, Source } from './types.js';

/** The `standby_cluster` section as the HA loop uses it. */
export interface StandbyCluster {
  /** Where the remote primary (or any remote member) listens; null: restore_command only. */
  readonly host: string | null;
  readonly port: number;
  /** A slot on the remote to stream through; null: no slot (Patroni's `no_replication_slot`). */
  readonly primarySlotName: string | null;
  /** How to copy the remote (and, in this cluster, the standby leader); empty: basebackup. */
  readonly createReplicaMethods: readonly string[];
  readonly restoreCommand: string | null;
  readonly archiveCleanupCommand: string | null;
  readonly recoveryMinApplyDelay: string | number | null;
  /** One of createReplicaMethods works without a running member (no_leader / no_master). */
  readonly replicaWithoutLeader: boolean;
}

/** Patroni's `is_standby_cluster`: a mapping naming a host, a port or a restore_command. */
export function isStandbyClusterSection(v: unknown): v is Record<string, unknown> {
  return isObj(v) && Boolean(v.host || v.port || v.restore_command);
}

/** The standby cluster in force (null: an ordinary cluster). Lenient: a bad value is left out, never thrown. */
export function standbyClusterSettings(config: DaemonConfig, dynamic: DynamicConfig): StandbyCluster | null {
  const s = dynamic.raw.standby_cluster;
  if (!isStandbyClusterSection(s)) return null;
  const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : typeof v === 'number' ? String(v) : null);
  const methods = Array.isArray(s.create_replica_methods) ? s.create_replica_methods.filter((m): m is string => typeof m === 'string' && m !== '') : [];
  const delay = s.recovery_min_apply_delay;
  return {
    host: str(s.host),
    port: toInt(s.port) ?? 5432,
    primarySlotName: str(s.primary_slot_name),
    createReplicaMethods: methods,
    restoreCommand: str(s.restore_command),
    archiveCleanupCommand: str(s.archive_cleanup_command),
    recoveryMinApplyDelay: typeof delay === 'number' || (typeof delay === 'string' && delay !== '') ? delay : null,
    replicaWithoutLeader: methods.some((m) => replicaMethodWorksWithoutLeader(config, m)),
  };
}

/** The remote as a source (Patroni's RemoteMember): host '' when there is only a restore_command. */
export function remoteSource(sc: StandbyCluster): Source {
  const recovery = { ...memberRecovery(sc), ...(sc.recoveryMinApplyDelay !== null ? { recovery_min_apply_delay: sc.recoveryMinApplyDelay } : {}) };
  const conn: UpstreamConn = {
    host: sc.host ?? '',
    port: sc.port,
    remote: true,
    ...(sc.primarySlotName !== null ? { slotName: slotNameForMember(sc.primarySlotName) } : { noSlot: true }),
    ...(Object.keys(recovery).length ? { recovery } : {}),
  };
  return { member: sc.host ? `remote ${sc.host}:${sc.port}` : 'remote archive', conn };
}

/** What every member of a standby cluster restores WAL with (recovery_min_apply_delay: only from the remote). */
function memberRecovery(sc: StandbyCluster): Record<string, string> {
  return {
    ...(sc.restoreCommand !== null ? { restore_command: sc.restoreCommand } : {}),
    ...(sc.archiveCleanupCommand !== null ? { archive_cleanup_command: sc.archiveCleanupCommand } : {}),
  };
}

/** host:port as PgObservation.upstream reports it; null for a remote reached only through restore_command. */
function upstreamKey(conn: UpstreamConn): string | null {
  return conn.host ? `${conn.host}:${conn.port}` : null;
}

/**
 * Synchronous mode does not apply in a standby cluster (nobody writes here): decide without it, so
 * that every member may race to become the standby leader.
 */
export function withoutSyncMode(o: HaObservation, sc: StandbyCluster): HaObservation {
  return { ...o, settings: { ...o.settings, synchronousMode: false, quorumCommit: false, replicaWithoutLeader: sc.replicaWithoutLeader } };
}

/** `d`: what the cluster's own rules decided for `o` (with withoutSyncMode applied). */
export function inStandbyCluster(o: HaObservation, sc: StandbyCluster, d: HaDecision): HaDecision {
  if (!o.dcs.ok || o.memory.actionInProgress) return d;
  const cluster = o.dcs.cluster;
  const iLead = cluster.leader?.name === o.me.name;
  const remote = remoteSource(sc);
  const runningPrimary = o.pg.running && o.pg.accepting && o.pg.inRecovery === false;
  if (iLead && runningPrimary && !o.settings.pause && o.pg.dataDir === 'initialized') {
    // Patroni's follow() → demote('immediate-nolock'): keep the lock, stop now, come back as the standby leader.
    return { action: 'demote', reason: 'cannot be a real primary in a standby cluster: demoting to a standby leader', mode: 'immediate', deadline: null, releaseLock: false, follow: null };
  }
  switch (d.action) {
    case 'bootstrap':
      return { action: 'bootstrap_standby_leader', reason: `standby cluster is not initialized: racing to bootstrap a standby leader from ${remote.member}`, source: remote };
    case 'create_replica':
      // Patroni's clone(): in a standby cluster the copy uses standby_cluster.create_replica_methods,
      // and without a running member to copy from it copies the remote.
      return { ...d, source: d.source ? withRecovery(d.source, sc) : remote, methods: sc.createReplicaMethods.length ? sc.createReplicaMethods : ['basebackup'] };
    case 'start_replica':
      if (d.upstream !== null) return { ...d, upstream: withRecovery(d.upstream, sc) };
      if (iLead) return startStandbyLeader(o, remote);
      return { action: 'start_replica', reason: 'trying to follow a remote member because standby cluster is unhealthy', upstream: remote };
    case 'promote':
      return leadStandby(o, remote);
    case 'noop':
      // Maintenance mode: Patroni's standby leader keeps its lock (and its remote) while paused.
      return o.settings.pause && iLead && o.pg.running && o.pg.accepting && o.pg.inRecovery === true ? leadStandby(o, remote) : d;
    case 'acquire_lock':
      return { ...d, promote: false, reason: `${d.reason} (standby cluster: to become the standby leader, no promotion)` };
    case 'follow':
      return { ...d, upstream: withRecovery(d.upstream, sc) };
    case 'check_rewind':
    case 'rewind':
      return { ...d, upstream: withRecovery(d.upstream, sc) };
    case 'reinitialize':
      // Patroni: no reinitialize on diverged timelines in a standby cluster (the remote decides the history).
      return d.reason.startsWith('diverged') ? noop(`${d.reason.replace(': rebuilding', '')}: not rebuilding in a standby cluster, staying stopped`) : d;
    case 'demote':
      return d.follow ? { ...d, follow: withRecovery(d.follow, sc) } : d;
    default:
      return d;
  }
}

/** A member of this cluster followed in a standby cluster also restores from the archive (Patroni's _get_node_to_follow). */
function withRecovery(s: Source, sc: StandbyCluster): Source {
  if (s.conn.remote) return s;
  const recovery = memberRecovery(sc);
  return Object.keys(recovery).length ? { ...s, conn: { ...s.conn, recovery } } : s;
}

/**
 * Holding the lock, in recovery: stream from the remote. The executor applies `upstream` every tick
 * (a no-op unless it changed: a new host or restore_command in standby_cluster is picked up too).
 */
function leadStandby(o: HaObservation, remote: Source): HaDecision {
  const reason = o.pg.upstream !== upstreamKey(remote.conn)
    ? `promoted self to a standby leader because i had the session lock: following ${remote.member}`
    : `no action: I am (${o.me.name}), the standby leader with the lock`;
  return { action: 'lead_standby', reason, upstream: remote };
}

/** pg_control states of a server that ran as a primary (not in recovery) when it stopped. */
const PRIMARY_STATES = new Set(['in production', 'shut down', 'shutting down', 'in crash recovery']);

/**
 * The stopped lock holder starts as the standby leader. A data dir that ran as a primary (a cluster
 * just turned into a standby cluster) first proves it has not diverged from the remote (Patroni's
 * recover → _handle_rewind_or_reinitialize against the remote member); a standby's cannot have.
 */
function startStandbyLeader(o: HaObservation, remote: Source): HaDecision {
  const start: HaDecision = { action: 'start_replica', reason: 'starting as a standby leader because i had the session lock', upstream: remote };
  if (!remote.conn.host || !PRIMARY_STATES.has(o.pg.controlState ?? '')) return start;
  const against = `${remote.member}@primary`;
  const verdict = o.memory.rewind?.against === against ? o.memory.rewind.verdict : null;
  switch (verdict) {
    case null:
      return { action: 'check_rewind', reason: `checking whether i diverged from ${remote.member}`, upstream: remote, against };
    case 'not_needed':
    case 'done':
      return start;
    case 'needed':
      if (o.settings.usePgRewind) return { action: 'rewind', reason: `diverged from ${remote.member}: running pg_rewind`, upstream: remote, against };
      return noop(`diverged from ${remote.member}: use_pg_rewind is off, staying stopped (enable use_pg_rewind or rebuild this member)`);
    case 'failed':
      return noop(`pg_rewind from ${remote.member} failed: staying stopped`);
  }
}

function noop(reason: string): HaDecision {
  return { action: 'noop', reason };
}
