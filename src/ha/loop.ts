/**
 * The HA loop: every `loop_wait` seconds (or at once when woken by a leader-key change or an
 * action that finished) it observes, decides once, executes, and publishes this member's state.
 *
 *   observe (store session + snapshot, PostgreSQL, peers when racing) → decide (pure) → execute
 *
 * A lease guard timer backs up the loop: while we run as primary, PostgreSQL is stopped
 * immediately if our session could have expired (the loop being stuck must not give two primaries).
 */
import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import type { Cluster, ClusterStatus, DcsStore, MemberData } from '../dcs/types.js';
import type { PgObservation, PostgresControl } from '../postgres/types.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { decide, needsPeerStatuses } from './decide.js';
import { replicaMethodWorksWithoutLeader } from '../postgres/options.js';
import { SlotKeeper } from './slot-keeper.js';
import { planQuorum, planSync, sameSet, synchronousStandbyNames } from './sync.js';
import type { Watchdog } from './watchdog.js';
import { execute, type ExecState } from './execute.js';
import { shutdownOptime, shutdownTimeoutMs } from './shutdown.js';
import { isStandbyClusterSection, standbyClusterSettings } from './standby.js';
import type { DcsView, HaDecision, HaObservation, HaSettings, PeerStatus } from './types.js';
import { initialMemory } from './types.js';
import { FAILSAFE_POST_TIMEOUT_MS, Failsafe, failsafeTopology, sameTopology, type FailsafePoster } from './failsafe.js';

/** How long a new leader watches for its chosen standbys to become synchronous before moving on. */
const SYNC_CONFIRM_MS = 2000;
const SYNC_RECHECK_MS = 100;

export type PeerFetcher = (apiUrl: string, timeoutMs: number) => Promise<Record<string, unknown> | null>;

export interface HaLoopDeps {
  readonly config: DaemonConfig;
  readonly store: DcsStore;
  readonly pg: PostgresControl;
  readonly clock: Clock;
  readonly log: Logger;
  readonly fetchPeer: PeerFetcher;
  /** Effective dynamic config from the stored `config` value (null: none stored yet). */
  readonly dynamicFrom: (stored: Record<string, unknown> | null) => DynamicConfig;
  readonly version: string;
  /** POST /failsafe to another member (failsafe mode); absent: a primary without the store always demotes. */
  readonly postFailsafe?: FailsafePoster;
  /** The watchdog (watchdog.ts): fed after each lock renewal, activated before becoming primary. */
  readonly watchdog?: Watchdog;
}

/** A restart requested through the REST API (Patroni's filters), possibly scheduled. */
export interface RestartRequest {
  /** Only if we run in this role ('primary'/'master' or 'replica'). */
  role?: string;
  /** Only if the server is older than this version (server_version_num, e.g. 150004). */
  postgresVersionNum?: number;
  /** Only if PostgreSQL reports a parameter change that needs a restart. */
  pendingOnly?: boolean;
  /** Seconds to wait for the restart (default: primary_start_timeout). */
  timeoutS?: number;
  /** ISO-8601 time with a zone: schedule instead of restarting now. */
  schedule?: string;
}

export interface ScheduledRestart extends RestartRequest {
  schedule: string;
  /** postmaster_start_time when scheduled: a restart that happened meanwhile cancels it. */
  postmaster_start_time: string | null;
}

/** What the REST API and `ctl` read: the outcome of the last tick. */
export interface HaView {
  cluster: Cluster | null;
  dcsLastSeen: number | null;
  pg: PgObservation | null;
  dynamic: DynamicConfig;
  isLeader: boolean;
  lastLoopAt: number | null;
  lastAction: { action: string; reason: string } | null;
  state: string;
  role: 'master' | 'replica' | 'standby_leader' | 'uninitialized' | 'demoted';
}

export class HaLoop {
  readonly view: HaView;
  private readonly exec: ExecState;
  private wakeUp: (() => void) | null = null;
  private pendingWake = false;
  private memberWrites: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private running: Promise<void> | null = null;
  /** Long actions still running in the background (initdb, pg_basebackup, a start, a restart, a reinit): stop() waits for them. */
  private readonly background = new Set<Promise<unknown>>();
  private guard: NodeJS.Timeout | null = null;
  private prevMembers: Cluster['members'] = [];
  private unwatch: (() => void) | null = null;
  private appliedParams = '';
  /** Ticks and the start of manual actions run one at a time. */
  private serial: Promise<unknown> = Promise.resolve();
  scheduledRestart: ScheduledRestart | null = null;
  /** Synchronous mode on the leader: members in synchronous_standby_names → primary LSN when added. */
  private syncInNames = new Map<string, number>();
  /** The synchronous_standby_names we last set (undefined: not managed by this leadership). */
  private syncNamesSet: string | undefined = undefined;
  /** Quorum mode: the primary's WAL position when synchronous_standby_names last changed. */
  private quorumSince: number | null = null;
  /** Replication slots (use_slots, permanent, ignore_slots, member_slots_ttl): src/ha/slot-keeper.ts. */
  private readonly slots: SlotKeeper;
  /** Failsafe mode state, shared with the REST API (POST /failsafe, failsafe_mode_is_active). */
  readonly failsafe: Failsafe;

