/**
 * Replication slots, planned purely (Patroni 4's Cluster.get_replication_slots + SlotsHandler.sync_replication_slots,
 * PostgreSQL ≥ 11 so slots can be advanced): which slots a member must have, and the steps that get the
 * local server there. Effects live in src/postgres/slots.ts; the HA loop glues them together.
 *
 * - Member slots: with `member_slots_ttl` > 0 every member (not only the leader) keeps a physical slot for
 *   every other member, advanced to the positions the leader publishes in `status.slots`, so that a promoted
 *   replica already holds WAL for everyone. With 0 only the members streaming from us get one.
 * - Permanent slots (`slots:` in the dynamic config): physical ones everywhere, logical ones created on the
 *   primary and copied to replicas (then advanced), so they survive a failover.
 * - `ignore_slots` matchers: never dropped nor altered. Anything else unknown is dropped (when inactive).
 * - `retain_slots` in `status`: slots of members that went away, kept until `member_slots_ttl` after the
 *   leader last saw them.
 */
import type { DynamicConfig } from '../config/types.js';
import { isObj, toInt, toNumber } from '../config/values.js';
import type { Cluster, Member } from '../dcs/types.js';
import { slotNameForMember } from '../postgres/types.js';

export type SlotType = 'physical' | 'logical';

/** Patroni's slot_name_re: what a permanent slot may be called. */
const SLOT_NAME_RE = /^[a-z0-9_]{1,63}$/;
/** pg_replication_slot_advance exists from PostgreSQL 11 on (Patroni's can_advance_slots). */
const CAN_ADVANCE_FROM = 110000;
const DEFAULT_MEMBER_SLOTS_TTL_S = 1800;

export interface IgnoreMatcher {
  readonly name?: string;
  readonly type?: string;
  readonly database?: string;
  readonly plugin?: string;
}

export interface SlotsConfig {
  readonly useSlots: boolean;
  /** `permanent_replication_slots`, `permanent_slots` or `slots`, as stored (validated per slot when planned). */
  readonly permanent: Readonly<Record<string, unknown>>;
  readonly ignore: readonly IgnoreMatcher[];
  readonly memberSlotsTtlS: number;
  readonly standbyCluster: boolean;
}

/** One slot on the local server (pg_replication_slots, temporary slots left out). */
export interface LocalSlot {
  readonly name: string;
  readonly type: SlotType;
  readonly plugin: string | null;
  readonly database: string | null;
  readonly active: boolean;
  readonly xmin: number | null;
  readonly catalogXmin: number | null;
  readonly restartLsn: number | null;
  readonly confirmedFlushLsn: number | null;
  /** reserved, extended, unreserved or lost (PostgreSQL 13+); lost: invalidated by max_slot_wal_keep_size. */
  readonly walStatus: string | null;
}

export interface DesiredSlot {
  readonly type: SlotType;
  readonly database?: string;
  readonly plugin?: string;
  /** Where the leader says the slot is (status.slots): a position to advance an idle copy to. */
  readonly lsn?: number;
  /** Someone should be streaming through it from us (so it advances by itself); undefined: unknown. */
  readonly expectedActive?: boolean;
}

export type SlotRole = 'primary' | 'standby_leader' | 'replica';

export interface SlotPlanInput {
  readonly me: string;
  readonly role: SlotRole;
  readonly nofailover: boolean;
  readonly cluster: Cluster;
  readonly config: SlotsConfig;
  readonly paused: boolean;
  readonly local: readonly LocalSlot[];
  /** pg_last_wal_replay_lsn() of a replica: logical slots cannot be advanced past it. */
  readonly replayLsn: number | null;
  readonly serverVersion: number;
}

