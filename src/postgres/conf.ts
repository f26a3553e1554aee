/**
 * Pure generation of PostgreSQL's config files from the daemon config, Patroni style: initdb's own
 * postgresql.conf is kept as postgresql.base.conf and included first; ours follows and wins; standby
 * settings (PostgreSQL 12+) are ordinary parameters in the same file plus a standby.signal file.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { DaemonConfig, DynamicConfig, PgParamValue } from '../config/types.js';
import { toBool } from '../config/values.js';
import { slotNameForMember, type UpstreamConn } from './types.js';

type Params = Record<string, PgParamValue>;

/**
 * Patroni config.py `CMDLINE_OPTIONS`: settings every member must agree on (a hot standby refuses to
 * run with max_connections, max_wal_senders … lower than its primary's), so they come only from the
 * dynamic config, the same for every member; a local `postgresql.parameters` value for them is
 * ignored. A dynamic value that fails `valid` is ignored too (the default stays); `valid: never`
 * marks the ones nobody may set.
 */
interface ClusterWide {
  readonly default: PgParamValue | null;
  readonly valid: (v: PgParamValue) => boolean;
}
const never = (): boolean => false;
const intAtLeast = (min: number) => (v: PgParamValue) => (toInt(v) ?? -Infinity) >= min;
export const CLUSTER_WIDE: Readonly<Record<string, ClusterWide>> = {
  listen_addresses: { default: null, valid: never },
  port: { default: null, valid: never },
  cluster_name: { default: null, valid: never },
  wal_level: { default: 'replica', valid: (v) => ['hot_standby', 'replica', 'logical'].includes(String(v).toLowerCase()) },
  hot_standby: { default: 'on', valid: never },
  max_connections: { default: 100, valid: intAtLeast(25) },
  max_wal_senders: { default: 10, valid: intAtLeast(3) },
  wal_keep_segments: { default: null, valid: intAtLeast(1) },
  wal_keep_size: { default: null, valid: (v) => (sizeInMB(v) ?? -Infinity) >= 16 },
  max_prepared_transactions: { default: 0, valid: intAtLeast(0) },
  max_locks_per_transaction: { default: 64, valid: intAtLeast(32) },
  track_commit_timestamp: { default: 'off', valid: (v) => toBool(v) !== null },
  max_replication_slots: { default: 10, valid: intAtLeast(4) },
  max_worker_processes: { default: 8, valid: intAtLeast(2) },
  wal_log_hints: { default: 'on', valid: never },
};

/** Recovery settings: written by us from the HA state only, never taken from parameters or postgresql.auto.conf. */
export const RECOVERY_PARAMETERS: ReadonlySet<string> = new Set([
  'archive_cleanup_command', 'pause_at_recovery_target', 'primary_conninfo', 'primary_slot_name', 'promote_trigger_file',
  'recovery_end_command', 'recovery_min_apply_delay', 'recovery_target', 'recovery_target_action', 'recovery_target_inclusive',
  'recovery_target_lsn', 'recovery_target_name', 'recovery_target_time', 'recovery_target_timeline', 'recovery_target_xid',
  'restore_command', 'standby_mode', 'trigger_file',
]);

/**
 * Recovery settings we write ourselves; restore_command and friends from `parameters` stay (they are
 * how a member reads an archive). Files are never relocated through parameters either.
 */
const WAL_RETRIEVE_RETRY_INTERVAL = '500ms';

const OURS_ONLY = new Set(['primary_conninfo', 'primary_slot_name', 'recovery_target_timeline', 'config_file', 'data_directory',
  'recovery_target', 'recovery_target_name', 'recovery_target_time', 'recovery_target_xid', 'recovery_target_lsn', 'standby_mode']);

/** Python int() of a parameter value (what Patroni's validators apply), or null. */
export function toInt(v: PgParamValue): number | null {
  if (typeof v === 'number') return Number.isInteger(v) ? v : null;
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number(v);
  return null;
}

const MB_PER_UNIT: Record<string, number> = { B: 1 / (1024 * 1024), kB: 1 / 1024, MB: 1, GB: 1024, TB: 1024 * 1024 };

/** A size in MB ('128MB', '1GB', 2048 → 2048 MB): PostgreSQL's unit names, MB when none. */
export function sizeInMB(v: PgParamValue): number | null {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)?\s*$/.exec(String(v));
  return m ? Number(m[1]) * MB_PER_UNIT[m[2] ?? 'MB']! : null;
}

