/**
 * The HA decision: one observation in, one action with a one-line reason out. No I/O, no clock.
 * Rules and their sources (Patroni 3.0.2 ha.py unless noted):
 * - Store unreachable while primary → demote before our lock can expire elsewhere (`_handle_dcs_error`),
 *   unless failsafe mode is on and every member of the failsafe topology acknowledged us (failsafe.ts).
 * - Lock held by someone else while primary → demote immediately (split brain guard).
 * - Lock free → only a healthy, failover-eligible member whose WAL position is the highest among the
 *   members it can reach, and within `maximum_lag_on_failover`, races (`is_healthiest_node`).
 * - Leader whose PostgreSQL is down → start it read-only, promote once it runs; give the lock up if
 *   it is not back within `ttl` (`recover`, "starting as readonly because i had the session lock").
 * - A member about to follow a leader first checks whether it diverged from the leader's timeline;
 *   a diverged data dir is rewound, or moved aside only when the config allows (`_handle_rewind_or_reinitialize`).
 * - Manual switchover/failover (`failover` key, `process_manual_failover_from_leader`): the leader hands
 *   over only to a healthy candidate (else the key is cleared), at `scheduled_at` if given, by a clean
 *   shutdown whose last WAL record the candidate must hold before it promotes (no acknowledged commit
 *   lost, no pg_rewind for the old leader); others do not race while the named candidate is healthy.
 */
import { isTruthy } from '../config/values.js';
import type { Cluster, FailoverRequest, Member } from '../dcs/types.js';
import { findMember } from '../dcs/types.js';
import { formatLsn } from '../postgres/lsn.js';
import { quorumVisible } from './sync.js';
import { failsafeRaceBlock, withFailsafeLeader } from './failsafe.js';
import { slotNameForMember } from '../postgres/types.js';
import type { HaDecision, HaObservation, Source } from './types.js';
import { inStandbyCluster, withoutSyncMode } from './standby.js';

export function decide(observed: HaObservation): HaDecision {
  // A standby cluster (standby.ts): the cluster's own rules, then what a standby cluster changes.
  const sc = observed.settings.standbyCluster;
  if (sc) return inStandbyCluster(observed, sc, decideCluster(withoutSyncMode(observed, sc)));
  return decideCluster(observed);
}

function decideCluster(observed: HaObservation): HaDecision {
  // Failsafe mode: a leader that pinged us within ttl leads a cluster without a leader key.
  const o = withFailsafeLeader(observed);
  if (!o.dcs.ok) {
    if (o.memory.actionInProgress) return noop(`${o.memory.actionInProgress.name} in progress`);
    return decideWithoutStore(o, o.dcs.error);
  }
  const cluster = o.dcs.cluster;
  // Checked even while a start is in progress: a leader keeps its lock only if PostgreSQL is back within ttl.
  if (cluster.leader?.name === o.me.name && !o.settings.pause && pgDownTooLong(o)) {
    return { action: 'release_lock', reason: 'postgresql did not come back within ttl: releasing the leader lock' };
  }
  if (o.memory.actionInProgress) return noop(`${o.memory.actionInProgress.name} in progress`);
  if (o.pg.dataDir === 'invalid') {
    return noop('data directory is not empty and not a PostgreSQL data directory: refusing to touch it');
  }
  if (o.settings.pause) return decidePaused(o, cluster);
  if (o.pg.dataDir === 'empty') return decideEmptyDataDir(o, cluster);
  if (cluster.initialize && o.pg.sysid && cluster.initialize !== o.pg.sysid) {
    return sysidMismatch(o, cluster.initialize);
  }
  if (!o.pg.running) return decideStopped(o, cluster);
  if (!o.pg.accepting) return noop('postgresql is running but not accepting connections yet');
  const leader = cluster.leader?.name ?? null;
  if (leader === o.me.name) return decideLeader(o, cluster);
  if (leader === null) return decideUnlocked(o, cluster);
  return decideFollower(o, cluster, leader);
}

/**
 * Whether the loop must fetch the other members' statuses (GET /patroni) before deciding:
 * only for a running replica that may race for a free lock.
 */
export function needsPeerStatuses(observed: Omit<HaObservation, 'peers'>): boolean {
  const o = withFailsafeLeader(observed);
  if (leaderWithDueFailover(o)) return true;
  // The named candidate of a switchover takes over without comparing itself to the others.
  const f = o.dcs.ok ? o.dcs.cluster.failover : null;
  if (f?.member === o.me.name && schedule(o, f.scheduled_at).kind !== 'wait') return false;
  return (
    o.dcs.ok &&
    o.dcs.cluster.leader === null &&
    !o.settings.pause &&
    !o.memory.actionInProgress &&
    o.pg.dataDir === 'initialized' &&
    isRunningReplica(o) &&
    !isTruthy(o.me.tags.nofailover)
  );
}

