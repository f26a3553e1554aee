/**
 * Parsing what people type into `pgwarden ctl`: timestamps, confirmations, roles, PostgreSQL versions,
 * the `--dcs-url`. Pure; bad input is an ExitError with code 2 (usage), as main.ts maps it.
 */
import type { Cluster, Member } from '../dcs/types.js';
import { ExitError } from '../util/errors.js';

/** A usage error: bad flag values, unparsable input (exit code 2). */
export function usage(message: string): ExitError {
  return new ExitError(message, 2);
}

/** A refused or failed request, or arguments that do not fit the cluster (exit code 1). */
export function failed(message: string): ExitError {
  return new ExitError(message, 1);
}

const ISO = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$/i;

export interface Scheduled {
  /** Python's `datetime.isoformat()` of the parsed time, e.g. `2026-11-25T12:00:00+01:00`: what is sent. */
  iso: string;
  date: Date;
}

/**
 * patronictl's `parse_scheduled`: '' / 'now' / undefined → null (at once); otherwise an ISO-8601 time.
 * Without a zone it is local time (dateutil's tzlocal), with one the offset is kept as written.
 * `localOffset(date)` gives the local UTC offset in minutes at a wall time (injected for tests).
 */
export function parseScheduled(text: string | undefined, localOffset: (wall: Date) => number = systemOffset): Scheduled | null {
  const s = (text ?? '').trim();
  if (s === '' || s.toLowerCase() === 'now') return null;
  const bad = usage(`Unable to parse scheduled timestamp (${text}). It should be in an unambiguous format (e.g. ISO 8601)`);
  const m = ISO.exec(s);
  if (!m) throw bad;
  const [y, mo, d, h = '0', mi = '0', sec = '0'] = m.slice(1, 7) as string[];
  const micro = Number((m[7] ?? '').padEnd(6, '0').slice(0, 6));
  const wall = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)));
  const valid =
    wall.getUTCFullYear() === Number(y) && wall.getUTCMonth() === Number(mo) - 1 && wall.getUTCDate() === Number(d) && wall.getUTCHours() === Number(h) && wall.getUTCMinutes() === Number(mi) && wall.getUTCSeconds() === Number(sec);
  if (!valid) throw bad;
  const offset = m[8] ? zoneOffset(m[8]) : localOffset(wall);
  const date = new Date(wall.getTime() - offset * 60_000 + Math.floor(micro / 1000));
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const iso =
    `${p(Number(y), 4)}-${p(Number(mo))}-${p(Number(d))}T${p(Number(h))}:${p(Number(mi))}:${p(Number(sec))}` +
    `${micro ? `.${p(micro, 6)}` : ''}${sign}${p(Math.floor(abs / 60))}:${p(abs % 60)}`;
  return { iso, date };
}

function zoneOffset(z: string): number {
  if (/^(Z|UTC)$/i.test(z)) return 0;
  const sign = z.startsWith('-') ? -1 : 1;
  const digits = z.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
}

/** The local UTC offset (minutes east) at a local wall time given as if it were UTC. */
function systemOffset(wall: Date): number {
  const local = new Date(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate(), wall.getUTCHours(), wall.getUTCMinutes(), wall.getUTCSeconds());
  return -local.getTimezoneOffset();
}

