/**
 * Replication slots, each HA tick (Patroni 4's Ha._sync_replication_slots + SlotsHandler): plan with the pure
 * src/ha/slots.ts, act through the PostgresControl's SlotsPort, and on the leader compute what `status`
 * publishes (slot positions and retain_slots). One instance per daemon; it remembers only what Patroni does:
 * when the leader last saw each member slot, and which copied logical slots are not yet safe to use.
 */
import type { DynamicConfig } from '../config/types.js';
import type { Cluster, ClusterStatus } from '../dcs/types.js';
import type { CopiedSlot, SlotsPort } from '../postgres/slots.js';
import { RECOPY_SQLSTATES } from '../postgres/slots.js';
import type { PgObservation, PostgresControl } from '../postgres/types.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import {
  needsHotStandbyFeedback,
  planSlots,
  readSlotsConfig,
  retainSlots,
  slotNameOnPrimary,
  statusSlots,
  type DesiredSlot,
  type LocalSlot,
  type SlotRole,
} from './slots.js';

/** Restarting a replica to install copied logical slots: bounded like a manual restart. */
const COPY_RESTART_MS = 120_000;

export interface SlotKeeperDeps {
  readonly me: string;
  readonly tags: Readonly<Record<string, unknown>>;
  readonly pg: PostgresControl;
  readonly log: Logger;
  /** Wall-clock milliseconds (member_slots_ttl is about when the leader last saw a member). */
  readonly wallNow: () => number;
}

export class SlotKeeper {
  /** The slots listed by the last pass, and what we wanted then: the leader publishes their positions. */
  private lastLocal: readonly LocalSlot[] = [];
  private lastDesired: Readonly<Record<string, DesiredSlot>> = {};
  /** Leader only: member slot → when last seen (null: not leading). */
  private seen: Map<string, number> | null = null;
  private published: Readonly<Record<string, number>> | null = null;
  /** Copied logical slots not yet proven safe after a failover → catalog_xmin on the leader (null: not known yet). */
  private readonly unready = new Map<string, number | null>();
  /** Logical copies whose advance failed for good: copy them again. */
  private readonly recopy = new Set<string>();
  private lastRole: SlotRole | null = null;
  private lastProblems = '';

  constructor(private readonly d: SlotKeeperDeps) {}

  /** We do not lead (any more): the retention memory is rebuilt from `status` when we lead again. */
  notLeading(): void {
    this.seen = null;
    this.published = null;
  }

  /**
   * The slot positions last published in `status` as the leader (null: none since we lead): a primary
   * cut off from the store sends them with its POST /failsafe, as Patroni does.
   */
  publishedSlots(): Readonly<Record<string, number>> | null {
    return this.published && Object.keys(this.published).length ? this.published : null;
  }

  /** What the leader publishes in `status` besides optime (Patroni 4's update_leader). */
  leaderStatus(cluster: Cluster, pg: PgObservation, dynamic: DynamicConfig): Pick<ClusterStatus, 'slots' | 'retain_slots'> {
    const { config } = readSlotsConfig(dynamic);
    const now = this.d.wallNow();
    // Patroni's acquire_leader_lock: every slot the last leader retained gets a fresh retention period.
    if (this.seen === null) this.seen = new Map((cluster.status.retain_slots ?? []).map((n) => [n, now]));
    const published = statusSlots({
      me: this.d.me,
      walPosition: pg.walPosition,
      local: this.lastLocal,
      desired: this.lastDesired,
      config,
      members: cluster.members,
      serverVersion: pg.serverVersion ?? 0,
    });
    this.published = published;
    const r = retainSlots({ seen: this.seen, published, me: this.d.me, members: cluster.members, config, now });
    for (const n of r.expired) this.d.log.info({ slot: n }, `replication slot of an absent member expired after member_slots_ttl (${config.memberSlotsTtlS} s)`);
    this.seen = r.seen;
    return {
      ...(Object.keys(published).length ? { slots: published } : {}),
      ...(r.list.length ? { retain_slots: r.list } : {}),
    };
  }

  /** One pass over the local server's slots. Never throws: a failure is logged and retried next tick. */
  async sync(cluster: Cluster, pg: PgObservation, dynamic: DynamicConfig, role: SlotRole): Promise<void> {
    try {
      await this.syncNow(cluster, pg, dynamic, role);
    } catch (e) {
      this.d.log.warn({ err: errorMessage(e) }, 'replication slot sync failed');
    }
  }

