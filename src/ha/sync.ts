/**
 * Synchronous replication (`synchronous_mode`), the pure part: which standbys the leader should make
 * synchronous, what `synchronous_standby_names` says for them, and which of them may be recorded in
 * the store's `sync` key — only those PostgreSQL already treats as synchronous *and* that have flushed
 * every WAL record written before they became synchronous (Patroni's allow_promote): a member listed
 * in `sync` must hold every acknowledged commit, because only listed members may be promoted.
 */
import type { Member } from '../dcs/types.js';
import type { ReplicationRow } from '../postgres/types.js';

export interface SyncInput {
  me: string;
  members: readonly Member[];
  /** pg_stat_replication of the leader. */
  replication: readonly ReplicationRow[];
  /** Members in synchronous_standby_names now, with the primary's WAL position when each was added. */
  inNames: ReadonlyMap<string, number>;
  count: number;
}

export interface SyncPlan {
  /** Who should be in synchronous_standby_names. */
  picked: string[];
  /** Of those, who may be recorded in the `sync` key (and so promoted). */
  confirmed: string[];
}

function isTrue(v: unknown): boolean {
  return v === true || v === 'true' || v === 'on' || v === 'yes';
}

export function planSync(s: SyncInput): SyncPlan {
  const byName = new Map(s.members.map((m) => [m.name.toLowerCase(), m]));
  const candidates = s.replication
    .filter((r) => r.state === 'streaming')
    .map((r) => ({ r, m: byName.get(r.application_name.toLowerCase()) }))
    .filter((x): x is { r: ReplicationRow; m: Member } => x.m !== undefined && x.m.name !== s.me && !isTrue(x.m.data.tags?.nosync));
  // Keep who is synchronous already (no churn), then the most advanced.
  candidates.sort((a, b) => {
    const sa = s.inNames.has(a.m.name) ? 1 : 0;
    const sb = s.inNames.has(b.m.name) ? 1 : 0;
    if (sa !== sb) return sb - sa;
    return (b.r.flush_lsn ?? -1) - (a.r.flush_lsn ?? -1);
  });
  const chosen = candidates.slice(0, Math.max(0, s.count));
  const picked = chosen.map((x) => x.m.name).sort();
  const confirmed = chosen
    .filter((x) => {
      const since = s.inNames.get(x.m.name);
      return since !== undefined && (x.r.sync_state === 'sync' || x.r.sync_state === 'quorum') && (x.r.flush_lsn ?? -1) >= since;
    })
    .map((x) => x.m.name)
    .sort();
  return { picked, confirmed };
}

/** PostgreSQL's synchronous_standby_names for `names` (Patroni's format); '*' or '' when none. */
export function synchronousStandbyNames(names: readonly string[], count: number, strict: boolean): string {
  if (names.length === 0) return strict ? '*' : '';
  const quoted = names.map((n) => `"${n.replace(/"/g, '""')}"`);
  return names.length === 1 && count <= 1 ? quoted[0]! : `${Math.min(count, names.length)} (${quoted.join(',')})`;
}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
