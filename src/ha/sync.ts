/**
 * Synchronous replication (`synchronous_mode`), the pure part: which standbys the leader should make
 * synchronous, what `synchronous_standby_names` says for them, and which of them may be recorded in
 * the store's `sync` key — only those PostgreSQL already treats as synchronous *and* that have flushed
 * every WAL record written before they became synchronous (Patroni's allow_promote): a member listed
 * in `sync` must hold every acknowledged commit, because only listed members may be promoted.
 */
import { isTruthy } from '../config/values.js';
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


/** Streaming standbys that are members of the cluster, not us and not tagged nosync. */
function eligible(s: Pick<SyncInput, 'me' | 'members' | 'replication'>): Array<{ r: ReplicationRow; m: Member }> {
  const byName = new Map(s.members.map((m) => [m.name.toLowerCase(), m]));
  return s.replication
    .filter((r) => r.state === 'streaming')
    .map((r) => ({ r, m: byName.get(r.application_name.toLowerCase()) }))
    .filter((x): x is { r: ReplicationRow; m: Member } => x.m !== undefined && x.m.name !== s.me && !isTruthy(x.m.data.tags?.nosync));
}

export function planSync(s: SyncInput): SyncPlan {
  const candidates = eligible(s);
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

/**
 * Quorum commit (Patroni 4 `synchronous_mode: quorum`): every eligible standby is listed in
 * `ANY k (…)`, so a commit is acknowledged once any k of them flushed it. The `sync` key then says
 * "every acknowledged commit is on at least `quorum` of `sync_standby`"; `covered` are the listed
 * standbys that flushed everything written before the current synchronous_standby_names took effect
 * (`since`): once k of them have, the key may name exactly this set.
 */
export interface QuorumPlan {
  listed: string[];
  k: number;
  names: string;
  covered: string[];
}

export function planQuorum(s: Omit<SyncInput, 'inNames'> & { strict: boolean; since: number | null }): QuorumPlan {
  const candidates = eligible(s);
  const listed = candidates.map((x) => x.m.name).sort();
  // Strict: never fewer acknowledgements than asked — with too few standbys, writes wait.
  const k = s.strict ? Math.max(1, s.count) : Math.min(Math.max(1, s.count), listed.length);
  const names = listed.length === 0 ? (s.strict ? '*' : '') : `ANY ${k} (${listed.map((n) => `"${n.replace(/"/g, '""')}"`).join(',')})`;
  const covered = s.since === null ? [] : candidates.filter((x) => (x.r.flush_lsn ?? -1) >= s.since!).map((x) => x.m.name).sort();
  return { listed, k, names, covered };
}

/**
 * May `me`, listed in a quorum `sync` key, be promoted? Any k listed members hold every acknowledged
 * commit, so among any (n − k + 1) listed members one holds it: we must see that many (us included)
 * and be the most advanced of them (checked with the other peers by the caller).
 */
export function quorumVisible(sync: readonly string[], quorum: number, me: string, reachable: readonly string[]): { have: number; need: number } {
  const need = sync.length - quorum + 1;
  const have = new Set([me, ...reachable].filter((n) => sync.includes(n))).size;
  return { have, need };
}
