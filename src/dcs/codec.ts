/**
 * Patroni's key layout and value formats (patroni/dcs/__init__.py and dcs/etcd3.py, 3.0.2), shared by
 * the store adapters. Pure. Parsing is lenient like Patroni's `from_node` parsers: a bad value reads as
 * what Patroni would make of it, and never makes load() fail.
 */
import type { Cluster, ClusterStatus, FailoverRequest, FailsafeTopology, HistoryEntry, Member, MemberData, SyncState, SyncValue } from './types.js';
import { emptyCluster } from './types.js';

/**
 * The cluster's key prefix, with a trailing slash: `('/service/', 'batman')` → `/service/batman/`.
 * Patroni builds `re.sub('/+', '/', '/'.join(['', namespace, scope]))` and appends `/<key>`; we do the same
 * so both find each other's keys whatever slashes the user wrote.
 */
export function clusterPrefix(namespace: string, scope: string): string {
  // Patroni: re.sub('/+', '/', '/'.join(['', namespace, scope])) + '/' + key
  return `${['', namespace, scope].join('/').replace(/\/+/g, '/')}/`;
}

export const KEYS = {
  initialize: 'initialize',
  config: 'config',
  leader: 'leader',
  members: 'members/',
  failover: 'failover',
  sync: 'sync',
  history: 'history',
  status: 'status',
  /** Written by Patroni < 2.1 instead of `status`; read only when `status` is absent. */
  legacyOptime: 'optime/leader',
  failsafe: 'failsafe',
} as const;

export function memberKey(name: string): string {
  return KEYS.members + name;
}