export interface SlotPlan {
  readonly desired: Readonly<Record<string, DesiredSlot>>;
  readonly drop: ReadonlyArray<{ name: string; reason: string }>;
  readonly createPhysical: readonly string[];
  readonly createLogical: ReadonlyArray<{ name: string; database: string; plugin: string }>;
  readonly advancePhysical: ReadonlyArray<{ name: string; lsn: number }>;
  readonly advanceLogical: ReadonlyArray<{ name: string; database: string; lsn: number }>;
  /** Logical slots a replica lacks but the leader publishes: copy them from the leader. */
  readonly copyLogical: readonly string[];
  /** Slots we would drop but cannot: someone streams through them. */
  readonly busy: readonly string[];
  /** Configuration problems, to log (Patroni logs them as errors). */
  readonly problems: readonly string[];
}

// ---------- configuration ----------

const DURATION_UNITS_S: Readonly<Record<string, number>> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };

/** Patroni's parse_int(value, 's'): a number of seconds or a PostgreSQL-style duration ("30min", "5s"). */
export function parseSeconds(v: unknown): number | null {
  const n = toNumber(v);
  if (n !== null) return Math.round(n);
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)\s*$/.exec(v);
  return m ? Math.round(Number(m[1]) * DURATION_UNITS_S[m[2]!]!) : null;
}

/** The slot settings of the dynamic config; bad values give a problem and the default. */
export function readSlotsConfig(dynamic: DynamicConfig): { config: SlotsConfig; problems: string[] } {
  const raw = dynamic.raw;
  const problems: string[] = [];
  const perm = raw.permanent_replication_slots || raw.permanent_slots || raw.slots;
  const permanent = isObj(perm) ? perm : {};
  if (perm && !isObj(perm)) problems.push(`slots: expected a mapping, got ${JSON.stringify(perm)}`);
  const ignore: IgnoreMatcher[] = [];
  if (Array.isArray(raw.ignore_slots)) {
    for (const m of raw.ignore_slots) {
      if (!isObj(m)) {
        problems.push(`ignore_slots: expected mappings, got ${JSON.stringify(m)}`);
        continue;
      }
      const pick = (k: string) => (typeof m[k] === 'string' && m[k] !== '' ? { [k]: m[k] as string } : {});
      ignore.push({ ...pick('name'), ...pick('type'), ...pick('database'), ...pick('plugin') });
    }
  } else if (raw.ignore_slots != null) problems.push('ignore_slots: expected a list of mappings');
  let ttl = DEFAULT_MEMBER_SLOTS_TTL_S;
  if (raw.member_slots_ttl != null) {
    const s = parseSeconds(raw.member_slots_ttl);
    if (s === null || s < 0) problems.push(`member_slots_ttl: expected seconds or a duration, got ${JSON.stringify(raw.member_slots_ttl)}; using 30min`);
    else ttl = s;
  }
  return {
    config: { useSlots: dynamic.postgresql.use_slots, permanent, ignore, memberSlotsTtlS: ttl, standbyCluster: isObj(raw.standby_cluster) },
    problems,
  };
}

// ---------- which slots a member keeps ----------

function replicatefrom(m: Member): string | null {
  const r = m.data.tags?.replicatefrom;
  return typeof r === 'string' && r !== '' ? r : null;
}

function nostream(m: Member): boolean {
  const v = m.data.tags?.nostream;
  return v === true || v === 'true' || v === 'on' || v === 'yes';
}

/** Patroni's get_slot_name_on_primary: the slot on the primary that carries our WAL (cascades followed); null: none. */
export function slotNameOnPrimary(cluster: Cluster, me: string, myTags: Readonly<Record<string, unknown>>): string | null {
  const seen = new Set<string>();
  let name = me;
  let tags = myTags;
  for (;;) {
    seen.add(name);
    const ns = tags.nostream;
    if (ns === true || ns === 'true' || ns === 'on' || ns === 'yes') return null;
    const rf = typeof tags.replicatefrom === 'string' && tags.replicatefrom !== name ? tags.replicatefrom : null;
    const up = rf ? cluster.members.find((m) => m.name === rf) : undefined;
    if (!up) return slotNameForMember(name);
    if (seen.has(up.name)) return null;
    name = up.name;
    tags = up.data.tags ?? {};
  }
}