  private async syncNow(cluster: Cluster, pg: PgObservation, dynamic: DynamicConfig, role: SlotRole): Promise<void> {
    const { config, problems: configProblems } = readSlotsConfig(dynamic);
    if (role === 'primary' && this.lastRole === 'replica') this.promoted();
    this.lastRole = role;
    const nofailover = this.d.tags.nofailover === true;
    const base = { me: this.d.me, role, nofailover, cluster, config, serverVersion: pg.serverVersion ?? 0 };
    const port = this.d.pg.replicationSlots;
    if (role === 'replica') await port.setHotStandbyFeedback(needsHotStandbyFeedback(base));
    const local = await port.list();
    const plan = planSlots({ ...base, local, replayLsn: pg.replayLsn, paused: dynamic.pause });
    this.logProblems([...configProblems, ...plan.problems]);
    this.lastLocal = local;
    this.lastDesired = plan.desired;
    for (const { name, reason } of plan.drop) {
      const r = await port.drop(name).catch((e: unknown) => this.failed(`drop replication slot ${name}`, e));
      if (r?.dropped) this.d.log.info({ slot: name }, `dropped replication slot: ${reason}`);
      else if (r?.active) this.d.log.warn({ slot: name }, 'unable to drop replication slot: it is active');
      this.unready.delete(name);
    }
    for (const name of plan.busy) this.d.log.debug({ slot: name }, 'replication slot is active: not dropped');
    for (const name of plan.createPhysical) {
      await port.createPhysical(name).then(
        () => this.d.log.info({ slot: name }, 'created physical replication slot'),
        (e: unknown) => this.failed(`create physical replication slot ${name}`, e),
      );
    }
    for (const s of plan.createLogical) {
      await port.createLogical(s.name, s.database, s.plugin).then(
        () => this.d.log.info({ slot: s.name, database: s.database, plugin: s.plugin }, 'created logical replication slot'),
        (e: unknown) => this.failed(`create logical replication slot ${s.name} (plugin ${s.plugin})`, e),
      );
    }
    for (const s of plan.advancePhysical) {
      await port.advance(s.name, s.lsn, null).catch((e: unknown) => this.failed(`advance replication slot ${s.name}`, e));
    }
    if (role !== 'replica') {
      this.unready.clear();
      this.recopy.clear();
      return;
    }
    for (const s of plan.advanceLogical) {
      await port.advance(s.name, s.lsn, s.database).catch((e: unknown) => {
        this.failed(`advance logical replication slot ${s.name}`, e);
        if (RECOPY_SQLSTATES.includes(String((e as { code?: string }).code ?? ''))) this.recopy.add(s.name);
      });
    }
    await this.checkReadiness(cluster, port, local);
    const copy = [...new Set([...plan.copyLogical, ...this.recopy])].filter((n) => plan.desired[n]?.type === 'logical');
    if (copy.length) await this.copyLogical(cluster, port, copy, plan.desired);
  }

  /** Patroni's copy_logical_slots: read the state files on the leader, install them while stopped. */
  private async copyLogical(cluster: Cluster, port: SlotsPort, names: string[], desired: Readonly<Record<string, DesiredSlot>>): Promise<void> {
    const leader = leaderEndpoint(cluster);
    if (!leader) return;
    let rows: CopiedSlot[];
    try {
      rows = await port.readFromLeader(leader, names);
    } catch (e) {
      this.failed(`copy logical slots from the leader ${cluster.leader?.name}`, e);
      return;
    }
    const fits = rows.filter((r) => {
      const want = desired[r.name];
      const ok = want?.type === 'logical' && r.type === 'logical' && want.database === r.database && want.plugin === r.plugin;
      if (!ok) this.d.log.warn({ slot: r.name }, `not copying logical slot ${r.name}: the configuration says ${JSON.stringify(want)}, the primary has ${r.plugin} in ${r.database}`);
      return ok;
    });
    if (!fits.length) return;
    this.d.log.info({ slots: fits.map((r) => r.name) }, 'copying logical slots from the primary (restarting postgresql)');
    await port.install(fits, COPY_RESTART_MS);
    for (const r of fits) {
      this.unready.set(r.name, null);
      this.recopy.delete(r.name);
    }
  }

  /**
   * Patroni's check_logical_slots_readiness: a copied logical slot is safe after a failover once the
   * leader's physical slot for us (hot_standby_feedback) holds a catalog_xmin that has overtaken the
   * logical slot's catalog_xmin on the leader, and is not newer than the copy's.
   */
  private async checkReadiness(cluster: Cluster, port: SlotsPort, local: readonly LocalSlot[]): Promise<void> {
    if (!this.unready.size) return;
    const leader = leaderEndpoint(cluster);
    const mySlot = slotNameOnPrimary(cluster, this.d.me, this.d.tags);
    if (!leader || !mySlot) return;
    let xmins: Map<string, number | null>;
    try {
      xmins = await port.leaderCatalogXmins(leader, [...[...this.unready].filter(([, v]) => v === null).map(([n]) => n), mySlot]);
    } catch (e) {
      this.failed(`check the physical slot ${mySlot} on the primary`, e);
      return;
    }
    if (!xmins.has(mySlot)) {
      this.d.log.warn({ slot: mySlot }, 'our physical slot does not exist on the primary');
      return;
    }
    const physical = xmins.get(mySlot) ?? null;
    if (physical === null) {
      if (!(await port.hotStandbyFeedback().catch(() => true))) this.d.log.error('logical slot failover requires hot_standby_feedback');
      return;
    }
    for (const [n, v] of xmins) if (n !== mySlot && this.unready.get(n) === null) this.unready.set(n, v ?? 0);
    for (const [name, primaryXmin] of [...this.unready]) {
      const mine = local.find((s) => s.name === name);
      if (!mine || (primaryXmin !== null && primaryXmin <= physical && physical <= (mine.catalogXmin ?? 0))) {
        this.unready.delete(name);
        if (mine) this.d.log.info({ slot: name }, `logical slot ${name} is safe to be used after a failover`);
      }
    }
  }

  private promoted(): void {
    if (this.unready.size) {
      this.d.log.warn({ slots: [...this.unready.keys()] }, 'logical replication slots that might be unsafe to use after promote');
    }
    this.unready.clear();
    this.recopy.clear();
  }

  private logProblems(problems: string[]): void {
    const key = problems.join('\n');
    if (key === this.lastProblems) return;
    this.lastProblems = key;
    for (const p of problems) this.d.log.warn(p);
  }

  private failed(what: string, e: unknown): null {
    this.d.log.error({ err: errorMessage(e) }, `failed to ${what}`);
    return null;
  }
}

/** The leader's PostgreSQL address, from its member key's conn_url. */
function leaderEndpoint(cluster: Cluster): { host: string; port: number } | null {
  const name = cluster.leader?.name;
  const m = name ? cluster.members.find((x) => x.name === name) : undefined;
  const url = m?.data.conn_url;
  if (typeof url !== 'string') return null;
  try {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432) };
  } catch {
    return null;
  }
}