  constructor(private readonly d: HaLoopDeps) {
    const dynamic = d.dynamicFrom(null);
    this.view = {
      cluster: null,
      dcsLastSeen: null,
      pg: null,
      dynamic,
      isLeader: false,
      lastLoopAt: null,
      lastAction: null,
      state: 'starting',
      role: 'uninitialized',
    };
    this.exec = {
      memory: initialMemory,
      cluster: null,
      // Patroni stores bootstrap.dcs as written (defaults stay defaults, not copied into the store).
      bootstrapConfig: structuredClone(d.config.bootstrap.dcs),
      wake: () => this.wake(),
      publish: (state) => this.publishNow(state),
      dynamic: () => this.view.dynamic,
      track: (work) => void this.track(work),
    };
    d.pg.configure(dynamic);
    this.slots = new SlotKeeper({ me: d.config.name, tags: d.config.tags, pg: d.pg, log: d.log, wallNow: () => d.clock.wallNow().getTime() });
    this.failsafe = new Failsafe(d.clock, () => this.view.dynamic.ttl * 1000);
  }

  /** Run ticks until stop(). Resolves when the loop has ended. */
  start(): void {
    this.unwatch = this.d.store.watchLeader(() => {
      // The leader rewrites its own key each tick; only followers need to react at once.
      if (!this.view.isLeader) this.wake();
    });
    this.running = this.run();
  }

  wake(): void {
    this.pendingWake = true;
    this.wakeUp?.();
  }

  /** Run exactly one tick (tests and the first start). */
  tick(): Promise<HaDecision> {
    return this.exclusive(() => this.tickNow());
  }