/** `postgresql.listen`: addresses (comma-separated, brackets of IPv6 dropped) and port (default 5432). */
export function listenParts(listen: string): { addresses: string; port: number } {
  const i = listen.lastIndexOf(':');
  if (i < 0 || listen.endsWith(']') || !/^\d+$/.test(listen.slice(i + 1))) return { addresses: listen.replace(/^\[|\]$/g, ''), port: 5432 };
  return { addresses: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

export interface ParamOptions {
  /**
   * unix_socket_directories when the config sets none. Default: the data dir's parent (PostgreSQL's
   * lock file goes there, so it must be writable by the PostgreSQL user; the socket path must stay short).
   */
  socketDir?: string;
  /** synchronous_standby_names as the leader manages it in synchronous_mode (undefined: not managed). */
  synchronousStandbyNames?: string;
  /** Archive recovery after a custom bootstrap (`bootstrap.<method>.recovery_conf`): written as they are. */
  recoveryParameters?: Record<string, PgParamValue>;
  /** Permanent logical slots on a replica need feedback (Patroni's enforce_hot_standby_feedback): forced on. */
  hotStandbyFeedback?: boolean;
}

/** The data dir's parent: where the default socket goes. */
export function defaultSocketDir(config: DaemonConfig): string {
  return dirname(resolve(config.postgresql.data_dir));
}

function lowerKeys(p: Params): Params {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k.toLowerCase(), v]));
}

/** Dynamic parameters, with the cluster-wide ones only when valid (Patroni `_process_postgresql_parameters`). */
function dynamicParameters(dynamic: DynamicConfig): Params {
  return Object.fromEntries(
    Object.entries(lowerKeys(dynamic.postgresql.parameters)).filter(([k, v]) => !CLUSTER_WIDE[k] || CLUSTER_WIDE[k].valid(v)),
  );
}

function clusterWideDefaults(): Params {
  const out: Params = {};
  for (const [k, o] of Object.entries(CLUSTER_WIDE)) if (o.default !== null) out[k] = o.default;
  return out;
}

/**
 * The parameters PostgreSQL runs with (Patroni config.py `get_server_parameters`): defaults of the
 * cluster-wide settings, then the dynamic `postgresql.parameters`, then the local ones (except the
 * cluster-wide), then what we force: listen address and port, cluster_name = scope, hot standby,
 * wal_log_hints (pg_rewind needs it), hba/ident files in the data dir.
 */
export function effectiveParameters(config: DaemonConfig, dynamic: DynamicConfig, opts: ParamOptions = {}): Params {
  const local = Object.fromEntries(Object.entries(lowerKeys(config.postgresql.parameters)).filter(([k]) => !CLUSTER_WIDE[k]));
  const params: Params = { ...clusterWideDefaults(), ...dynamicParameters(dynamic), ...local };
  const { addresses, port } = listenParts(config.postgresql.listen);
  params.listen_addresses = addresses;
  params.port = port;
  params.cluster_name = config.scope;
  // 'hot_standby' is the pre-9.6 name of 'replica'.
  params.wal_level = String(params.wal_level).toLowerCase() === 'logical' ? 'logical' : 'replica';
  // PostgreSQL 13 replaced wal_keep_segments (16MB each by default) with wal_keep_size.
  const segments = params.wal_keep_segments;
  delete params.wal_keep_segments;
  if (params.wal_keep_size === undefined) params.wal_keep_size = segments !== undefined ? `${toInt(segments)! * 16}MB` : '128MB';
  // PostgreSQL's 5 s default delays a promotion requested right after the walreceiver lost a dead
  // primary (up to 15 waits out the interval first), and slows every replica's reconnect.
  params.wal_retrieve_retry_interval ??= WAL_RETRIEVE_RETRY_INTERVAL;
  const dataDir = resolve(config.postgresql.data_dir);
  for (const [k, file] of [['hba_file', 'pg_hba.conf'], ['ident_file', 'pg_ident.conf']] as const) {
    const v = params[k];
    params[k] = v === undefined || v === '' ? join(dataDir, file) : isAbsolute(String(v)) ? String(v) : join(dataDir, String(v));
  }
  params.unix_socket_directories ??= opts.socketDir ?? defaultSocketDir(config);
  for (const k of OURS_ONLY) delete params[k];
  if (opts.synchronousStandbyNames !== undefined) params.synchronous_standby_names = opts.synchronousStandbyNames;
  for (const [k, v] of Object.entries(opts.recoveryParameters ?? {})) params[k.toLowerCase()] = v;
  if (opts.hotStandbyFeedback) params.hot_standby_feedback = true;
  return params;
}