/** Patroni 4's _get_members_slots: physical slots for other members, with the position to advance them to. */
function memberSlots(i: SlotPlanInput, problems: string[]): Record<string, DesiredSlot> {
  const { cluster, config, me } = i;
  if (!config.useSlots) return {};
  const leaderName = cluster.leader?.name ?? null;
  const has = (n: string) => cluster.members.some((m) => m.name === n);
  const leading = i.role === 'primary' || i.role === 'standby_leader';
  const expectedActive = (m: Member): boolean => {
    const r = replicatefrom(m);
    return leading ? r === null || r === me || !has(r) : r === me && m.name !== leaderName;
  };
  let members = cluster.members.filter((m) => m.name !== me && !nostream(m));
  const retention = i.serverVersion >= CAN_ADVANCE_FROM && config.memberSlotsTtlS > 0;
  members = retention ? members.filter((m) => !i.nofailover || replicatefrom(m) === me) : members.filter(expectedActive);
  const published = cluster.status.slots ?? {};
  const out: Record<string, DesiredSlot> = {};
  const owners = new Map<string, string[]>();
  for (const m of members) {
    const slot = slotNameForMember(m.name);
    owners.set(slot, [...(owners.get(slot) ?? []), m.name]);
    let lsn = published[slot] ?? 0;
    // A cascading member's slot on the leader does not advance by itself: its own position does.
    if (replicatefrom(m) && typeof m.data.xlog_location === 'number') lsn = Math.max(lsn, m.data.xlog_location);
    out[slot] = { type: 'physical', lsn, expectedActive: expectedActive(m) };
  }
  const clashes = [...owners].filter(([, names]) => names.length > 1);
  if (clashes.length) {
    problems.push(`following cluster members share a replication slot name: ${clashes.map(([s, n]) => `${n.join(', ')} map to ${s}`).join('; ')}`);
  }
  const mine = slotNameForMember(me);
  if (!i.nofailover) {
    for (const s of cluster.status.retain_slots ?? []) if (!(s in out) && s !== mine) out[s] = { type: 'physical' };
  }
  return out;
}

function isLogicalSpec(v: Readonly<Record<string, unknown>>): boolean {
  return (v.type ?? 'logical') === 'logical' && typeof v.database === 'string' && v.database !== '' && typeof v.plugin === 'string' && v.plugin !== '';
}

function isPhysicalSpec(v: unknown): boolean {
  return !v || (isObj(v) && !isLogicalSpec(v) && (v.type ?? 'physical') === 'physical');
}

/** Permanent slot names that are physical (for retain_slots, which holds member slots only). */
export function permanentPhysicalNames(config: SlotsConfig): Set<string> {
  return new Set(Object.entries(config.permanent).filter(([, v]) => isPhysicalSpec(v)).map(([n]) => n));
}

/** Patroni 4's _get_permanent_slots: which permanent slots this member keeps at all. */
function permanentFor(i: SlotPlanInput): Array<[string, unknown]> {
  const { config } = i;
  if (!config.useSlots || i.nofailover) return [];
  const all = Object.entries(config.permanent);
  const canAdvance = i.serverVersion >= CAN_ADVANCE_FROM;
  const myTags = i.cluster.members.find((m) => m.name === i.me)?.data.tags ?? {};
  if (config.standbyCluster || slotNameOnPrimary(i.cluster, i.me, myTags) === null) {
    return canAdvance || i.role === 'standby_leader' ? all.filter(([, v]) => isPhysicalSpec(v)) : [];
  }
  return canAdvance || i.role === 'primary' ? all : all.filter(([, v]) => isObj(v) && isLogicalSpec(v));
}