/** One stored key, as an adapter reads it. */
export interface RawNode {
  /** Key relative to the cluster prefix, e.g. `members/pg1`. */
  key: string;
  value: string;
  /** The key's modification revision (etcd mod_revision): the version CAS writes compare against. */
  version: number;
  /** The lease (session) the key is bound to, as a decimal string; absent for none. */
  lease?: string;
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Python's int(): numbers and decimal strings; anything else is undefined. */
function toInt(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

/**
 * Member.from_node: JSON, or the legacy Governor form `postgres://…?application_name=<api_url>`.
 * Anything else reads as an empty member (Patroni: `data = {}`); the string fields we promise default to ''.
 */
export function parseMember(name: string, node: RawNode): Member {
  const blank = { conn_url: '', api_url: '', state: '', role: '', version: '' };
  let data: MemberData;
  if (node.value.startsWith('postgres')) {
    data = { ...blank, ...parseConnectionString(node.value) };
  } else {
    const j = parseJson(node.value);
    data = (isObj(j) ? { ...blank, ...j } : blank) as MemberData;
  }
  return { name, version: node.version, data };
}

/** Patroni's parse_connection_string: the URL without its query, and `application_name` as the API URL. */
function parseConnectionString(value: string): { conn_url: string; api_url: string } {
  const q = value.indexOf('?');
  if (q < 0) return { conn_url: value, api_url: '' };
  const hash = value.indexOf('#', q);
  const query = value.slice(q + 1, hash < 0 ? undefined : hash);
  const conn_url = value.slice(0, q) + (hash < 0 ? '' : value.slice(hash));
  return { conn_url, api_url: new URLSearchParams(query).get('application_name') ?? '' };
}

/** Failover.from_node: JSON `{leader, member, scheduled_at}`, or the old `leader:member` form. Null when empty. */
export function parseFailover(node: RawNode): FailoverRequest | null {
  if (!node.value) return null;
  const j = parseJson(node.value);
  if (j === undefined) {
    const [leader, member] = node.value.split(':').map((s) => s.trim());
    if (!leader && !member) return null;
    return { leader: leader || undefined, member: member || undefined, version: node.version };
  }
  const o = isObj(j) ? j : {};
  const f = { leader: str(o.leader), member: str(o.member), scheduled_at: str(o.scheduled_at), version: node.version };
  // Patroni keeps an empty Failover object, but it is falsy (len 0): no request.
  return f.leader || f.member ? f : null;
}

/** SyncState.from_node: `{leader, sync_standby: "a,b"}`; anything else is the empty state. */
export function parseSync(node: RawNode): SyncState {
  const j = parseJson(node.value);
  const o = isObj(j) ? j : {};
  const names = typeof o.sync_standby === 'string' ? o.sync_standby.split(',').map((s) => s.trim()).filter(Boolean) : [];
  const quorum = typeof o.quorum === 'number' && Number.isInteger(o.quorum) && o.quorum >= 0 ? o.quorum : undefined;
  return { leader: str(o.leader), sync_standby: names, ...(quorum !== undefined ? { quorum } : {}), version: node.version };
}

/** TimelineHistory.from_node: a JSON list of `[timeline, lsn, reason, timestamp?, leader?]`; else empty. */
export function parseHistory(value: string): HistoryEntry[] {
  const j = parseJson(value);
  if (!Array.isArray(j)) return [];
  const out: HistoryEntry[] = [];
  for (const e of j) {
    if (!Array.isArray(e)) continue;
    const [tl, lsn] = [toInt(e[0]), toInt(e[1])];
    if (tl === undefined || lsn === undefined) continue;
    const rest = e.slice(2).map((x) => (typeof x === 'string' ? x : x == null ? undefined : String(x)));
    out.push([tl, lsn, rest[0] ?? '', ...rest.slice(1)] as unknown as HistoryEntry);
  }
  return out;
}

/** The `status` key: `{"optime": <lsn>, "slots": {...}}`. Patroni reads garbage as optime 0, no slots. */
export function parseStatus(value: string): ClusterStatus {
  const j = parseJson(value);
  if (!isObj(j)) return {};
  const out: { optime?: number; slots?: Record<string, number>; retain_slots?: string[] } = {};
  const optime = toInt(j.optime);
  if (optime !== undefined) out.optime = optime;
  if (isObj(j.slots)) {
    const slots: Record<string, number> = {};
    for (const [k, v] of Object.entries(j.slots)) {
      const n = toInt(v);
      if (n !== undefined) slots[k] = n;
    }
    out.slots = slots;
  }
  // Patroni 4 (Status.from_node): a list, or a JSON string holding one; anything else is no list.
  const rs = typeof j.retain_slots === 'string' ? parseJson(j.retain_slots) : j.retain_slots;
  if (Array.isArray(rs)) out.retain_slots = rs.filter((x): x is string => typeof x === 'string');
  return out;
}

/**
 * The `failsafe` key: a JSON object of member name → api_url (Patroni's etcd3 `_cluster_loader` keeps any
 * JSON; its users ignore anything but a dict). Non-string URLs are dropped; anything else is null.
 */
export function parseFailsafe(value: string): FailsafeTopology | null {
  const j = parseJson(value);
  if (!isObj(j)) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(j)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function serializeFailsafe(value: FailsafeTopology): string {
  return JSON.stringify(value);
}

/** ClusterConfig.from_node: a JSON object; anything else reads as `{}` (still versioned, so it can be repaired by CAS). */
export function parseConfig(node: RawNode): NonNullable<Cluster['config']> {
  const j = parseJson(node.value);
  return { value: isObj(j) ? j : {}, version: node.version };
}

/** Build the snapshot from every node under the cluster prefix (keys relative to it), in any order. */
export function buildCluster(nodes: readonly RawNode[]): Cluster {
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const get = (k: string): RawNode | undefined => byKey.get(k);
  const leader = get(KEYS.leader);
  const status = get(KEYS.status);
  const legacy = get(KEYS.legacyOptime);
  const failover = get(KEYS.failover);
  const sync = get(KEYS.sync);
  const config = get(KEYS.config);
  const history = get(KEYS.history);
  const failsafe = get(KEYS.failsafe);
  const members = nodes
    .filter((n) => n.key.startsWith(KEYS.members) && n.key.length > KEYS.members.length && !n.key.slice(KEYS.members.length).includes('/'))
    .map((n) => parseMember(n.key.slice(KEYS.members.length), n))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    ...emptyCluster,
    initialize: get(KEYS.initialize)?.value ?? null,
    config: config ? parseConfig(config) : null,
    // An empty leader value is no leader (Patroni: leader_name '' → is_unlocked()).
    leader: leader && leader.value ? { name: leader.value, version: leader.version, ...(leader.lease ? { session: leader.lease } : {}) } : null,
    members,
    failover: failover ? parseFailover(failover) : null,
    sync: sync ? parseSync(sync) : null,
    history: history ? parseHistory(history.value) : [],
    status: status ? parseStatus(status.value) : legacy && toInt(legacy.value) !== undefined ? { optime: toInt(legacy.value) } : {},
    ...(failsafe ? { failsafe: parseFailsafe(failsafe.value) } : {}),
  };
}

// ---- values as Patroni writes them (json.dumps(..., separators=(',', ':')) is JSON.stringify's format) ----

export function serializeMember(data: MemberData): string {
  return JSON.stringify(data);
}

export function serializeConfig(value: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(value);
}

/** Patroni's manual_failover(): only the fields that are set. */
export function serializeFailover(value: { leader?: string; member?: string; scheduled_at?: string }): string {
  const o: Record<string, string> = {};
  if (value.leader) o.leader = value.leader;
  if (value.member) o.member = value.member;
  if (value.scheduled_at) o.scheduled_at = value.scheduled_at;
  return JSON.stringify(o);
}

/** Patroni's sync_state(): `sync_standby` is the comma-joined names, or null for none. */
export function serializeSync(value: SyncValue): string {
  return JSON.stringify({ leader: value.leader, sync_standby: value.sync_standby || null, ...(value.quorum !== undefined ? { quorum: value.quorum } : {}) });
}

export function serializeHistory(history: readonly HistoryEntry[]): string {
  return JSON.stringify(history);
}

/**
 * Patroni's update_leader() writes `{"optime": lsn}` plus `slots` when there are any, and only when it has
 * an LSN: null means "nothing to write".
 */
export function serializeStatus(status: ClusterStatus): string | null {
  if (!status.optime) return null;
  const o: { optime: number; slots?: Readonly<Record<string, number>>; retain_slots?: readonly string[] } = { optime: status.optime };
  if (status.slots && Object.keys(status.slots).length > 0) o.slots = status.slots;
  if (status.retain_slots && status.retain_slots.length > 0) o.retain_slots = status.retain_slots;
  return JSON.stringify(o);
}
