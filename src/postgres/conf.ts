/**
 * Pure generation of PostgreSQL's config files from the daemon config (Patroni style: initdb's own
 * postgresql.conf is kept as postgresql.base.conf and included first; ours follows and wins).
 */
import { dirname, join, resolve } from 'node:path';
import type { DaemonConfig, DynamicConfig, PgParamValue } from '../config/types.js';
import type { UpstreamConn } from './types.js';

/**
 * Settings the cluster needs to replicate at all (Patroni config.py CMDLINE_OPTIONS and its forced
 * values). A replica must have max_connections etc. at least as high as the primary, so those come
 * from the dynamic config, the same for every member.
 */
const DEFAULTS: Record<string, PgParamValue> = {
  wal_level: 'replica',
  hot_standby: 'on',
  max_connections: 100,
  max_wal_senders: 10,
  max_replication_slots: 10,
  max_worker_processes: 8,
  max_prepared_transactions: 0,
  max_locks_per_transaction: 64,
  track_commit_timestamp: 'off',
  wal_log_hints: 'on',
  wal_keep_size: '128MB',
};

/** Keys only the dynamic config may set (Patroni ignores them in the local `postgresql.parameters`). */
const CLUSTER_WIDE = new Set([
  'max_connections',
  'max_wal_senders',
  'max_replication_slots',
  'max_worker_processes',
  'max_prepared_transactions',
  'max_locks_per_transaction',
  'track_commit_timestamp',
  'wal_level',
  'wal_log_hints',
]);

export function listenParts(listen: string): { addresses: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { addresses: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

export interface ParamOptions {
  /**
   * unix_socket_directories when the config sets none. Default: the data dir's parent (PostgreSQL's
   * lock file goes there, so it must be writable by the PostgreSQL user; the socket path must stay short).
   */
  socketDir?: string;
}

/** The data dir's parent: where the default socket goes. */
export function defaultSocketDir(config: DaemonConfig): string {
  return dirname(resolve(config.postgresql.data_dir));
}

export function effectiveParameters(config: DaemonConfig, dynamic: DynamicConfig, opts: ParamOptions = {}): Record<string, PgParamValue> {
  const local = Object.fromEntries(Object.entries(config.postgresql.parameters).filter(([k]) => !CLUSTER_WIDE.has(k)));
  const { addresses, port } = listenParts(config.postgresql.listen);
  const params: Record<string, PgParamValue> = { ...DEFAULTS, ...dynamic.postgresql.parameters, ...local };
  params.listen_addresses = addresses;
  params.port = port;
  params.cluster_name = config.scope;
  if (params.wal_level !== 'logical') params.wal_level = 'replica';
  params.hot_standby = 'on';
  params.wal_log_hints = 'on';
  params.hba_file = join(resolve(config.postgresql.data_dir), 'pg_hba.conf');
  params.unix_socket_directories ??= opts.socketDir ?? defaultSocketDir(config);
  // Standby settings are written by us from the HA state, never taken from the parameters.
  for (const k of ['primary_conninfo', 'primary_slot_name', 'recovery_target_timeline', 'config_file', 'data_directory']) delete params[k];
  return params;
}

export function quoteValue(v: PgParamValue): string {
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'number') return String(v);
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** A libpq conninfo value, quoted when needed. */
export function conninfoValue(v: string): string {
  return /^[A-Za-z0-9_.\-/:@]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function primaryConninfo(config: DaemonConfig, up: UpstreamConn): string {
  const repl = config.postgresql.authentication.replication;
  const parts: Array<[string, string | undefined]> = [
    ['host', up.host],
    ['port', String(up.port)],
    ['user', repl.username],
    ['password', repl.password],
    ['application_name', config.name],
    ['sslmode', 'prefer'],
    ['gssencmode', 'prefer'],
    ['channel_binding', 'prefer'],
  ];
  return parts
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${conninfoValue(v!)}`)
    .join(' ');
}

export interface ConfOptions extends ParamOptions {
  includeBase: boolean;
  /** null: not a standby (primary); undefined upstream inside: a standby without an upstream yet. */
  standby: { upstream: UpstreamConn | null; useSlots: boolean } | null;
}

export function postgresqlConf(config: DaemonConfig, dynamic: DynamicConfig, opts: ConfOptions): string {
  const lines = ['# Written by pgwarden: changes here are overwritten. Set parameters in the pgwarden config.'];
  if (opts.includeBase) lines.push("include 'postgresql.base.conf'");
  const params = effectiveParameters(config, dynamic, opts);
  for (const k of Object.keys(params).sort()) lines.push(`${k} = ${quoteValue(params[k]!)}`);
  if (opts.standby) {
    const up = opts.standby.upstream;
    lines.push(`primary_conninfo = ${quoteValue(up ? primaryConninfo(config, up) : '')}`);
    lines.push(`primary_slot_name = ${quoteValue(up && opts.standby.useSlots && up.slotName ? up.slotName : '')}`);
    lines.push("recovery_target_timeline = 'latest'");
  }
  return `${lines.join('\n')}\n`;
}

export function pgHbaConf(config: DaemonConfig, dynamic: DynamicConfig): string {
  const lines =
    config.postgresql.pg_hba ??
    dynamic.postgresql.pg_hba ??
    config.bootstrap.pg_hba ??
    defaultHba(config);
  return `# Written by pgwarden.\n${lines.join('\n')}\n`;
}

function defaultHba(config: DaemonConfig): string[] {
  const { replication, superuser, rewind } = config.postgresql.authentication;
  const lines = ['local all all trust', `host replication ${replication.username} all scram-sha-256`];
  for (const u of [superuser, rewind]) if (u) lines.push(`host all ${u.username} all scram-sha-256`);
  lines.push('host all all 127.0.0.1/32 scram-sha-256', 'host all all ::1/128 scram-sha-256');
  return lines;
}