/** Patroni 4's _merge_permanent_slots, with the LSN the leader publishes for each permanent slot. */
function mergePermanent(i: SlotPlanInput, slots: Record<string, DesiredSlot>, problems: string[]): void {
  const mine = slotNameForMember(i.me);
  const published = i.cluster.status.slots ?? {};
  const topology = new Map(i.cluster.members.map((m) => [slotNameForMember(m.name), replicatefrom(m)]));
  const memberLsn = new Map(
    i.cluster.members.filter((m) => replicatefrom(m)).map((m) => [slotNameForMember(m.name), typeof m.data.xlog_location === 'number' ? m.data.xlog_location : 0]),
  );
  const leading = i.role === 'primary' || i.role === 'standby_leader';
  const canAdvance = i.serverVersion >= CAN_ADVANCE_FROM;
  for (const [name, raw] of permanentFor(i)) {
    if (!SLOT_NAME_RE.test(name)) {
      problems.push(`invalid permanent replication slot name '${name}': only lower case letters, numbers and the underscore`);
      continue;
    }
    if (raw && !isObj(raw)) {
      problems.push(`bad value for slot '${name}' in permanent slots: ${JSON.stringify(raw)}`);
      continue;
    }
    const v: Record<string, unknown> = isObj(raw) ? { ...raw } : {};
    const type = v.type ?? (isLogicalSpec(v) ? 'logical' : 'physical');
    const lsn = Math.max(type === 'physical' ? (memberLsn.get(name) ?? 0) : 0, published[name] ?? 0);
    if (type === 'physical') {
      if (name === mine) continue; // no slot for ourselves
      if (name in slots) {
        problems.push(`permanent physical slot '${name}' has the name of a member's slot: the member's slot is kept`);
        continue;
      }
      slots[name] = { type: 'physical', ...(lsn ? { lsn } : {}), expectedActive: !topology.get(name) && leading };
      continue;
    }
    if (type === 'logical' && isLogicalSpec(v)) {
      if (!canAdvance) problems.push(`permanent logical slot '${name}' needs PostgreSQL 11 or later: not created`);
      else if (name in slots) problems.push(`permanent logical replication slot '${name}' conflicts with the physical slot of a cluster member: ignored`);
      else slots[name] = { type: 'logical', database: v.database as string, plugin: v.plugin as string, ...(lsn ? { lsn } : {}) };
      continue;
    }
    problems.push(`bad value for slot '${name}' in permanent slots: ${JSON.stringify(raw)}`);
  }
}

/** Every slot this member should have, by name (Patroni 4's Cluster.get_replication_slots). */
export function desiredSlots(i: SlotPlanInput, problems: string[] = []): Record<string, DesiredSlot> {
  const slots = memberSlots(i, problems);
  mergePermanent(i, slots, problems);
  return slots;
}

// ---------- the steps ----------

/** Patroni's compare_slots: same type, and for logical slots the same database and plugin. */
function sameKind(want: DesiredSlot, have: LocalSlot): boolean {
  return want.type === have.type && (want.type === 'physical' || (want.database === have.database && want.plugin === have.plugin));
}

export function isIgnored(matchers: readonly IgnoreMatcher[], s: LocalSlot): boolean {
  const attr: Record<string, string | null> = { type: s.type, database: s.database, plugin: s.plugin };
  return matchers.some(
    (m) => (m.name === undefined || m.name === s.name) && (['database', 'plugin', 'type'] as const).every((k) => !m[k] || m[k] === attr[k]),
  );
}

/** Invalidated by PostgreSQL (max_slot_wal_keep_size): it holds no WAL and nobody can stream through it. */
function isLost(s: LocalSlot): boolean {
  return s.walStatus === 'lost' || s.restartLsn === null;
}

