/**
 * Scalar readers with Patroni's leniency (patroni/utils.py 3.0.2): the same YAML that Patroni
 * accepts must mean the same thing here. All return `null` for "not this kind of value" so callers
 * decide whether that is an error (at load) or a warning plus default (for stored dynamic config).
 */

export type Obj = Record<string, unknown>;

/** Patroni's loose flags (tags, method options): true, 'true', 'on' or 'yes'. */
export function isTruthy(v: unknown): boolean {
  return v === true || v === 'true' || v === 'on' || v === 'yes';
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Patroni's parse_bool: on/true/yes/1 and off/false/no/0, any case, also as numbers. */
export function toBool(v: unknown): boolean | null {
  if (typeof v === 'boolean') return v;
  if (typeof v !== 'string' && typeof v !== 'number') return null;
  const s = String(v).trim().toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(s)) return true;
  if (['off', 'false', 'no', '0'].includes(s)) return false;
  return null;
}

/** A finite number, also when written as a string ("30"). */
export function toNumber(v: unknown): number | null {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

/**
 * Python's int(): a number is truncated, a string must spell an integer. Patroni applies int() to
 * every timing key of the dynamic config (config.py `_safe_copy_dynamic_configuration`).
 */
export function toInt(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : null;
  if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) return Number(v);
  return null;
}

/**
 * Patroni's split_host_port: the last ':' separates the port, so IPv6 hosts work bracketed or not;
 * `defaultPort` is used when there is no ':' at all. Null when the port is not a number.
 */
export function splitHostPort(s: string, defaultPort?: number): { host: string; port: number } | null {
  const i = s.lastIndexOf(':');
  if (i < 0 || (s.startsWith('[') && s.endsWith(']'))) {
    return defaultPort === undefined ? null : { host: unbracket(s.trim()), port: defaultPort };
  }
  const portText = s.slice(i + 1).trim();
  if (!/^\d+$/.test(portText)) return null;
  return { host: unbracket(s.slice(0, i).trim()), port: Number(portText) };
}

function unbracket(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** "host:port", with IPv6 hosts bracketed so the result splits back unambiguously. */
export function joinHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}

/** A value as it appears in messages: strings quoted, everything else as JSON. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export type WatchdogMode = 'off' | 'automatic' | 'required';

/** Patroni's watchdog parse_mode, with its aliases; null for a value it would not recognise. */
export function parseWatchdogMode(v: unknown): WatchdogMode | null {
  if (v === false) return 'off';
  const m = String(v ?? 'automatic').toLowerCase();
  if (m === 'require' || m === 'required') return 'required';
  if (m === 'auto' || m === 'automatic') return 'automatic';
  if (m === 'off' || m === 'disable' || m === 'disabled') return 'off';
  return null;
}
