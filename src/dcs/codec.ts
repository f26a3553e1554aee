/**
 * Patroni's key layout and value formats (patroni/dcs/__init__.py, 3.0.2), shared by the store
 * adapters. Parsing is lenient like Patroni's `from_node` parsers: a bad value never breaks load().
 */
import type { Cluster, ClusterStatus, FailoverRequest, HistoryEntry, Member, MemberData, SyncState } from './types.js';
import { emptyCluster } from './types.js';

/** `/service/` + `batman` → `/service/batman/` (Patroni normalises the slashes the same way). */
export function clusterPrefix(namespace: string, scope: string): string {
  const ns = `/${namespace.replace(/^\/+|\/+$/g, '')}`;
  return `${ns === '/' ? '' : ns}/${scope}/`;
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
} as const;

export interface RawNode {
  /** Key relative to the cluster prefix, e.g. `members/pg1`. */
  key: string;
  value: string;
  version: number;
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

/** Member.from_node: JSON, or the legacy bare `postgres://…` connection URL. */
export function parseMember(name: string, node: RawNode): Member {
  const j = parseJson(node.value);
  let data: MemberData;
  if (isObj(j)) {
    data = { conn_url: '', api_url: '', state: '', role: '', version: '', ...j } as MemberData;
  } else {
    const url = node.value.startsWith('postgres') ? node.value : '';
    const m = /[?&]application_name=([^&]+)/.exec(url);
    data = { conn_url: url.split('?')[0] ?? '', api_url: m ? decodeURIComponent(m[1]!) : '', state: '', role: '', version: '' };
  }
  return { name, version: node.version, data };
}

/** Failover.from_node: JSON, or the old `leader:member` form. */
export function parseFailover(node: RawNode): FailoverRequest | null {
  const j = parseJson(node.value);
  if (isObj(j)) {
    const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    return {
      leader: str(j.leader),
      member: str(j.member),
      scheduled_at: str(j.scheduled_at),
      version: node.version,
    };
  }
  if (!node.value) return null;
  const [leader, member] = node.value.split(':');
  return { leader: leader || undefined, member: member || undefined, version: node.version };
}

export function parseSync(node: RawNode): SyncState {
  const j = parseJson(node.value);
  const o = isObj(j) ? j : {};
  const names = typeof o.sync_standby === 'string' ? o.sync_standby.split(',').map((s) => s.trim()).filter(Boolean) : [];
  return { leader: typeof o.leader === 'string' ? o.leader : undefined, sync_standby: names, version: node.version };
}

export function parseHistory(value: string): HistoryEntry[] {
  const j = parseJson(value);
  if (!Array.isArray(j)) return [];
  return j.filter((e): e is HistoryEntry => Array.isArray(e) && typeof e[0] === 'number' && typeof e[1] === 'number');
}

export function parseStatus(value: string): ClusterStatus {
  const j = parseJson(value);
  if (isObj(j)) {
    return {
      optime: typeof j.optime === 'number' ? j.optime : undefined,
      slots: isObj(j.slots) ? (j.slots as Record<string, number>) : undefined,
    };
  }
  // Patroni's legacy `optime/leader` key held a plain number.
  const n = Number(value);
  return Number.isFinite(n) && value !== '' ? { optime: n } : {};
}

/** Build the snapshot from every node under the cluster prefix. */
export function buildCluster(nodes: readonly RawNode[]): Cluster {
  const c: { -readonly [K in keyof Cluster]: Cluster[K] } = { ...emptyCluster, members: [], history: [], status: {} };
  const members: Member[] = [];
  for (const n of nodes) {
    if (n.key.startsWith(KEYS.members)) {
      const name = n.key.slice(KEYS.members.length);
      if (name && !name.includes('/')) members.push(parseMember(name, n));
      continue;
    }
    switch (n.key) {
      case KEYS.initialize:
        c.initialize = n.value;
        break;
      case KEYS.config: {
        const j = parseJson(n.value);
        c.config = { value: isObj(j) ? j : {}, version: n.version };
        break;
      }
      case KEYS.leader:
        if (n.value) c.leader = { name: n.value, version: n.version, session: n.lease };
        break;
      case KEYS.failover:
        c.failover = parseFailover(n);
        break;
      case KEYS.sync:
        c.sync = parseSync(n);
        break;
      case KEYS.history:
        c.history = parseHistory(n.value);
        break;
      case KEYS.status:
        c.status = parseStatus(n.value);
        break;
      case 'optime/leader':
        if (c.status.optime === undefined) c.status = { ...c.status, ...parseStatus(n.value) };
        break;
    }
  }
  c.members = members.sort((a, b) => a.name.localeCompare(b.name));
  return c;
}

export function serializeSync(value: { leader: string; sync_standby: string | null }): string {
  return JSON.stringify({ leader: value.leader, sync_standby: value.sync_standby });
}

export function serializeFailover(value: { leader?: string; member?: string; scheduled_at?: string }): string {
  const o: Record<string, string> = {};
  if (value.leader) o.leader = value.leader;
  if (value.member) o.member = value.member;
  if (value.scheduled_at) o.scheduled_at = value.scheduled_at;
  return JSON.stringify(o);
}