/** The leader must judge the candidates of a manual failover that is due now. */
function leaderWithDueFailover(o: Omit<HaObservation, 'peers'>): boolean {
  if (!o.dcs.ok || o.memory.actionInProgress) return false;
  const { leader, failover } = o.dcs.cluster;
  // A standby leader (running in recovery in a standby cluster) hands over like a primary.
  const leads = isRunningPrimary(o) || (Boolean(o.settings.standbyCluster) && isRunningReplica(o));
  return leader?.name === o.me.name && failover !== null && leads && schedule(o, failover.scheduled_at).kind === 'due';
}

function decideWithoutStore(o: HaObservation, error: string): HaDecision {
  // Maintenance mode (the last known config): Patroni demotes nobody for a store outage while paused.
  if (o.settings.pause) return noop(`store is not accessible: ${error}; paused: no automatic actions, not demoting`);
  if (isRunningPrimary(o)) {
    const fs = o.failsafe;
    if (fs?.mode && fs.acked?.ok) {
      return lead(`continue to run as a leader because failsafe mode is enabled and all members are accessible (${error})`);
    }
    return {
      action: 'demote',
      reason: `demoting self because the store is not accessible and i was a leader (${error})${fs?.acked ? `; failsafe: ${fs.acked.detail}` : ''}`,
      mode: 'graceful',
      // Members that acknowledged us earlier do not race before fs.validUntil (failsafe.ts).
      deadline: Math.max(o.sessionValidUntil, fs?.validUntil ?? -Infinity),
      releaseLock: false,
      follow: null,
    };
  }
  const fsLeader = o.failsafe?.mode ? o.failsafe.leader?.name : undefined;
  return noop(`store is not accessible: ${error}${fsLeader ? `; ${fsLeader} is the leader by failsafe mode` : ''}`);
}

function decidePaused(o: HaObservation, cluster: Cluster): HaDecision {
  const leader = cluster.leader?.name ?? null;
  // Manual switchover and failover to a named candidate stay possible in maintenance mode.
  if (leader === o.me.name && isRunningPrimary(o)) return manualFailoverFromLeader(o, cluster) ?? lead('paused: I am the leader with the lock');
  if (leader === null && cluster.failover?.member === o.me.name && isRunningReplica(o)) {
    return takeOver(o, cluster, cluster.failover);
  }
  if (leader === null && isRunningPrimary(o)) {
    return { action: 'acquire_lock', reason: 'paused: running as primary without the lock, taking it', promote: false };
  }
  return noop('paused: maintenance mode, no automatic actions');
}

function decideEmptyDataDir(o: HaObservation, cluster: Cluster): HaDecision {
  if (cluster.initialize === null && cluster.leader === null) {
    if (o.memory.bootstrapFailed) return noop('bootstrap failed earlier: not retrying (see the log)');
    // Patroni: a member that may never become primary does not create the cluster either.
    if (isTruthy(o.me.tags.nofailover)) return noop('waiting for leader to bootstrap (nofailover: not racing to bootstrap)');
    return { action: 'bootstrap', reason: 'cluster is not initialized: racing to bootstrap it' };
  }
  if (cluster.initialize === '') return noop('waiting for leader to bootstrap');
  const source = cloneSource(o, cluster);
  if (!source && o.settings.replicaWithoutLeader) {
    return { action: 'create_replica', reason: 'no running member to copy from: creating a replica with a no_leader method', source: null };
  }
  if (!source) return noop('waiting for a running leader to build a replica from');
  return { action: 'create_replica', reason: `creating a replica from ${source.member}`, source };
}

function decideStopped(o: HaObservation, cluster: Cluster): HaDecision {
  const leader = cluster.leader?.name ?? null;
  if (leader === o.me.name) {
    return { action: 'start_replica', reason: 'starting as readonly because i had the session lock', upstream: null };
  }
  if (leader === null) {
    return { action: 'start_replica', reason: 'starting as a secondary (no leader yet)', upstream: null };
  }
  const upstream = followTarget(o, cluster, leader);
  if (!upstream) return noop(`waiting for the member data of leader ${leader}`);
  return rejoin(o, cluster, leader, upstream);
}

