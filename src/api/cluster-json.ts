/**
 * Patroni's `cluster_as_json` (utils.py, 3.0.2): the GET /cluster body, also what `ctl list` renders.
 * Pure: a store snapshot in, JSON out.
 */
import type { Cluster, Member } from '../dcs/types.js';
import { toBool } from '../config/values.js';

export interface ClusterMemberJson {
  name: string;
  /** quorum_standby: a member of the quorum in `synchronous_mode: quorum` (Patroni 4). */
  role: 'leader' | 'standby_leader' | 'sync_standby' | 'quorum_standby' | 'replica';
  state: string;
  api_url: string;
  host?: string;
  port?: number;
  timeline?: number;
  pending_restart?: boolean;
  scheduled_restart?: unknown;
  tags?: Record<string, unknown>;
  /** Bytes behind the cluster's last LSN (never negative), or 'unknown' when the member published none. */
  lag?: number | 'unknown';
}

export interface ClusterJson {
  members: ClusterMemberJson[];
  scope: string;
  pause?: boolean;
  scheduled_switchover?: { at: string; from?: string; to?: string };
}

/**
 * The cluster's last known LSN: the leader's published `status.optime`, else (not in Patroni, which
 * would report lag 0) the leader member's `xlog_location`; null when neither is known.
 */
export function clusterLastLsn(cluster: Cluster): number | null {
  if (typeof cluster.status.optime === 'number') return cluster.status.optime;
  const leader = cluster.leader ? cluster.members.find((m) => m.name === cluster.leader!.name) : undefined;
  return typeof leader?.data.xlog_location === 'number' ? leader.data.xlog_location : null;
}

/**
 * The cached store snapshot the API may rely on: Patroni's `dcs.cluster` is valid for `ttl` seconds
 * after the last successful read, then None — a member cut off from the store must not keep
 * answering from a view that may be stale (e.g. still saying it holds the lock).
 */
export function trustedCluster(cluster: Cluster | null, lastSeenEpochS: number | null, nowEpochS: number, ttlS: number): Cluster | null {
  if (!cluster || lastSeenEpochS === null) return null;
  return nowEpochS - lastSeenEpochS > ttlS ? null : cluster;
}

/** Patroni's `check_mode`: a flag of the stored dynamic config (pause, synchronous_mode). */
export function clusterMode(cluster: Cluster, mode: 'pause' | 'synchronous_mode'): boolean {
  return cluster.config !== null && toBool(cluster.config.value[mode]) === true;
}

/** Patroni's `is_standby_cluster`: a `standby_cluster` section naming a host, a port or a restore_command. */
export function isStandbyClusterConfig(section: unknown): boolean {
  if (!section || typeof section !== 'object' || Array.isArray(section)) return false;
  const s = section as Record<string, unknown>;
  return Boolean(s.host || s.port || s.restore_command);
}

/** Patroni's `Member.conn_kwargs()`: host and port from `conn_kwargs` if published, else from `conn_url`. */
export function memberHostPort(m: Member): { host?: string; port?: number } {
  const kw = m.data.conn_kwargs;
  if (kw && typeof kw === 'object' && !Array.isArray(kw)) {
    const k = kw as Record<string, unknown>;
    const host = typeof k.host === 'string' && k.host ? k.host : undefined;
    const port = host !== undefined && k.port !== undefined && k.port !== null && k.port !== '' ? Number(k.port) : undefined;
    return { host, ...(port !== undefined && Number.isFinite(port) ? { port } : {}) };
  }
  if (!m.data.conn_url) return {};
  let u: URL;
  try {
    u = new URL(m.data.conn_url);
  } catch {
    return {};
  }
  // Python's urlparse().hostname: brackets stripped, lower case.
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (!host) return {};
  return { host, port: u.port ? Number(u.port) : 5432 };
}

/**
 * `standbyCluster`: the caller knows this is a standby cluster (its leader runs as standby_leader)
 * even if the stored config does not say so.
 */
export function clusterAsJson(cluster: Cluster, scope: string, opts: { standbyCluster?: boolean } = {}): ClusterJson {
  const leaderName = cluster.leader?.name ?? null;
  const clusterLsn = clusterLastLsn(cluster) ?? 0;
  const sync = new Set(cluster.sync?.sync_standby ?? []);
  const quorum = cluster.config?.value.synchronous_mode === 'quorum';
  const standby = opts.standbyCluster === true || isStandbyClusterConfig(cluster.config?.value.standby_cluster);
  const members = cluster.members.map((m): ClusterMemberJson => {
    const isLeader = m.name === leaderName;
    const role: ClusterMemberJson['role'] = isLeader ? (standby ? 'standby_leader' : 'leader') : sync.has(m.name) ? (quorum ? 'quorum_standby' : 'sync_standby') : 'replica';
    const j: ClusterMemberJson = { name: m.name, role, state: typeof m.data.state === 'string' ? m.data.state : '', api_url: m.data.api_url };
    const { host, port } = memberHostPort(m);
    if (host) {
      j.host = host;
      if (port !== undefined) j.port = port;
    }
    // Patroni copies these as published, in this order.
    for (const k of ['timeline', 'pending_restart', 'scheduled_restart', 'tags'] as const) {
      if (m.data[k] !== undefined) (j as unknown as Record<string, unknown>)[k] = m.data[k];
    }
    if (!isLeader) {
      const lsn = m.data.xlog_location;
      j.lag = typeof lsn !== 'number' ? 'unknown' : clusterLsn >= lsn ? clusterLsn - lsn : 0;
    }
    return j;
  });
  // Sorted by name, as Patroni does for consistency.
  members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: ClusterJson = { members, scope };
  if (clusterMode(cluster, 'pause')) out.pause = true;
  const f = cluster.failover;
  if (f?.scheduled_at) {
    out.scheduled_switchover = { at: f.scheduled_at };
    if (f.leader) out.scheduled_switchover.from = f.leader;
    if (f.member) out.scheduled_switchover.to = f.member;
  }
  return out;
}