export function planSlots(i: SlotPlanInput): SlotPlan {
  const problems: string[] = [];
  const desired = desiredSlots(i, problems);
  const local = new Map(i.local.map((s) => [s.name, s]));
  const drop: Array<{ name: string; reason: string }> = [];
  const busy: string[] = [];
  const gone = new Set<string>();
  const dropIt = (s: LocalSlot, reason: string) => {
    if (s.active) busy.push(s.name);
    else {
      drop.push({ name: s.name, reason });
      gone.add(s.name);
    }
  };
  for (const s of i.local) {
    const want = desired[s.name];
    if (!want) {
      if (!i.paused && !isIgnored(i.config.ignore, s)) dropIt(s, 'not a member, permanent or ignored slot');
    } else if (!sameKind(want, s)) {
      dropIt(s, `its kind changes from ${describe(s)} to ${describe(want)}`);
    }
  }
  const exists = (n: string) => local.has(n) && !gone.has(n);
  const createPhysical: string[] = [];
  const advancePhysical: Array<{ name: string; lsn: number }> = [];
  // Patroni's clean_inactive_physical_slots: not without a leader, nor on a leader still in recovery.
  const leaderName = i.cluster.leader?.name;
  const cleanXmin = !!leaderName && (leaderName !== i.me || i.role === 'primary');
  const leading = i.role === 'primary' || i.role === 'standby_leader';
  for (const [name, want] of Object.entries(desired)) {
    if (want.type !== 'physical') continue;
    const have = exists(name) ? local.get(name)! : null;
    if (have && !have.active && isLost(have)) {
      dropIt(have, have.walStatus === 'lost' ? 'invalidated by PostgreSQL (wal_status lost): recreating it' : 'it reserves no WAL (restart_lsn is null): recreating it');
    } else if (have && cleanXmin && want.expectedActive === false && have.xmin !== null && !have.active) {
      // Nobody streams through it, so its xmin would hold back vacuum forever.
      dropIt(have, `its xmin ${have.xmin} would hold back vacuum and nobody streams through it: recreating it`);
    } else if (have) {
      if (want.expectedActive !== true && have.xmin === null && !have.active && want.lsn && have.restartLsn !== null && want.lsn > have.restartLsn) {
        advancePhysical.push({ name, lsn: want.lsn });
      }
      continue;
    }
    if (!exists(name)) createPhysical.push(name);
  }
  const createLogical: Array<{ name: string; database: string; plugin: string }> = [];
  const advanceLogical: Array<{ name: string; database: string; lsn: number }> = [];
  const copyLogical: string[] = [];
  for (const [name, want] of Object.entries(desired)) {
    if (want.type !== 'logical') continue;
    const have = exists(name) ? local.get(name)! : null;
    if (leading) {
      if (!have && i.role === 'primary') createLogical.push({ name, database: want.database!, plugin: want.plugin! });
      continue;
    }
    if (have) {
      if (want.lsn && i.replayLsn !== null && !have.active) {
        const to = Math.min(want.lsn, i.replayLsn);
        if ((have.confirmedFlushLsn ?? 0) < to) advanceLogical.push({ name, database: want.database!, lsn: to });
      }
    } else if (want.lsn) {
      // Only slots the leader has published a position for (so we know it exists there).
      copyLogical.push(name);
    }
  }
  return { desired, drop, createPhysical, createLogical, advancePhysical, advanceLogical, copyLogical, busy, problems };
}

function describe(s: { type: SlotType; database?: string | null; plugin?: string | null }): string {
  return s.type === 'physical' ? 'physical' : `logical ${s.plugin ?? '?'} in ${s.database ?? '?'}`;
}

// ---------- what the leader publishes ----------

/**
 * status.slots (Patroni 4's SlotsHandler.process_permanent_slots + Postgresql.slots + maybe_filter_permanent_slots):
 * the position of each managed slot on the leader (physical: restart_lsn, logical: confirmed_flush_lsn) and the
 * leader's own slot name at its current WAL position. With member_slots_ttl 0 only permanent slots are published.
 */