/** Before following a leader, a stopped member proves it has not diverged from the leader's timeline. */
function rejoin(o: HaObservation, cluster: Cluster, leader: string, upstream: Source): HaDecision {
  const against = `${leader}@${findMember(cluster, leader)?.data.timeline ?? '?'}`;
  const verdict = o.memory.rewind?.against === against ? o.memory.rewind.verdict : null;
  switch (verdict) {
    case null:
      return { action: 'check_rewind', reason: `checking whether i diverged from ${leader}`, upstream, against };
    case 'not_needed':
    case 'done':
      return { action: 'start_replica', reason: `starting as a secondary of ${upstream.member}`, upstream };
    case 'needed':
      if (o.settings.usePgRewind) {
        return { action: 'rewind', reason: `diverged from ${leader}: running pg_rewind`, upstream, against };
      }
      if (o.settings.removeDataDirectoryOnDivergedTimelines) {
        return { action: 'reinitialize', reason: `diverged from ${leader} and pg_rewind is off: rebuilding` };
      }
      return noop(
        `diverged from ${leader}: use_pg_rewind is off, staying stopped (enable use_pg_rewind or reinitialize this member)`,
      );
    case 'failed':
      if (o.settings.removeDataDirectoryOnRewindFailure) {
        return { action: 'reinitialize', reason: 'pg_rewind failed: moving the data directory aside and rebuilding' };
      }
      return noop(
        'pg_rewind failed: staying stopped (set remove_data_directory_on_rewind_failure or reinitialize this member)',
      );
  }
}

function decideLeader(o: HaObservation, cluster: Cluster): HaDecision {
  if (o.pg.inRecovery === true) {
    // A standby leader hands its lock over like a primary (Patroni's process_manual_failover_from_leader
    // runs for it too); the candidate becomes the standby leader, nobody is promoted (standby.ts).
    const handover = o.settings.standbyCluster ? manualFailoverFromLeader(o, cluster) : null;
    if (handover && handover.action !== 'lead') return handover;
    return { action: 'promote', reason: 'promoting self to leader because i had the session lock' };
  }
  return manualFailoverFromLeader(o, cluster) ?? lead('no action: I am the leader with the lock');
}

type ScheduleState = { kind: 'due' } | { kind: 'wait'; inMs: number } | { kind: 'stale' } | { kind: 'invalid' };

/** Patroni's should_run_scheduled_action: due from the scheduled time until 1.5 loop_wait after it. */
export function schedule(o: Pick<HaObservation, 'wallNow' | 'settings'>, at: string | undefined): ScheduleState {
  if (!at) return { kind: 'due' };
  const t = Date.parse(at);
  if (Number.isNaN(t)) return { kind: 'invalid' };
  const delta = t - o.wallNow;
  if (delta > 0) return { kind: 'wait', inMs: delta };
  if (-delta > Math.floor(o.settings.loopWait * 1.5) * 1000) return { kind: 'stale' };
  return { kind: 'due' };
}

/** The leader's part of a switchover/failover; null when there is nothing to do about it now. */
function manualFailoverFromLeader(o: HaObservation, cluster: Cluster): HaDecision | null {
  const f = cluster.failover;
  if (!f) return null;
  const clear = (reason: string): HaDecision => ({ action: 'clear_failover', reason, version: f.version });
  if (f.leader && f.leader !== o.me.name) return clear(`ignoring the failover key: its leader ${f.leader} is not me, cleaning up`);
  if (f.member === o.me.name) return clear(`manual failover: ${f.member} is already the leader, cleaning up`);
  const when = schedule(o, f.scheduled_at);
  if (when.kind === 'wait') return lead(`no action: I am the leader with the lock; switchover scheduled at ${f.scheduled_at}`);
  if (when.kind === 'stale') return clear(`found a stale switchover scheduled at ${f.scheduled_at}, cleaning up`);
  if (when.kind === 'invalid') return clear(`unparsable scheduled_at ${JSON.stringify(f.scheduled_at)} in the failover key, cleaning up`);
  if (o.peers === null) return lead('no action: I am the leader with the lock; statuses of the switchover candidates unknown');
  const healthy = o.peers.filter((p) => p.reachable && p.inRecovery === true && !p.nofailover && p.name !== o.me.name);
  if (f.member) {
    const m = findMember(cluster, f.member);
    const source = m && healthy.some((p) => p.name === f.member) ? sourceFromMember(m, o.me.name) : null;
    if (!source) return clear(`manual failover: member ${f.member} is not healthy or does not exist, cleaning up`);
    return handOver(o, `manual failover: demoting myself in favour of ${f.member}`, source);
  }
  if (healthy.length === 0) return clear('manual failover: no healthy members found, cleaning up');
  return handOver(o, 'manual failover: demoting myself, the healthiest member takes over', null);
}