/** A value in postgresql.conf syntax. */
export function quoteValue(v: PgParamValue): string {
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'number') return String(v);
  // The config file lexer reads backslash escapes and doubled quotes inside '…'.
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** A libpq conninfo value: bare when safe, else single-quoted with \ and ' backslash-escaped (libpq rules). */
export function conninfoValue(v: string): string {
  return /^[A-Za-z0-9_.\-/:@]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * primary_conninfo (Patroni config.py `primary_conninfo_params`): the replication user with its
 * password, application_name = our member name (how the primary's pg_stat_replication and
 * synchronous_standby_names know us), and libpq's "prefer" for TLS, GSS and channel binding.
 */
export function primaryConninfo(config: DaemonConfig, up: UpstreamConn): string {
  const repl = config.postgresql.authentication.replication;
  const parts: Array<[string, string | undefined]> = [
    ['host', up.host],
    ['port', String(up.port)],
    ['user', repl.username],
    ['password', repl.password],
    ['application_name', config.name],
    ['sslmode', repl.sslmode ?? 'prefer'],
    ['sslrootcert', repl.sslrootcert],
    ['sslcert', repl.sslcert],
    ['sslkey', repl.sslkey],
    ['gssencmode', repl.gssencmode ?? 'prefer'],
    ['channel_binding', repl.channel_binding ?? 'prefer'],
    // Patroni: a standby leader streaming through a slot must reach the remote primary, not a standby of it.
    ['target_session_attrs', up.remote && !up.noSlot ? 'read-write' : undefined],
  ];
  return parts
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${conninfoValue(v!)}`)
    .join(' ');
}

/** The standby settings: null for a primary. `upstream: null` is a standby with nobody to stream from (yet). */
export interface StandbySettings {
  upstream: UpstreamConn | null;
  useSlots: boolean;
}

/**
 * The recovery parameters of a standby (Patroni config.py `build_recovery_params`). The recovery
 * targets are set empty so that nothing in an included file can pause, promote or stop the standby.
 */
export function standbyParameters(config: DaemonConfig, s: StandbySettings): Params {
  // A standby cluster's remote may be only an archive (no host): no primary_conninfo then.
  const up = s.upstream?.host ? s.upstream : null;
  return {
    primary_conninfo: up ? primaryConninfo(config, up) : '',
    primary_slot_name: up && s.useSlots && !up.noSlot ? (up.slotName ?? slotNameForMember(config.name)) : '',
    recovery_target: '',
    recovery_target_lsn: '',
    recovery_target_name: '',
    recovery_target_time: '',
    recovery_target_timeline: 'latest',
    recovery_target_xid: '',
    // Standby cluster (Patroni build_recovery_params): restore_command, archive_cleanup_command, recovery_min_apply_delay.
    ...s.upstream?.recovery,
  };
}

export interface ConfOptions extends ParamOptions {
  includeBase: boolean;
  standby: StandbySettings | null;
}

export function postgresqlConf(config: DaemonConfig, dynamic: DynamicConfig, opts: ConfOptions): string {
  const lines = ['# Written by pgwarden: changes here are overwritten. Set parameters in the pgwarden config.'];
  if (opts.includeBase) lines.push("include 'postgresql.base.conf'");
  const params = effectiveParameters(config, dynamic, opts);
  const sp = opts.standby ? standbyParameters(config, opts.standby) : {};
  // A standby setting (restore_command of a standby cluster) replaces the same parameter, not repeats it.
  for (const k of Object.keys(params).sort()) if (!(k in sp)) lines.push(`${k} = ${quoteValue(params[k]!)}`);
  if (opts.standby) {
    lines.push('', '# standby');
    for (const k of Object.keys(sp).sort()) lines.push(`${k} = ${quoteValue(sp[k]!)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * postgresql.auto.conf without recovery settings (Patroni `_sanitize_auto_conf`): pg_basebackup -R or
 * an ALTER SYSTEM would otherwise override the primary_conninfo we write. null when nothing changes.
 */
export function sanitizeAutoConf(text: string): string | null {
  const lines = text.split(/(?<=\n)/);
  const kept = lines.filter((l) => {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?/.exec(l);
    return !(m && RECOVERY_PARAMETERS.has(m[1]!.toLowerCase()));
  });
  return kept.length === lines.length ? null : kept.join('');
}

/** pg_hba.conf: `postgresql.pg_hba`, else the dynamic `postgresql.pg_hba`, else `bootstrap.pg_hba`, else our default. */
export function pgHbaConf(config: DaemonConfig, dynamic: DynamicConfig): string {
  const lines = config.postgresql.pg_hba ?? dynamic.postgresql.pg_hba ?? config.bootstrap.pg_hba ?? defaultHba(config);
  return `# Written by pgwarden: changes here are overwritten. Set postgresql.pg_hba in the pgwarden config.\n${lines.join('\n')}\n`;
}

/**
 * Safe by default: trust only on the unix socket (its directory's permissions guard it); over TCP
 * passwords (scram-sha-256) for the replication user's replication connections and for the superuser
 * and rewind user from anywhere (other members rewind from us), everybody else from loopback only.
 */
function defaultHba(config: DaemonConfig): string[] {
  const { replication, superuser, rewind } = config.postgresql.authentication;
  const lines = ['local all all trust', `host replication ${hbaName(replication.username)} all scram-sha-256`];
  for (const u of [superuser, rewind]) if (u) lines.push(`host all ${hbaName(u.username)} all scram-sha-256`);
  lines.push('host all all 127.0.0.1/32 scram-sha-256', 'host all all ::1/128 scram-sha-256');
  return lines;
}

/** A role name in pg_hba.conf: double-quoted unless plain. */
function hbaName(name: string): string {
  return /^[A-Za-z0-9_]+$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}