export function statusSlots(o: {
  me: string;
  walPosition: number | null;
  local: readonly LocalSlot[];
  desired: Readonly<Record<string, DesiredSlot>>;
  config: SlotsConfig;
  members: readonly Member[];
  serverVersion: number;
}): Record<string, number> {
  if (o.serverVersion < CAN_ADVANCE_FROM || !o.config.useSlots) return {};
  const out: Record<string, number> = {};
  for (const s of o.local) {
    const want = o.desired[s.name];
    if (!want || !sameKind(want, s)) continue;
    const lsn = s.type === 'logical' ? s.confirmedFlushLsn : s.restartLsn;
    if (lsn !== null && lsn > 0) out[s.name] = lsn;
  }
  if (o.walPosition) out[slotNameForMember(o.me)] = o.walPosition;
  if (o.config.memberSlotsTtlS > 0) return out;
  const memberNames = new Set(o.members.map((m) => slotNameForMember(m.name)));
  const filtered: Record<string, number> = {};
  for (const [name, lsn] of Object.entries(out)) {
    if (!(name in o.config.permanent)) continue;
    const spec = o.config.permanent[name];
    if (isPhysicalSpec(spec) || (isObj(spec) && isLogicalSpec(spec) && !memberNames.has(name))) filtered[name] = lsn;
  }
  return filtered;
}

/**
 * status.retain_slots (Patroni 4's AbstractDCS._build_retain_slots): member slots the leader saw, each with
 * the wall-clock time it was last seen; a name is dropped member_slots_ttl after that. `seen` is the leader's
 * memory (seeded from the stored list when it takes the lock) and is not modified.
 */
export function retainSlots(o: {
  seen: ReadonlyMap<string, number>;
  published: Readonly<Record<string, number>>;
  me: string;
  members: readonly Member[];
  config: SlotsConfig;
  now: number;
}): { seen: Map<string, number>; list: string[]; expired: string[] } {
  const seen = new Map(o.seen);
  const names = Object.keys(o.published);
  if (names.length > 0) {
    const members = new Set(o.members.filter((m) => !nostream(m)).map((m) => slotNameForMember(m.name)));
    if (!o.members.some((m) => m.name === o.me)) members.add(slotNameForMember(o.me));
    const permanent = permanentPhysicalNames(o.config);
    for (const n of names) if (members.has(n) && !permanent.has(n)) seen.set(n, o.now);
  }
  const expired: string[] = [];
  for (const [n, at] of seen) {
    if (at + o.config.memberSlotsTtlS * 1000 <= o.now) {
      seen.delete(n);
      expired.push(n);
    }
  }
  return { seen, list: [...seen.keys()].sort(), expired };
}

/** Patroni's has_permanent_logical_slots / should_enforce_hot_standby_feedback: logical slots need feedback. */
export function needsHotStandbyFeedback(i: Omit<SlotPlanInput, 'local' | 'replayLsn' | 'paused'>): boolean {
  if (i.serverVersion < CAN_ADVANCE_FROM || i.config.standbyCluster) return false;
  const asReplica = (me: string, nofailover: boolean, seen: Set<string>): boolean => {
    const slots = desiredSlots({ ...i, me, nofailover, role: 'replica', local: [], replayLsn: null, paused: false });
    if (Object.values(slots).some((s) => s.type === 'logical')) return true;
    if (!i.config.useSlots || seen.has(me)) return false;
    seen.add(me);
    const leader = i.cluster.leader?.name;
    return i.cluster.members
      .filter((m) => replicatefrom(m) === me && m.name !== leader)
      .some((m) => asReplica(m.name, m.data.tags?.nofailover === true, seen));
  };
  return asReplica(i.me, i.nofailover, new Set());
}

/** toInt for values that may arrive as strings (xid columns come back as text from node-postgres). */
export function intOrNull(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  return toInt(typeof v === 'bigint' ? Number(v) : v);
}