/**
 * Clean shutdown (walsenders send every WAL record, the shutdown checkpoint included, before the
 * postmaster exits), publish where WAL ended, release the lock, restart as a replica.
 */
function handOver(o: HaObservation, reason: string, candidate: Source | null): HaDecision {
  return { action: 'demote', reason, mode: 'graceful', deadline: o.sessionValidUntil, releaseLock: true, follow: candidate };
}

/** The named candidate of a switchover/failover with the lock free: take over. */
function takeOver(o: HaObservation, cluster: Cluster, f: FailoverRequest): HaDecision {
  // A switchover (the old leader is named): promote only holding the old leader's last WAL record,
  // the end of its shutdown checkpoint published as the optime when it released the lock.
  const target = f.leader ? cluster.status.optime : undefined;
  if (target !== undefined && !(o.pg.walPosition !== null && o.pg.walPosition > target)) {
    const since = o.memory.takeoverWaitSince;
    if (since !== null && o.now - since > o.settings.ttl * 1000) {
      return { action: 'clear_failover', reason: `switchover: the last WAL of ${f.leader} did not arrive within ttl; the healthiest member takes over`, version: f.version };
    }
    return { action: 'wait_for_wal', reason: `switchover: waiting for the WAL of ${f.leader} up to ${formatLsn(target)} before taking over`, target };
  }
  return { action: 'acquire_lock', reason: `manual failover: i am the candidate (${f.leader ? 'switchover' : 'failover'}), taking over`, promote: true };
}

function decideUnlocked(o: HaObservation, cluster: Cluster): HaDecision {
  if (isRunningPrimary(o)) {
    return { action: 'acquire_lock', reason: 'running as primary without the lock: taking it', promote: false };
  }
  if (isTruthy(o.me.tags.nofailover)) return noop('not racing for the leader lock: nofailover tag');
  if (o.watchdogHealthy === false) return noop('not racing for the leader lock: the watchdog is required but not usable');
  const outsideFailsafe = failsafeRaceBlock(o, cluster);
  if (outsideFailsafe) return noop(outsideFailsafe);
  if (o.memory.raceBackoffUntil !== null && o.now < o.memory.raceBackoffUntil) {
    return noop('backoff: not racing after the pre_promote script refused a promotion and the lock was released');
  }
  const f = cluster.failover;
  const candidate = f?.member;
  if (f && candidate === o.me.name && schedule(o, f.scheduled_at).kind !== 'wait') return takeOver(o, cluster, f);
  if (candidate && candidate !== o.me.name && findMember(cluster, candidate)) {
    // The named candidate takes over; if it cannot (unreachable, not a running replica), we race.
    const st = o.peers?.find((p) => p.name === candidate);
    if (!st || (st.reachable && st.inRecovery !== false)) return noop(`manual failover to ${candidate} in progress: not racing`);
  }
  // Synchronous mode: only a member the leader recorded as synchronous holds every acknowledged commit.
  const sync = cluster.sync?.sync_standby ?? [];
  if (o.settings.synchronousMode && sync.length > 0 && !sync.includes(o.me.name)) {
    return noop(`not racing: i am not a synchronous standby (sync: ${sync.join(', ')})`);
  }
  const quorum = cluster.sync?.quorum;
  if (o.settings.quorumCommit && sync.length > 0 && quorum !== undefined) {
    if (o.peers === null) return noop('not racing yet: statuses of the quorum members unknown');
    const { have, need } = quorumVisible(sync, quorum, o.me.name, o.peers.filter((p) => p.reachable).map((p) => p.name));
    if (have < need) return noop(`not racing: i see ${have} of the quorum members, ${need} are needed to prove i hold every acknowledged commit`);
  }
  const myWal = o.pg.walPosition;
  const lastLsn = cluster.status.optime ?? null;
  if (myWal === null) return noop('not racing for the leader lock: my wal position is unknown');
  if (lastLsn !== null && lastLsn - myWal > o.settings.maximumLagOnFailover) {
    return noop(`not racing: my wal position is ${lastLsn - myWal} bytes behind the last leader, over maximum_lag_on_failover`);
  }
  if (o.peers === null) return noop('not racing yet: statuses of other members unknown');
  for (const p of o.peers) {
    if (!p.reachable || p.nofailover || p.name === o.me.name) continue;
    if (p.inRecovery === false) return noop(`not racing: primary (${p.name}) is still alive`);
    if (p.walPosition !== null && p.walPosition > myWal) {
      return noop(`not racing: wal position of ${p.name} is ahead of mine`);
    }
  }
  return { action: 'acquire_lock', reason: 'i am the healthiest member: racing for the leader lock', promote: true };
}

