/**
 * User options for initdb and pg_basebackup, Patroni style (bootstrap.py `process_user_options`):
 * a list of flags (`data-checksums`) and single-key maps (`{encoding: UTF8}`), or one map, become
 * `--flag` / `--key=value`. Options we set ourselves, or that would break what we rely on, are refused.
 */
import type { DaemonConfig } from '../config/types.js';
import { isTruthy } from '../config/values.js';
import { ConfigError } from '../util/errors.js';

export type ToolOptions = Array<string | Record<string, string>> | Record<string, string> | undefined;

/** Patroni's lists, plus the ones we pass ourselves. */
export const INITDB_NOT_ALLOWED = ['pgdata', 'nosync', 'pwfile', 'sync-only', 'version', 'username', 'show', 'D', 'U'] as const;
export const BASEBACKUP_NOT_ALLOWED = [
  'pgdata', 'format', 'wal-method', 'xlog-method', 'gzip', 'version', 'compress', 'dbname', 'host', 'port', 'username', 'password',
  'write-recovery-conf', 'D', 'F', 'X', 'd', 'h', 'p', 'U', 'W', 'R',
] as const;

/** Throws ConfigError (naming `path`) for a refused or malformed option. */
export function toolArgs(path: string, opts: ToolOptions, notAllowed: readonly string[]): string[] {
  if (opts === undefined) return [];
  const check = (name: string): string => {
    if (notAllowed.includes(name)) throw new ConfigError(path, `option '${name}' is not allowed (pgwarden sets it)`);
    return name;
  };
  const pair = (k: string, v: unknown): string => {
    if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(path, `value of '${k}' must be a string`);
    return `--${check(k)}=${v}`;
  };
  if (!Array.isArray(opts)) return Object.entries(opts).map(([k, v]) => pair(k, v));
  return opts.map((o) => {
    if (typeof o === 'string') return `--${check(o)}`;
    const entries = Object.entries(o);
    if (entries.length !== 1) throw new ConfigError(path, 'each option must be a string or a map with exactly one key');
    return pair(entries[0]![0], entries[0]![1]);
  });
}

/** Patroni's replica_method_can_work_without_replication_connection. */
export function replicaMethodWorksWithoutLeader(cfg: DaemonConfig, method: string): boolean {
  if (method === 'basebackup') return false;
  const o = cfg.postgresql.replica_methods?.[method] ?? {};
  return isTruthy(o.no_leader) || isTruthy(o.no_master);
}

/**
 * How initdb or pg_basebackup should make the new data dir durable. Both fsync every file they wrote, one
 * by one; a single syncfs of the file system does the same for a fresh data dir in a fraction of the time.
 * So they run with `--no-sync`, and we run that syncfs (`syncAfter`): after pg_basebackup, before the copy
 * starts; after initdb, while the new server starts and gets its roles, awaited before the cluster is
 * announced. (PostgreSQL 17's `--sync-method=syncfs` would do the same inside initdb, with nothing to
 * overlap.) A user who chose a sync option (`no-sync`, `sync-method`) keeps it.
 */
export function fastSyncArgs(userArgs: readonly string[]): { args: string[]; syncAfter: boolean } {
  const chosen = userArgs.some((a) => /^--(no-sync|sync-method)(=|$)/.test(a) || a === '-N');
  if (chosen) return { args: [], syncAfter: false };
  return { args: ['--no-sync'], syncAfter: true };
}
