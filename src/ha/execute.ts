/**
 * Performs one HaDecision against the ports. Long actions (bootstrap, basebackup, start, rewind) run
 * in the background through the ActionRunner so the loop keeps its session alive meanwhile; the next
 * tick sees them as `memory.actionInProgress`.
 */
import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import type { Cluster, DcsStore } from '../dcs/types.js';
import { findMember } from '../dcs/types.js';
import type { PostgresControl } from '../postgres/types.js';
import type { Clock } from '../util/clock.js';
import { CopyCancelledError, PromoteCancelledError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { HaDecision, HaMemory, RewindVerdict, Source } from './types.js';
import type { Watchdog } from './watchdog.js';

export interface ExecutePorts {
  readonly store: DcsStore;
  readonly pg: PostgresControl;
  readonly clock: Clock;
  readonly log: Logger;
  readonly config: DaemonConfig;
  /** Activated before this member becomes primary (a required one that fails stops it), disabled when it stops being one. */
  readonly watchdog?: Watchdog;
}

/** Mutable state the executor shares with the loop between ticks. */
export interface ExecState {
  memory: HaMemory;
  /** Last cluster snapshot (for writing initialize/config after bootstrap). */
  cluster: Cluster | null;
  /** bootstrap.dcs merged with defaults: written to `config` by the first leader. */
  bootstrapConfig: Record<string, unknown>;
  /** Called when something happened that the loop should look at at once. */
  wake(): void;
  /** Observe PostgreSQL and publish our member key now (not at the end of the tick). */
  publish(state?: string): Promise<void>;
  /** The effective dynamic config now. */
  dynamic(): DynamicConfig;
  /** Hands the loop a long action running in the background: a shutdown waits for it before stopping PostgreSQL. */
  track(work: Promise<void>): void;
}

/** Generous bounds for PostgreSQL operations (the lock's safety does not depend on them). */
const START_TIMEOUT_MS = 300_000;
const PROMOTE_TIMEOUT_MS = 60_000;
const WAL_WAIT_POLL_MS = 10;
const CHECKPOINT_BEFORE_HANDOVER_MS = 60_000;

export async function execute(d: HaDecision, p: ExecutePorts, s: ExecState): Promise<void> {
  switch (d.action) {
    case 'noop':
    case 'lead':
      return;
    case 'bootstrap':
      return bootstrap(p, s);
    case 'bootstrap_standby_leader':
      return bootstrapStandbyLeader(d.source, p, s);
    case 'lead_standby':
      return p.pg.follow(d.upstream.conn);
    case 'create_replica':
      return runLong(p, s, 'creating replica', async () => {
        // A standby cluster's remote reached only through an archive has no host to copy from.
        await p.pg.createReplica(d.source?.conn.host ? d.source.conn : null, d.methods);
        const leader = s.cluster?.leader?.name;
        const tl = leader ? findMember(s.cluster!, leader)?.data.timeline : undefined;
        // A fresh copy of the leader cannot have diverged from it.
        if (leader) setRewind(s, { against: `${leader}@${tl ?? '?'}`, verdict: 'not_needed' });
      });
    case 'start_replica':
      return runLong(p, s, 'starting', () => p.pg.start({ upstream: d.upstream?.conn ?? null, timeoutMs: START_TIMEOUT_MS }));
    case 'stop':
      await p.pg.stop(d.mode, 60_000);
      p.watchdog?.disable();
      // Whatever we knew about divergence is re-checked before this data dir follows anyone again.
      s.memory = { ...s.memory, rewind: null };
      return;
    case 'acquire_lock':
      return acquireLock(d.promote, p, s);
    case 'promote':
      await promote(p, s);
      return;
    case 'demote':
      return demote(d, p, s);
    case 'follow':
      return p.pg.follow(d.upstream.conn);
    case 'check_rewind': {
      const needed = await p.pg.rewindNeeded(d.upstream.conn);
      setRewind(s, { against: d.against, verdict: needed ? 'needed' : 'not_needed' });
      s.wake();
      return;
    }
    case 'rewind':
      return runLong(p, s, 'rewinding', async () => {
        try {
          await p.pg.rewind(d.upstream.conn);
          setRewind(s, { against: d.against, verdict: 'done' });
        } catch (e) {
          p.log.error({ err: errorMessage(e) }, 'pg_rewind failed');
          setRewind(s, { against: d.against, verdict: 'failed' });
        }
      });
    case 'reinitialize': {
      const where = await p.pg.moveDataDirAside('reinit');
      p.log.warn({ movedTo: where }, 'data directory moved aside (kept, not deleted); a new replica will be built');
      s.memory = { ...s.memory, rewind: null };
      s.wake();
      return;
    }
    case 'release_lock':
      await p.store.deleteLeader();
      return;
    case 'clear_failover':
      await p.store.deleteFailover(d.version);
      s.wake();
      return;
    case 'wait_for_wal':
      if (s.memory.takeoverWaitSince === null) s.memory = { ...s.memory, takeoverWaitSince: p.clock.now() };
      // Look again in a moment, not after loop_wait: the WAL is usually milliseconds away.
      await p.clock.sleep(WAL_WAIT_POLL_MS);
      s.wake();
      return;
  }
}

async function bootstrap(p: ExecutePorts, s: ExecState): Promise<void> {
  // Patroni: the member that would become the first primary needs its watchdog first.
  if (p.watchdog && !p.watchdog.activate()) {
    p.log.error('not bootstrapping: the watchdog could not be activated');
    return;
  }
  if (!(await p.store.initialize('', true))) {
    p.log.info('lost the bootstrap race: another member initializes the cluster');
    return;
  }
  return runLong(p, s, 'initializing new cluster', async () => {
    let sysid: string;
    try {
      sysid = await p.pg.bootstrap();
    } catch (e) {
      p.log.error({ err: errorMessage(e) }, 'bootstrap failed: giving the initialize key back');
      s.memory = { ...s.memory, bootstrapFailed: true };
      await p.pg.stop('immediate', 30_000).catch(() => undefined);
      const moved = await p.pg.moveDataDirAside('failed-bootstrap').catch(() => null);
      if (moved) p.log.warn({ movedTo: moved }, 'data directory of the failed bootstrap moved aside');
      await p.store.cancelInitialization();
      return;
    }
    await p.store.initialize(sysid, false);
    // Publish "running" before taking the lock: replicas woken by the new leader key can copy at once.
    await s.publish('running');
    if (!(await p.store.attemptToAcquireLeader())) {
      p.log.error('bootstrapped the cluster but could not take the leader lock');
    }
    await writeConfigIfMissing(p, s);
    p.log.info({ sysid }, 'cluster initialized');
  });
}

/**
 * Patroni's bootstrap_standby_leader: win the `initialize` race, copy the remote (pg_basebackup from it
 * with our replication credentials, or standby_cluster.create_replica_methods), record its system
 * identifier, start in recovery streaming from it, take the lock. A failed copy is given back like a
 * failed initdb; a copy that fails only to start stays (the loop starts it again, as a standby).
 */
async function bootstrapStandbyLeader(source: Source, p: ExecutePorts, s: ExecState): Promise<void> {
  if (!(await p.store.initialize('', true))) {
    p.log.info('lost the bootstrap race: another member bootstraps the standby leader');
    return;
  }
  const methods = s.dynamic().raw.standby_cluster as { create_replica_methods?: unknown } | undefined;
  const list = Array.isArray(methods?.create_replica_methods) ? (methods.create_replica_methods as string[]) : [];
  return runLong(p, s, 'bootstrapping a standby leader', async () => {
    try {
      await p.pg.createReplica(source.conn.host ? source.conn : null, list.length ? list : ['basebackup']);
    } catch (e) {
      if (e instanceof CopyCancelledError) p.log.info({ from: source.member }, 'copy of the remote cluster cancelled (shutting down): giving the initialize key back');
      else p.log.error({ err: errorMessage(e), from: source.member }, 'could not copy the remote cluster: giving the initialize key back');
      s.memory = { ...s.memory, bootstrapFailed: true };
      const obs = await p.pg.observe().catch(() => null);
      if (obs && obs.dataDir !== 'empty') {
        const moved = await p.pg.moveDataDirAside('failed-bootstrap').catch(() => null);
        if (moved) p.log.warn({ movedTo: moved }, 'data directory of the failed copy moved aside');
      }
      await p.store.cancelInitialization();
      return;
    }
    const sysid = (await p.pg.observe()).sysid;
    if (sysid) await p.store.initialize(sysid, false);
    p.log.info({ from: source.member, sysid }, 'copied the remote cluster: starting as its standby leader');
    await p.pg.start({ upstream: source.conn, timeoutMs: START_TIMEOUT_MS });
    await s.publish('running');
    if (!(await p.store.attemptToAcquireLeader())) p.log.error('bootstrapped a standby leader but could not take the leader lock');
    await writeConfigIfMissing(p, s);
  });
}

async function acquireLock(promoteAfter: boolean, p: ExecutePorts, s: ExecState): Promise<void> {
  if (!(await p.store.attemptToAcquireLeader())) {
    p.log.info('lost the leader race');
    return;
  }
  p.log.info('acquired the leader lock');
  if (!promoteAfter && !(await watchdogActive(p))) {
    // Patroni's enforce_primary_role: a primary that cannot arm its required watchdog must not stay one.
    await p.pg.stop('immediate', 30_000);
    return;
  }
  if (promoteAfter && !(await promote(p, s))) return;
  // A switchover/failover that brought us here is done.
  const f = s.cluster?.failover;
  if (f) await p.store.deleteFailover(f.version).catch((e: unknown) => p.log.warn({ err: errorMessage(e) }, 'could not delete the failover key'));
  if (s.cluster && s.cluster.initialize === null) {
    const obs = await p.pg.observe();
    if (obs.sysid) await p.store.initialize(obs.sysid, true);
  }
  await writeConfigIfMissing(p, s);
  s.wake();
}

/** false: the promotion did not happen (postponed, or refused by pre_promote and the lock given back). */
async function promote(p: ExecutePorts, s: ExecState): Promise<boolean> {
  const dyn = s.dynamic();
  if (!(await watchdogActive(p))) return false;
  if (dyn.synchronous_mode !== false) {
    // Patroni's enforce_primary_role: record ourselves as the source of truth (nobody synchronous
    // yet) before promoting; if the sync key changed under us we may have lost the lock: not now.
    const c = await p.store.load();
    if (!(await p.store.setSync({ leader: p.config.name, sync_standby: null }, c.sync?.version ?? null))) {
      p.log.warn('postponing promotion: the synchronous replication state was changed by somebody else');
      s.wake();
      return false;
    }
    // Strict: commits wait for any standby until the loop has chosen one; else they run unprotected.
    await p.pg.setSynchronousStandbyNames(dyn.synchronous_mode_strict ? '*' : '');
  }
  // PostgreSQL may take seconds to finish recovery: keep our session (and the lock) alive meanwhile,
  // or the lease guard would have to stop the primary we are making.
  const keepalive = setInterval(() => void p.store.refreshSession().catch(() => undefined), Math.max(500, (dyn.ttl * 1000) / 4));
  try {
    await p.pg.promote(PROMOTE_TIMEOUT_MS);
  } catch (e) {
    if (!(e instanceof PromoteCancelledError)) throw e;
    // Patroni: give the lock back at once and stay out of the race for ttl, so another member takes over.
    await p.store.deleteLeader();
    p.log.warn('pre_promote refused the promotion: leader lock released, backing off for ttl');
    s.memory = { ...s.memory, raceBackoffUntil: p.clock.now() + dyn.ttl * 1000 };
    s.wake();
    return false;
  } finally {
    clearInterval(keepalive);
  }
  p.log.info('promoted to primary');
  s.wake();
  return true;
}

async function demote(d: Extract<HaDecision, { action: 'demote' }>, p: ExecutePorts, s: ExecState): Promise<void> {
  if (d.releaseLock && d.mode === 'graceful' && d.deadline !== null) {
    // A handover: checkpoint while writes still run, so the shutdown checkpoint has little to do.
    const budget = Math.min(CHECKPOINT_BEFORE_HANDOVER_MS, (d.deadline - p.clock.now()) / 3);
    if (budget > 500) await p.pg.checkpoint(budget).catch((e: unknown) => p.log.warn({ err: errorMessage(e) }, 'checkpoint before the handover failed'));
  }
  const left = d.deadline === null ? 0 : d.deadline - p.clock.now() - 500;
  const mode = d.mode === 'graceful' && left > 1000 ? 'fast' : 'immediate';
  await p.pg.stop(mode, mode === 'fast' ? left : 30_000);
  p.log.warn({ mode }, 'demoted: postgresql stopped');
  p.watchdog?.disable();
  if (d.releaseLock) {
    // Where our WAL ended (the shutdown checkpoint): a switchover candidate promotes only past it.
    const after = await p.pg.observe();
    const optime = after.running ? undefined : (after.controlCheckpointLsn ?? undefined);
    if (await p.store.updateLeader({ optime })) await p.store.deleteLeader();
    p.log.info({ optime }, 'leader lock released');
  }
  if (d.follow) await p.pg.start({ upstream: d.follow.conn, timeoutMs: START_TIMEOUT_MS });
  s.wake();
}

/** Arm the watchdog before acting as primary; a required one that cannot be armed gives the lock back. */
async function watchdogActive(p: ExecutePorts): Promise<boolean> {
  if (!p.watchdog || p.watchdog.activate()) return true;
  p.log.error('the watchdog is required and could not be activated: releasing the leader lock, not acting as primary');
  await p.store.deleteLeader();
  return false;
}

async function writeConfigIfMissing(p: ExecutePorts, s: ExecState): Promise<void> {
  const current = s.cluster?.config ?? null;
  if (current) return;
  if (await p.store.setConfig(s.bootstrapConfig, null)) p.log.info('wrote the dynamic configuration from bootstrap.dcs');
}

function setRewind(s: ExecState, v: RewindVerdict): void {
  s.memory = { ...s.memory, rewind: v };
}

/** Runs `fn` in the background; the loop sees it as actionInProgress until it settles. */
function runLong(p: ExecutePorts, s: ExecState, name: string, fn: () => Promise<void>): Promise<void> {
  if (s.memory.actionInProgress) return Promise.resolve();
  s.memory = { ...s.memory, actionInProgress: { name, startedAt: p.clock.now() } };
  s.track(
    fn()
      .catch((e: unknown) => {
        if (e instanceof CopyCancelledError) p.log.info({ action: name }, errorMessage(e));
        else p.log.error({ err: errorMessage(e), action: name }, 'action failed');
      })
      .finally(() => {
        s.memory = { ...s.memory, actionInProgress: null };
        s.wake();
      }),
  );
  return Promise.resolve();
}