/** An example time an hour from now, as patronictl's prompts show it: `2026-11-25T12:00`. */
export function nextHourExample(now: Date): string {
  const d = new Date(now.getTime() + 3_600_000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** click.confirm's reading of an answer: y/yes → true, n/no → false, empty → the default, else null (ask again). */
export function parseYesNo(answer: string, def: boolean): boolean | null {
  const a = answer.trim().toLowerCase();
  if (a === '') return def;
  if (a === 'y' || a === 'yes') return true;
  if (a === 'n' || a === 'no') return false;
  return null;
}

/** patronictl's `postgres_version_to_int` check of `--pg-version`: X.Y (X ≥ 10) or X.Y.Z. */
export function checkPgVersion(v: string): string {
  const parts = v.split('.');
  if (!parts.every((x) => /^\s*[+-]?\d+\s*$/.test(x))) throw usage(`Invalid PostgreSQL version: ${v}`);
  const n = parts.map(Number);
  if (n.length < 2 || (n.length === 2 && n[0]! < 10) || n.length > 3) throw usage(`Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: ${v}`);
  return v;
}

export const ROLE_CHOICES = ['leader', 'primary', 'standby-leader', 'replica', 'standby', 'any', 'master'] as const;
export type RoleChoice = (typeof ROLE_CHOICES)[number];

export function parseRole(v: string): RoleChoice {
  if ((ROLE_CHOICES as readonly string[]).includes(v)) return v as RoleChoice;
  throw usage(`--role: expected one of ${ROLE_CHOICES.join(', ')}, got '${v}'`);
}

/**
 * patronictl's `get_all_members`: the leader for leader roles (primary only if it is not a standby
 * leader, standby-leader only if it is), the others for replica/standby, everyone for any.
 */
export function membersWithRole(cluster: Cluster, role: RoleChoice): Member[] {
  const leaderName = cluster.leader?.name ?? null;
  if (role === 'leader' || role === 'master' || role === 'primary' || role === 'standby-leader') {
    const leader = leaderName ? cluster.members.find((m) => m.name === leaderName) : undefined;
    if (!leader) return [];
    const isStandbyLeader = leader.data.role === 'standby_leader';
    const fits = role === 'leader' || (role === 'standby-leader' ? isStandbyLeader : !isStandbyLeader);
    return fits ? [leader] : [];
  }
  return cluster.members.filter((m) => role === 'any' || m.name !== leaderName);
}

/** Members in the order patronictl asks them for cluster-wide requests: the leader first, only those with an API. */
export function membersLeaderFirst(cluster: Cluster): Member[] {
  const leader = cluster.members.find((m) => m.name === cluster.leader?.name && m.data.api_url);
  return [...(leader ? [leader] : []), ...cluster.members.filter((m) => m !== leader && m.data.api_url)];
}

/** Patroni's `Member.conn_kwargs()` host and port as `ctl dsn` prints them. */
export function dsnOf(m: Member): string | null {
  const kw = m.data.conn_kwargs;
  if (kw && typeof kw === 'object' && !Array.isArray(kw)) {
    const k = kw as Record<string, unknown>;
    return `host=${pyValue(k.host)} port=${pyValue(k.port)}`;
  }
  if (!m.data.conn_url) return null;
  let u: URL;
  try {
    u = new URL(m.data.conn_url);
  } catch {
    return null;
  }
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return `host=${host || 'None'} port=${u.port || '5432'}`;
}

function pyValue(v: unknown): string {
  return v === undefined || v === null ? 'None' : String(v);
}

export interface DcsUrl {
  hosts: string[];
  protocol: 'http' | 'https';
  username?: string;
  password?: string;
}

/**
 * `--dcs-url`: `http://host:port`, `https://…`, `etcd3://host:port` or a bare `host:port`, several
 * comma-separated; credentials may be given as `user:password@`. The port defaults to 2379.
 */
export function parseDcsUrl(text: string): DcsUrl {
  const out: DcsUrl = { hosts: [], protocol: 'http' };
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(part) ? part : `etcd3://${part}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw usage(`--dcs-url: expected http://host:port, got '${part}'`);
    }
    const scheme = u.protocol.slice(0, -1).toLowerCase();
    if (!['http', 'https', 'etcd3', 'etcd'].includes(scheme)) throw usage(`--dcs-url: unsupported scheme '${scheme}' (pgwarden speaks etcd v3: http://, https:// or etcd3://)`);
    if (!u.hostname) throw usage(`--dcs-url: no host in '${part}'`);
    if (scheme === 'https') out.protocol = 'https';
    if (u.username) out.username = decodeURIComponent(u.username);
    if (u.password) out.password = decodeURIComponent(u.password);
    const host = u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname;
    out.hosts.push(`${host}:${u.port || '2379'}`);
  }
  if (out.hosts.length === 0) throw usage('--dcs-url: no host given');
  return out;
}
