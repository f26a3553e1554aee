/** Patroni's `cluster_as_json` (utils.py, 3.0.2): the /cluster body, also what `ctl list` renders. */
import type { Cluster } from '../dcs/types.js';

export interface ClusterMemberJson {
  name: string;
  role: 'leader' | 'standby_leader' | 'sync_standby' | 'replica';
  state: string;
  api_url: string;
  host: string;
  port: number;
  timeline?: number;
  lag?: number | 'unknown';
  tags?: Record<string, unknown>;
  pending_restart?: boolean;
}

export interface ClusterJson {
  members: ClusterMemberJson[];
  scope: string;
  pause?: boolean;
  scheduled_switchover?: { at: string; from?: string; to?: string };
}

/** The cluster's last known LSN: the leader's published optime, else the leader member's position. */
export function clusterLastLsn(cluster: Cluster): number | null {
  if (typeof cluster.status.optime === 'number') return cluster.status.optime;
  const leader = cluster.leader ? cluster.members.find((m) => m.name === cluster.leader!.name) : undefined;
  return typeof leader?.data.xlog_location === 'number' ? leader.data.xlog_location : null;
}

export function clusterAsJson(cluster: Cluster, scope: string, opts: { standbyCluster?: boolean } = {}): ClusterJson {
  const leaderName = cluster.leader?.name;
  const last = clusterLastLsn(cluster);
  const sync = new Set(cluster.sync?.sync_standby ?? []);
  const members = cluster.members.map((m): ClusterMemberJson => {
    const isLeader = m.name === leaderName;
    const role: ClusterMemberJson['role'] = isLeader ? (opts.standbyCluster ? 'standby_leader' : 'leader') : sync.has(m.name) ? 'sync_standby' : 'replica';
    let host = '';
    let port = 5432;
    try {
      const u = new URL(m.data.conn_url);
      host = u.hostname.replace(/^\[|\]$/g, '');
      port = u.port ? Number(u.port) : 5432;
    } catch {
      // legacy or empty conn_url
    }
    const j: ClusterMemberJson = { name: m.name, role, state: m.data.state, api_url: m.data.api_url, host, port };
    if (typeof m.data.timeline === 'number') j.timeline = m.data.timeline;
    if (!isLeader) {
      const x = m.data.xlog_location;
      j.lag = typeof x === 'number' && last !== null ? Math.max(0, last - x) : 'unknown';
    }
    if (m.data.tags && Object.keys(m.data.tags).length) j.tags = m.data.tags as Record<string, unknown>;
    if (m.data.pending_restart) j.pending_restart = true;
    return j;
  });
  const out: ClusterJson = { members, scope };
  const paused = cluster.config?.value.pause;
  if (paused === true || paused === 'true') out.pause = true;
  if (cluster.failover?.scheduled_at) {
    out.scheduled_switchover = { at: cluster.failover.scheduled_at, from: cluster.failover.leader, to: cluster.failover.member };
  }
  return out;
}