  /** `work`, remembered until it settles, so that stop() can wait for it. */
  private track<T>(work: Promise<T>): Promise<T> {
    this.background.add(work);
    const forget = (): void => void this.background.delete(work);
    work.then(forget, forget);
    return work;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  // ---------- manual actions (REST API) ----------

  /** Patroni's restart_matches: why the filters of a restart request do not fit us now (null: they fit). */
  restartMismatch(r: RestartRequest): string | null {
    const pg = this.view.pg;
    const role = pg?.running && pg.inRecovery === false ? 'primary' : 'replica';
    if (r.role && (r.role === 'master' ? 'primary' : r.role) !== role) return 'host role mismatch';
    if (r.postgresVersionNum !== undefined && r.postgresVersionNum <= (pg?.serverVersion ?? 0)) return 'postgres version mismatch';
    if (r.pendingOnly && !pg?.pendingRestart) return 'pending restart flag is not set';
    return null;
  }

  /** Restart PostgreSQL now, keeping its role (and the leader lock); resolves when done or failed. */
  restart(r: RestartRequest): Promise<{ ok: boolean; message: string }> {
    return this.track(this.restartNow(r));
  }

  private async restartNow(r: RestartRequest): Promise<{ ok: boolean; message: string }> {
    const mismatch = this.restartMismatch(r);
    if (mismatch) {
      this.d.log.info(`not proceeding with the restart: ${mismatch}`);
      return { ok: false, message: 'restart conditions are not satisfied' };
    }
    const timeoutMs = (r.timeoutS ?? Math.max(this.view.dynamic.primary_start_timeout, 60)) * 1000;
    const busy = await this.beginManual('restarting');
    if (busy) return { ok: false, message: `${busy} already in progress` };
    this.d.log.info('restarting postgresql (requested)');
    try {
      await this.d.pg.restart(timeoutMs);
      this.d.log.info('postgresql restarted');
      return { ok: true, message: 'restarted successfully' };
    } catch (e) {
      this.d.log.error({ err: errorMessage(e) }, 'restart failed');
      return { ok: false, message: 'restart failed' };
    } finally {
      this.endManual();
      // Answer with what PostgreSQL is now, not with the state before the restart.
      await this.publishNow().catch(() => undefined);
    }
  }

  scheduleRestart(r: RestartRequest & { schedule: string }): boolean {
    if (this.scheduledRestart) return false;
    this.scheduledRestart = { ...r, postmaster_start_time: this.view.pg?.postmasterStartTime ?? null };
    void this.publishNow().catch(() => undefined);
    this.wake();
    return true;
  }

  /** The scheduled restart in Patroni's field names (what the member key and /patroni show). */
  scheduledRestartAsPatroni(): Record<string, unknown> | null {
    const sr = this.scheduledRestart;
    if (!sr) return null;
    const v = sr.postgresVersionNum;
    return {
      schedule: sr.schedule,
      ...(sr.role ? { role: sr.role } : {}),
      ...(v !== undefined ? { postgres_version: v >= 100000 ? `${Math.floor(v / 10000)}.${v % 10000}` : `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}` } : {}),
      ...(sr.pendingOnly ? { restart_pending: true } : {}),
      ...(sr.timeoutS !== undefined ? { timeout: sr.timeoutS } : {}),
      postmaster_start_time: sr.postmaster_start_time,
    };
  }

  cancelScheduledRestart(): boolean {
    if (!this.scheduledRestart) return false;
    this.scheduledRestart = null;
    void this.publishNow().catch(() => undefined);
    return true;
  }

  /** Patroni's evaluate_scheduled_restart, run after each tick. */
  private runScheduledRestart(): void {
    const sr = this.scheduledRestart;
    if (!sr || this.exec.memory.actionInProgress) return;
    const now = this.d.clock.wallNow().getTime();
    const recent = this.view.pg?.postmasterStartTime ?? null;
    if (recent && sr.postmaster_start_time && recent !== sr.postmaster_start_time) {
      this.d.log.info(`cancelling scheduled restart: postgres restart has already happened at ${recent}`);
      this.cancelScheduledRestart();
      return;
    }
    const at = Date.parse(sr.schedule);
    if (at > now) return;
    this.scheduledRestart = null;
    if (now - at > Math.floor(this.view.dynamic.loop_wait * 1.5) * 1000) {
      this.d.log.warn(`found a stale scheduled restart (${sr.schedule}), cleaning up`);
      return;
    }
    const { schedule: _s, postmaster_start_time: _p, ...filters } = sr;
    // In the background: the loop keeps ticking (and our session alive) while PostgreSQL restarts.
    void this.restart(filters).then((r) => {
      if (!r.ok) this.d.log.warn(`scheduled restart: ${r.message}`);
    });
  }

  /**
   * Rebuild this replica from the leader (POST /reinitialize): stop PostgreSQL, move the data dir
   * aside (kept, never deleted), and let the HA loop build a new replica. null: started.
   */
  async reinitialize(force: boolean): Promise<string | null> {
    const cluster = await this.d.store.load().catch(() => null);
    if (!cluster) return 'the store is not accessible';
    if (!cluster.leader) return 'Cluster has no leader, can not reinitialize';
    if (cluster.leader.name === this.d.config.name) return 'I am the leader, can not reinitialize';
    const busy = await this.beginManual('reinitializing', force);
    if (busy) return `${busy} already in progress`;
    void this.track(
      (async () => {
        try {
          await this.d.pg.stop('immediate', 60_000);
          const where = await this.d.pg.moveDataDirAside('reinit');
          this.d.log.warn({ movedTo: where }, 'reinitialize: data directory moved aside (kept, not deleted); building a new replica');
          this.exec.memory = { ...this.exec.memory, rewind: null };
        } catch (e) {
          this.d.log.error({ err: errorMessage(e) }, 'reinitialize failed');
        } finally {
          this.endManual();
        }
      })(),
    );
    return null;
  }

  /** Mark a manual action as in progress unless another one is; returns the busy action's name. */
  private beginManual(name: string, force = false): Promise<string | null> {
    return this.exclusive(async () => {
      const cur = this.exec.memory.actionInProgress;
      // force only overrides waiting, never a running pg_basebackup/pg_rewind/initdb.
      if (cur && !(force && cur.name === name)) return cur.name;
      this.exec.memory = { ...this.exec.memory, actionInProgress: { name, startedAt: this.d.clock.now() } };
      this.view.state = name;
      return null;
    });
  }

  private endManual(): void {
    this.exec.memory = { ...this.exec.memory, actionInProgress: null };
    this.wake();
  }

  private async tickNow(): Promise<HaDecision> {
    const d = this.d;
    const dcs = await this.readStore();
    const pg = await d.pg.observe();
    this.view.pg = pg;
    this.trackPgDown(pg);
    const base = await this.withFailsafe(this.observation(dcs, pg));
    const peers = needsPeerStatuses(base) ? await this.fetchPeers(base) : null;
    const decision = decide({ ...base, peers });
    if (decision.action !== 'lead') {
      this.syncNamesSet = undefined;
      this.quorumSince = null;
      this.syncInNames.clear();
    }
    if (decision.action !== 'wait_for_wal' && this.exec.memory.takeoverWaitSince !== null) {
      this.exec.memory = { ...this.exec.memory, takeoverWaitSince: null };
    }
    d.log.info({ action: decision.action }, decision.reason);
    this.view.lastAction = { action: decision.action, reason: decision.reason };
    try {
      await execute(decision, { store: d.store, pg: d.pg, clock: d.clock, log: d.log, config: d.config, ...(d.watchdog ? { watchdog: d.watchdog } : {}) }, this.exec);
    } catch (e) {
      d.log.error({ action: decision.action, err: errorMessage(e) }, 'action failed');
    }
    await this.afterAction(decision, dcs, pg);
    this.view.lastLoopAt = d.clock.now();
    return decision;
  }

  /**
   * Stop the loop (Patroni's Ha.shutdown): while paused, leave PostgreSQL and the lock alone; else stop
   * PostgreSQL (fast, escalated after shutdownTimeoutMs) and, on the primary, once it is down, publish
   * the shutdown checkpoint as optime and hand the lock over; a PostgreSQL that did not stop keeps it.
   */
  async stop(opts: { stopPostgres: boolean }): Promise<void> {
    this.stopping = true;
    this.wake();
    this.unwatch?.();
    await this.running;
    const { pg, store, log } = this.d;
    if (this.background.size > 0) {
      // Stopping PostgreSQL under an initdb or a start would leave it half done, and the action would go on
      // afterwards (a bootstrap starts PostgreSQL when initdb ends): let it finish, then stop what it made.
      // A replica copy may take hours: it is cancelled (a partial pg_basebackup copy is removed; the next
      // start copies again).
      log.info({ action: this.exec.memory.actionInProgress?.name ?? 'a manual action' }, 'shutting down: waiting for the action in progress to finish');
      pg.cancelCopy();
      await Promise.allSettled([...this.background]);
      // It may have taken the lock (a bootstrap does): look again, so a primary we stop hands it over.
      const cluster = await store.load().catch(() => null);
      if (cluster) this.view.isLeader = cluster.leader?.name === this.d.config.name;
    }
    this.clearGuard();
    if (!opts.stopPostgres || this.view.dynamic.pause) {
      if (opts.stopPostgres) log.info('paused: the leader key is not deleted and postgresql is not stopped');
      this.d.watchdog?.disable();
      return;
    }
    const wasLeader = this.view.isLeader;
    const timeoutMs = shutdownTimeoutMs(this.view.dynamic);
    try {
      await pg.stop('fast', timeoutMs);
      log.info('postgresql stopped');
      this.d.watchdog?.disable();
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'could not stop postgresql cleanly');
    }
    // Peers racing for the lock ask our REST API first: it must no longer say "running primary".
    const after = await pg.observe().catch(() => null);
    this.view.pg = after;
    this.updateRole(after);
    if (!after || after.running) {
      log.error('postgresql shutdown failed: the leader key is not removed');
      return;
    }
    if (wasLeader) {
      try {
        const optime = shutdownOptime(after);
        if (optime !== undefined) await store.updateLeader({ optime });
        await store.deleteLeader();
        log.info({ optime }, 'leader key released: a replica can take over at once');
      } catch (e) {
        log.error({ err: errorMessage(e) }, 'could not release the leader key; it expires after ttl');
      }
    }
    // Patroni's touch_member after the stop: the member key says stopped.
    this.view.state = 'stopped';
    await this.touchMember(after).catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const started = this.d.clock.now();
      await this.tick().catch((e: unknown) => this.d.log.error({ err: errorMessage(e) }, 'HA tick failed'));
      if (this.stopping) break;
      this.runScheduledRestart();
      await this.sleepUntil(Math.min(started + this.view.dynamic.loop_wait * 1000, this.nextScheduledAt()));
    }
  }

  /** Monotonic time of the next scheduled switchover or restart, so it runs on time, not up to loop_wait late. */
  private nextScheduledAt(): number {
    const { clock } = this.d;
    const times = [this.view.cluster?.failover?.scheduled_at, this.scheduledRestart?.schedule]
      .map((t) => (t ? Date.parse(t) : NaN))
      .filter((t) => !Number.isNaN(t) && t > clock.wallNow().getTime());
    return times.length ? clock.now() + Math.min(...times) - clock.wallNow().getTime() : Infinity;
  }

  private async sleepUntil(at: number): Promise<void> {
    if (this.pendingWake) {
      this.pendingWake = false;
      return;
    }
    const ac = new AbortController();
    this.wakeUp = () => ac.abort();
    await this.d.clock.sleep(Math.max(0, at - this.d.clock.now()), ac.signal);
    this.wakeUp = null;
    this.pendingWake = false;
  }

  private async readStore(): Promise<DcsView> {
    const { store, clock } = this.d;
    try {
      await store.refreshSession();
      const cluster = await store.load();
      this.prevMembers = this.exec.cluster?.members ?? [];
      this.exec.cluster = cluster;
      this.view.cluster = cluster;
      this.view.dcsLastSeen = Math.floor(clock.wallNow().getTime() / 1000);
      this.view.isLeader = cluster.leader?.name === this.d.config.name;
      this.applyDynamic(cluster);
      this.failsafe.storeRead(cluster, this.d.config.name);
      return { ok: true, cluster };
    } catch (e) {
      return { ok: false, error: errorMessage(e) };
    }
  }

  private applyDynamic(cluster: Cluster): void {
    const dynamic = this.d.dynamicFrom((cluster.config?.value as Record<string, unknown>) ?? null);
    const prev = this.view.dynamic;
    this.view.dynamic = dynamic;
    if (dynamic.ttl !== prev.ttl || dynamic.retry_timeout !== prev.retry_timeout) {
      this.d.store.setTimeouts({ ttl: dynamic.ttl, retryTimeout: dynamic.retry_timeout });
    }
    this.d.pg.configure(dynamic);
  }

  private observation(dcs: DcsView, pg: PgObservation): Omit<HaObservation, 'peers'> {
    const { config, clock, store } = this.d;
    const dyn = this.view.dynamic;
    const settings: HaSettings = {
      ttl: dyn.ttl,
      loopWait: dyn.loop_wait,
      maximumLagOnFailover: dyn.maximum_lag_on_failover,
      usePgRewind: config.postgresql.use_pg_rewind ?? dyn.postgresql.use_pg_rewind,
      removeDataDirectoryOnRewindFailure: config.postgresql.remove_data_directory_on_rewind_failure,
      removeDataDirectoryOnDivergedTimelines: config.postgresql.remove_data_directory_on_diverged_timelines,
      pause: dyn.pause,
      synchronousMode: dyn.synchronous_mode !== false,
      quorumCommit: dyn.synchronous_mode === 'quorum',
      replicaWithoutLeader: config.postgresql.create_replica_methods.some((m) => replicaMethodWorksWithoutLeader(config, m)),
      standbyCluster: standbyClusterSettings(config, dyn),
    };
    return {
      now: clock.now(),
      wallNow: clock.wallNow().getTime(),
      me: { name: config.name, tags: config.tags },
      settings,
      dcs,
      sessionValidUntil: store.sessionValidUntil(),
      pg,
      memory: this.exec.memory,
      ...(this.d.watchdog ? { watchdogHealthy: this.d.watchdog.isHealthy() } : {}),
    };
  }

  private trackPgDown(pg: PgObservation): void {
    const m = this.exec.memory;
    if (pg.running && m.pgDownSince !== null) this.exec.memory = { ...m, pgDownSince: null };
    if (!pg.running && m.pgDownSince === null && pg.dataDir === 'initialized') {
      this.exec.memory = { ...m, pgDownSince: this.d.clock.now() };
    }
    const stalled = pg.running && pg.accepting && pg.inRecovery === true && !pg.streaming;
    const n = this.exec.memory;
    if (!stalled && n.notStreamingSince !== null) this.exec.memory = { ...n, notStreamingSince: null };
    if (stalled && n.notStreamingSince === null) this.exec.memory = { ...n, notStreamingSince: this.d.clock.now() };
  }

  /** The failsafe part of the observation; a primary that cannot reach the store asks every member here. */
  private async withFailsafe(o: Omit<HaObservation, 'peers'>): Promise<Omit<HaObservation, 'peers'>> {
    const dyn = this.view.dynamic;
    const { conn_url, api_url } = this.memberData(o.pg);
    const timeout = Math.min(FAILSAFE_POST_TIMEOUT_MS, dyn.retry_timeout * 1000);
    // As Patroni's check_failsafe_topology: the slot positions go along, for the replicas' copies of them.
    const slots = this.slots.publishedSlots();
    const self = { name: this.d.config.name, conn_url, api_url, ...(slots ? { slots } : {}) };
    const failsafe = await this.failsafe.observe(o, dyn.failsafe_mode, self, this.d.postFailsafe, timeout);
    if (failsafe.acked) this.d.log[failsafe.acked.ok ? 'info' : 'warn']({ failsafe: failsafe.acked.ok }, `failsafe: ${failsafe.acked.detail}`);
    return { ...o, failsafe };
  }

  /** Failsafe mode on the leader: keep the `failsafe` key equal to the members we count on (Patroni's update_lock). */
  private async writeFailsafe(cluster: Cluster): Promise<void> {
    const { store, config, log } = this.d;
    if (!this.view.dynamic.failsafe_mode || !store.setFailsafe) return;
    const value = failsafeTopology(cluster.members, config.name, this.memberData(this.view.pg).api_url);
    if (sameTopology(this.failsafe.topology(), value)) return;
    if (await store.setFailsafe(value)) {
      this.failsafe.wrote(value);
      log.info({ failsafe: value }, 'failsafe topology written');
    }
  }

  /** GET /patroni of every other member we know of (this and the previous snapshot), in parallel. */
  private async fetchPeers(o: Omit<HaObservation, 'peers'>): Promise<PeerStatus[]> {
    const cluster = o.dcs.ok ? o.dcs.cluster : null;
    const byName = new Map<string, string>();
    // Failsafe mode: also every member the last leader counted on (Patroni's _is_healthiest_node).
    if (this.view.dynamic.failsafe_mode) for (const [n, url] of Object.entries(cluster?.failsafe ?? {})) if (n !== this.d.config.name && url) byName.set(n, url);
    for (const m of [...this.prevMembers, ...(cluster?.members ?? [])]) {
      if (m.name !== this.d.config.name && m.data.api_url) byName.set(m.name, m.data.api_url);
    }
    const timeout = Math.min(2000, this.view.dynamic.retry_timeout * 1000);
    return Promise.all(
      [...byName].map(async ([name, url]) => peerStatus(name, await this.d.fetchPeer(url, timeout).catch(() => null))),
    );
  }

  /** Publish our member key; on the leader also the optime, slots and timeline history. */
  private async afterAction(decision: HaDecision, dcs: DcsView, before: PgObservation): Promise<void> {
    // After an action PostgreSQL may have changed: look again; after noop/lead the first look stands.
    const unchanged = decision.action === 'noop' || decision.action === 'lead';
    const pg = unchanged ? before : await this.d.pg.observe().catch(() => this.view.pg);
    if (pg) this.view.pg = pg;
    this.updateRole(pg);
    // Patroni: no watchdog while paused or when PostgreSQL is not a running primary (it is armed again before a promotion).
    // A bootstrap in progress keeps the watchdog it armed (Patroni arms it before initdb).
    const bootstrapping = this.exec.memory.actionInProgress?.name === 'initializing new cluster';
    if (this.view.dynamic.pause || (!bootstrapping && (!pg?.running || pg.inRecovery !== false))) this.d.watchdog?.disable();
    else if (bootstrapping) this.d.watchdog?.keepalive();
    if (!dcs.ok) {
      // Failsafe mode keeps a primary running without the store: it is still fed (Patroni's _handle_dcs_error).
      if (this.failsafe.isActive()) this.d.watchdog?.keepalive();
      return this.armGuard(pg);
    }
    try {
      if (pg?.running) await this.reloadIfParametersChanged();
      const leading = decision.action === 'lead' || decision.action === 'lead_standby';
      if (leading && pg) await this.leaderHousekeeping(dcs.cluster, pg);
      else if (pg?.running && pg.accepting && pg.inRecovery === true && !this.exec.memory.actionInProgress) {
        await this.slots.sync(dcs.cluster, pg, this.view.dynamic, 'replica');
      }
      if (!leading) this.slots.notLeading();
      await this.touchMember(pg);
    } catch (e) {
      this.d.log.warn({ err: errorMessage(e) }, 'could not publish member state');
    }
    this.armGuard(pg);
  }

  private async publishNow(state?: string): Promise<void> {
    const pg = await this.d.pg.observe();
    this.view.pg = pg;
    // A long action saying where it is holds for the rest of it: ticks meanwhile publish the same state.
    const act = this.exec.memory.actionInProgress;
    if (state && act) this.exec.memory = { ...this.exec.memory, actionInProgress: { ...act, state } };
    this.updateRole(pg);
    if (state) this.view.state = state;
    await this.touchMember(pg);
  }

  /**
   * Member key writes go one at a time, each built when its turn comes, so the newest state is the one
   * written last: a tick's write must not land after a long action's 'running' with an older state
   * (replicas waiting for a running leader to copy from then waited a whole loop_wait).
   */
  private touchMember(pg: PgObservation | null): Promise<boolean> {
    const write = this.memberWrites.then(() => this.d.store.touchMember(this.memberData(pg)));
    this.memberWrites = write.catch(() => undefined);
    return write;
  }

  private async leaderHousekeeping(cluster: Cluster, pg: PgObservation): Promise<void> {
    const { store, log } = this.d;
    const status: ClusterStatus = { optime: pg.walPosition ?? undefined, ...this.slots.leaderStatus(cluster, pg, this.view.dynamic) };
    if (!(await store.updateLeader(status))) {
      log.error('could not renew the leader lock: it is no longer ours');
      this.view.isLeader = false;
      this.wake();
      return;
    }
    if (!(await this.armedWatchdog(pg))) return;
    // A standby leader (standby.ts) keeps slots for its members; no history, no synchronous standbys.
    if (pg.inRecovery === true) return this.slots.sync(cluster, pg, this.view.dynamic, 'standby_leader');
    await this.writeFailsafe(cluster);
    await this.slots.sync(cluster, pg, this.view.dynamic, 'primary');
    await this.updateHistory(cluster, pg);
    await this.syncReplication(cluster, pg);
  }

  /**
   * Patroni's enforce_primary_role, each leader tick: a running primary (not paused) has its watchdog
   * armed and fed; one whose required watchdog cannot be armed gives the lock back and stops at once.
   */
  private async armedWatchdog(pg: PgObservation): Promise<boolean> {
    const wd = this.d.watchdog;
    if (!wd) return true;
    if (pg.running && pg.inRecovery === false && !this.view.dynamic.pause && !wd.isRunning() && !wd.activate()) {
      this.d.log.error('the watchdog is required and could not be activated: releasing the leader lock and stopping postgresql');
      await this.d.store.deleteLeader();
      this.view.isLeader = false;
      await this.d.pg.stop('immediate', 30_000);
      this.wake();
      return false;
    }
    wd.keepalive();
    return true;
  }

  /**
   * synchronous_mode on the leader (Patroni's process_sync_replication, without its loop_wait pauses):
   * shrink the `sync` key to members that stay synchronous, point synchronous_standby_names at the
   * chosen standbys, watch closely until PostgreSQL reports them synchronous with every earlier WAL
   * record flushed, then record them in `sync` — only members listed there may be promoted.
   */
  private async syncReplication(cluster: Cluster, pg: PgObservation): Promise<void> {
    const { store, config, clock } = this.d;
    const dyn = this.view.dynamic;
    const me = config.name;
    if (dyn.synchronous_mode === false) {
      if (this.syncNamesSet !== undefined) await this.d.pg.setSynchronousStandbyNames(undefined);
      this.syncNamesSet = undefined;
      this.syncInNames.clear();
      if (cluster.sync) await store.deleteSync();
      return;
    }
    if (dyn.synchronous_mode === 'quorum') return this.quorumReplication(cluster, pg);
    const count = Math.max(1, dyn.synchronous_node_count);
    const current = cluster.sync?.leader === me ? [...cluster.sync.sync_standby] : [];
    const plan = (rows: PgObservation['replication']) => planSync({ me, members: cluster.members, replication: rows, inNames: this.syncInNames, count });
    let p = plan(pg.replication);
    const names = synchronousStandbyNames(p.picked, count, dyn.synchronous_mode_strict);
    if (names !== this.syncNamesSet) {
      const keep = current.filter((n) => p.picked.includes(n) && p.confirmed.includes(n));
      if (!sameSet(keep, current)) await this.writeSync(keep);
      await this.d.pg.setSynchronousStandbyNames(names);
      this.syncNamesSet = names;
      const lsn = (await this.d.pg.observe()).walPosition ?? 0;
      this.syncInNames = new Map(p.picked.map((n) => [n, this.syncInNames.get(n) ?? lsn]));
      const deadline = clock.now() + SYNC_CONFIRM_MS;
      for (;;) {
        p = plan((await this.d.pg.observe()).replication);
        if (sameSet(p.confirmed, p.picked) || clock.now() > deadline) break;
        await clock.sleep(20);
      }
      this.d.log.info({ synchronous_standby_names: names, confirmed: p.confirmed }, 'synchronous standbys chosen');
      if (!sameSet(p.confirmed, keep) || cluster.sync?.leader !== me) await this.writeSync(p.confirmed);
      this.soonIfShort(p.confirmed.length, count, cluster);
      return;
    }
    if (!sameSet(p.confirmed, current) || cluster.sync?.leader !== me) await this.writeSync(p.confirmed);
    this.soonIfShort(p.confirmed.length, count, cluster);
  }

  /** Fewer synchronous standbys than wanted while others could be: look again in a moment, not after loop_wait. */
  private soonIfShort(have: number, want: number, cluster: Cluster): void {
    const possible = cluster.members.filter((m) => m.name !== this.d.config.name && m.data.tags?.nosync !== true).length;
    if (have < Math.min(want, possible)) setTimeout(() => this.wake(), SYNC_RECHECK_MS).unref();
  }

  /**
   * Quorum commit: list every eligible standby in `ANY k (…)`. The `sync` key must always under-promise:
   * before the list changes it is widened (union of old and new, the smaller k); it names exactly the
   * new list only once k of its members flushed everything written before the change.
   */
  private async quorumReplication(cluster: Cluster, pg: PgObservation): Promise<void> {
    const { clock, config } = this.d;
    const dyn = this.view.dynamic;
    const me = config.name;
    const count = Math.max(1, dyn.synchronous_node_count);
    const mine = cluster.sync?.leader === me;
    const key = { names: mine ? [...cluster.sync!.sync_standby] : [], quorum: mine ? (cluster.sync!.quorum ?? 0) : 0 };
    const plan = (rows: PgObservation['replication']) =>
      planQuorum({ me, members: cluster.members, replication: rows, count, strict: dyn.synchronous_mode_strict, since: this.quorumSince });
    let p = plan(pg.replication);
    if (p.names !== this.syncNamesSet) {
      if (key.names.length > 0) {
        const union = [...new Set([...key.names, ...p.listed])];
        const k = Math.min(key.quorum, p.k);
        if (!sameSet(union, key.names) || k !== key.quorum) await this.writeSync(union, k);
      }
      await this.d.pg.setSynchronousStandbyNames(p.names);
      this.syncNamesSet = p.names;
      this.quorumSince = (await this.d.pg.observe()).walPosition ?? 0;
      const deadline = clock.now() + SYNC_CONFIRM_MS;
      for (;;) {
        p = plan((await this.d.pg.observe()).replication);
        if (p.covered.length >= p.k || clock.now() > deadline) break;
        await clock.sleep(20);
      }
      this.d.log.info({ synchronous_standby_names: p.names, covered: p.covered }, 'quorum standbys chosen');
    }
    if (p.listed.length === 0) {
      // Nobody to wait for (non-strict: commits run unprotected): promise nothing.
      if (key.names.length > 0) await this.writeSync([], 0);
    } else if (p.covered.length >= p.k && (!sameSet(p.listed, key.names) || key.quorum !== p.k)) {
      await this.writeSync(p.listed, p.k);
    }
    this.soonIfShort(p.covered.length >= p.k ? p.listed.length : 0, count, cluster);
  }

  private async writeSync(names: readonly string[], quorum?: number): Promise<void> {
    const c = await this.d.store.load();
    const value = { leader: this.d.config.name, sync_standby: names.length ? [...names].sort().join(',') : null, ...(quorum !== undefined && names.length ? { quorum } : {}) };
    const ok = await this.d.store.setSync(value, c.sync?.version ?? null);
    if (!ok) this.d.log.warn('could not record the synchronous standbys (sync key changed concurrently)');
  }

  /** Dynamic `postgresql.parameters` changed in the store: every member rewrites its config and reloads. */
  private async reloadIfParametersChanged(): Promise<void> {
    const params = JSON.stringify(this.view.dynamic.postgresql.parameters);
    if (this.appliedParams && params !== this.appliedParams) {
      this.d.log.info('dynamic postgresql parameters changed: reloading');
      await this.d.pg.reloadConfig();
    }
    this.appliedParams = params;
  }

  /** After a promotion the leader appends the timeline switch to `history` (Patroni's update_cluster_history). */
  private async updateHistory(cluster: Cluster, pg: PgObservation): Promise<void> {
    const tl = pg.timeline;
    if (!tl || tl <= 1) return;
    const last = cluster.history.at(-1)?.[0] ?? 0;
    if (last >= tl - 1) return;
    const entries = await this.d.pg.timelineHistory?.().catch(() => null);
    if (!entries) return;
    const ts = this.d.clock.wallNow().toISOString().replace('Z', '+00:00');
    const known = new Map(cluster.history.map((h) => [h[0], h]));
    const merged = entries.map(([t, lsn, reason]) => known.get(t) ?? ([t, lsn, reason, ts, this.d.config.name] as const));
    await this.d.store.setHistory(merged);
  }

  private updateRole(pg: PgObservation | null): void {
    const v = this.view;
    const act = this.exec.memory.actionInProgress;
    if (act) v.state = act.state ?? act.name;
    else if (!pg || pg.dataDir !== 'initialized') v.state = 'stopped';
    else v.state = pg.running ? (pg.accepting ? 'running' : 'starting') : 'stopped';
    if (!pg || pg.dataDir !== 'initialized') v.role = 'uninitialized';
    else if (pg.running && pg.inRecovery === false) v.role = 'master';
    else if (pg.running && v.isLeader && isStandbyClusterSection(v.dynamic.raw.standby_cluster)) v.role = 'standby_leader';
    else v.role = 'replica';
  }

  private memberData(pg: PgObservation | null): MemberData {
    const { config, version } = this.d;
    const data: MemberData = {
      conn_url: `postgres://${config.postgresql.connect_address}/postgres`,
      api_url: `${config.restapi.certfile ? 'https' : 'http'}://${config.restapi.connect_address}/patroni`,
      state: this.view.state,
      role: this.view.role,
      version,
    };
    if (pg?.running && pg.walPosition !== null) data.xlog_location = pg.walPosition;
    if (pg?.timeline) data.timeline = pg.timeline;
    if (Object.keys(config.tags).length > 0) data.tags = config.tags;
    if (pg?.pendingRestart) data.pending_restart = true;
    const sr = this.scheduledRestartAsPatroni();
    if (sr) data.scheduled_restart = sr;
    // Patroni's touch_member: patronictl pause/resume --wait watch for this flag on every member.
    if (this.view.dynamic.pause) data.pause = true;
    return data;
  }

  /** Backup for the loop: stop a primary at once when our session may have expired. */
  private armGuard(pg: PgObservation | null): void {
    this.clearGuard();
    // Maintenance mode: a paused primary is not demoted for a store outage (decide.ts), nor by the guard.
    if (!pg?.running || pg.inRecovery !== false || this.stopping || this.view.dynamic.pause) return;
    const margin = Math.min(1000, this.view.dynamic.ttl * 100);
    // Failsafe mode: members that acknowledged us do not race before failsafe.validUntil().
    const validUntil = Math.max(this.d.store.sessionValidUntil(), this.failsafe.validUntil());
    const delay = validUntil - this.d.clock.now() - margin;
    this.guard = setTimeout(() => {
      this.d.log.error('lease guard: the leader lock may have expired and the loop did not demote; stopping postgresql now');
      void this.d.pg.stop('immediate', 30_000).catch(() => undefined);
    }, Math.max(0, delay));
    this.guard.unref();
  }

  private clearGuard(): void {
    if (this.guard) clearTimeout(this.guard);
    this.guard = null;
  }
}

function peerStatus(name: string, body: Record<string, unknown> | null): PeerStatus {
  if (!body) return { name, reachable: false, inRecovery: null, walPosition: null, nofailover: false };
  const xlog = (body.xlog ?? {}) as Record<string, unknown>;
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  const positions = [num(xlog.location), num(xlog.received_location), num(xlog.replayed_location)].filter(
    (v): v is number => v !== null,
  );
  const tags = (body.tags ?? {}) as Record<string, unknown>;
  return {
    name,
    reachable: body.state === 'running',
    inRecovery: body.role === 'master' || body.role === 'primary' ? false : true,
    walPosition: positions.length ? Math.max(...positions) : null,
    nofailover: tags.nofailover === true,
  };
}