function decideFollower(o: HaObservation, cluster: Cluster, leader: string): HaDecision {
  if (o.pg.inRecovery === false) {
    return {
      action: 'demote',
      reason: `demoting self because i do not have the lock and i was a leader (leader is ${leader})`,
      mode: 'immediate',
      deadline: null,
      releaseLock: false,
      follow: null,
    };
  }
  const upstream = followTarget(o, cluster, leader);
  if (!upstream) return noop(`waiting for the member data of leader ${leader}`);
  // A replica that diverged from the leader's timeline cannot follow it: PostgreSQL keeps refusing the
  // new timeline and the replica silently stops replicating. Stop it, so that the rejoin path checks
  // for divergence and rewinds (or stays stopped) instead of reporting a healthy replica.
  const leaderTl = findMember(cluster, leader)?.data.timeline;
  const since = o.memory.notStreamingSince;
  if (
    typeof leaderTl === 'number' && o.pg.timeline !== null && leaderTl > o.pg.timeline &&
    since !== null && o.now - since > stuckAfterMs(o)
  ) {
    return { action: 'stop', reason: `not replicating from ${leader} (timeline ${leaderTl}, mine ${o.pg.timeline}): stopping to check whether i diverged`, mode: 'fast' };
  }
  const want = `${upstream.conn.host}:${upstream.conn.port}`;
  if (o.pg.upstream !== want) {
    return { action: 'follow', reason: `following new upstream ${upstream.member} (${want})`, upstream };
  }
  return noop(`no action: I am a secondary and i am following a leader (${leader})`);
}

function sysidMismatch(o: HaObservation, clusterSysid: string): HaDecision {
  const reason = `system identifier mismatch: data directory has ${o.pg.sysid}, cluster has ${clusterSysid}; refusing to join`;
  return o.pg.running ? { action: 'stop', reason, mode: 'fast' } : noop(reason);
}

/** The member to stream from: `replicatefrom` when it runs, else the leader. */
function followTarget(o: HaObservation, cluster: Cluster, leader: string): Source | null {
  const from = o.me.tags.replicatefrom;
  if (typeof from === 'string' && from !== o.me.name) {
    const m = findMember(cluster, from);
    if (m && m.data.state === 'running') {
      const s = sourceFromMember(m, o.me.name);
      if (s) return s;
    }
  }
  const m = findMember(cluster, leader);
  return m ? sourceFromMember(m, o.me.name) : null;
}

/** A running member tagged `clonefrom` spares the leader the copy; else the running leader. */
function cloneSource(o: HaObservation, cluster: Cluster): Source | null {
  const running = cluster.members.filter((m) => m.name !== o.me.name && m.data.state === 'running');
  const tagged = running.find((m) => isTruthy(m.data.tags?.clonefrom));
  const leader = cluster.leader ? running.find((m) => m.name === cluster.leader?.name) : undefined;
  const chosen = tagged ?? leader;
  return chosen ? sourceFromMember(chosen, o.me.name) : null;
}

/** `postgres://host:port/postgres` → where to connect; null if the member published no usable URL. */
export function sourceFromMember(m: Member, myName: string): Source | null {
  try {
    const url = new URL(m.data.conn_url);
    const port = url.port ? Number(url.port) : 5432;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!host) return null;
    return { member: m.name, conn: { host, port, slotName: slotNameForMember(myName) } };
  } catch {
    return null;
  }
}

/** How long a replica may go without streaming behind a newer leader timeline before it is checked. */
function stuckAfterMs(o: HaObservation): number {
  return Math.max(10_000, 3 * o.settings.loopWait * 1000);
}

function pgDownTooLong(o: HaObservation): boolean {
  return !o.pg.running && o.memory.pgDownSince !== null && o.now - o.memory.pgDownSince >= o.settings.ttl * 1000;
}

function isRunningPrimary(o: Pick<HaObservation, 'pg'>): boolean {
  return o.pg.running && o.pg.accepting && o.pg.inRecovery === false;
}

/** Running in recovery and answering: a replica, or a standby leader. */
function isRunningReplica(o: Pick<HaObservation, 'pg'>): boolean {
  return o.pg.running && o.pg.accepting && o.pg.inRecovery === true;
}


function noop(reason: string): HaDecision {
  return { action: 'noop', reason };
}

function lead(reason: string): HaDecision {
  return { action: 'lead', reason };
}
