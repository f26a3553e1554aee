/**
 * Patroni-compatible REST routes (api.py, 3.0.2): a request and the HA loop's state view in, a response
 * out, no socket. Health endpoints answer GET with the /patroni body and their status code, HEAD/OPTIONS
 * with the code only (HAProxy's `option httpchk OPTIONS /primary`).
 *
 * Deliberate differences from Patroni 3.0.2:
 * - unknown paths are 404 and a bad `?lag=` (unparsable, negative, empty) is 400, both JSON — Patroni
 *   answers any unknown GET with 503 plus the status body and ignores a lag it cannot parse, so a typo
 *   in a probe URL looks like "not this member";
 * - /primary also wants PostgreSQL to run as primary (Patroni: the lock alone); the role gauges of
 *   /metrics count only a PostgreSQL that answered;
 * - an empty `?tag_x=` is checked (against a missing or non-empty tag: 503), Patroni drops it;
 * - /readiness carries the status body; HEAD/OPTIONS of /patroni, /liveness… answer their GET code.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Tags } from '../config/types.js';
import { toBool } from '../config/values.js';
import type { Cluster } from '../dcs/types.js';
import { clusterAsJson, clusterLastLsn, isStandbyClusterConfig } from './cluster-json.js';
import type { ApiBackend, ApiRequest, ApiResponse, ApiView } from './types.js';
import { HttpError, freshCluster, type Handler, type Route, type RouteContext, type RouteOptions } from './http.js';
import { MANAGEMENT_ROUTES } from './manage.js';
import { checkClientCert } from './tls.js';
import { getFailsafe, postFailsafe } from './failsafe.js';

export { readJsonBody, type Handler, type Route, type RouteContext, type RouteOptions } from './http.js';

export { HttpError } from './http.js';

/** Methods that change something: always access-controlled. */
export const UNSAFE_METHODS: readonly string[] = ['POST', 'PUT', 'PATCH', 'DELETE'];
const SAFE_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS'];

// ---------------------------------------------------------------------------------------------
// Health endpoints (Patroni's generic do_GET)

type HealthKind = 'primary' | 'leader' | 'standby_leader' | 'replica' | 'read-only' | 'read-only-sync' | 'sync' | 'async' | 'health';

const HEALTH_PATHS: Readonly<Record<string, HealthKind>> = {
  '/': 'primary',
  '/primary': 'primary',
  '/master': 'primary',
  '/read-write': 'primary',
  '/leader': 'leader',
  '/standby-leader': 'standby_leader',
  '/standby_leader': 'standby_leader',
  '/replica': 'replica',
  '/read-only': 'read-only',
  '/read-only-sync': 'read-only-sync',
  '/read-only-synchronous': 'read-only-sync',
  '/sync': 'sync',
  '/synchronous': 'sync',
  '/async': 'async',
  '/asynchronous': 'async',
  '/health': 'health',
};

/** The first value of each query key (Patroni reads `path_query[k][0]`). */
function queryDict(q: URLSearchParams): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of q) if (!m.has(k)) m.set(k, v);
  return m;
}

/** Patroni's `get_tags`: the configured tags without the standard flags that are off. */
export function effectiveTags(tags: Tags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tags)) {
    if (v === undefined) continue;
    if (['clonefrom', 'nofailover', 'noloadbalance', 'nosync'].includes(k) && !v) continue;
    out[k] = v;
  }
  return out;
}

function isStandbyCluster(v: ApiView): boolean {
  return v.role === 'standby_leader' || isStandbyClusterConfig(v.dynamic.raw.standby_cluster);
}

/** Patroni's `ha.is_leader()`: we hold the leader lock as of the HA loop's last store read. */
function holdsLock(ctx: RouteContext): boolean {
  return ctx.view.isLeader;
}

/** The status code of a health endpoint: Patroni's do_GET, plus "PostgreSQL runs as primary" for /primary. */
export function healthStatus(kind: HealthKind, ctx: RouteContext, status: Record<string, unknown>): number {
  const { view: v, cluster } = ctx;
  const q = queryDict(ctx.req.query);
  const role = status.role;

  const lagParam = q.get('lag');
  const maxLag = lagParam === undefined ? Infinity : parseIntWithUnit(lagParam, 'B');
  if (maxLag === null || maxLag < 0) {
    throw new HttpError(400, `lag: not a size in bytes (a number >= 0, optionally with B, kB, MB, GB or TB): '${lagParam}'`);
  }
  const leaderOptime = cluster ? (clusterLastLsn(cluster) ?? 0) : 0;
  const xlog = (status.xlog ?? {}) as Record<string, unknown>;
  const replayed = typeof xlog.replayed_location === 'number' ? xlog.replayed_location : 0;
  const lagging = leaderOptime > 0 && leaderOptime > replayed + maxLag;
  let replica = !isOn(v.config.tags.noloadbalance) && !lagging && role === 'replica' && status.state === 'running' ? 200 : 503;

  let leader = 503;
  let primary = 503;
  let standbyLeader = 503;
  if (!cluster && v.paused) {
    leader = role === 'master' || role === 'primary' || role === 'standby_leader' ? 200 : 503;
    primary = role === 'master' || role === 'primary' ? 200 : 503;
    standbyLeader = role === 'standby_leader' ? 200 : 503;
  } else if (holdsLock(ctx)) {
    leader = 200;
    if (isStandbyCluster(v)) {
      primary = replica = 503;
      standbyLeader = role === 'replica' || role === 'standby_leader' ? 200 : 503;
    } else {
      // Patroni answers 200 as soon as it holds the lock; we also want PostgreSQL to run as primary.
      primary = role === 'master' && status.xlog !== undefined ? 200 : 503;
    }
  }

  let code = 503;
  let ignoreTags = false;
  const isSync = status.sync_standby === true;
  switch (kind) {
    case 'standby_leader':
      code = standbyLeader;
      ignoreTags = true;
      break;
    case 'leader':
      code = leader;
      ignoreTags = true;
      break;
    case 'primary':
      code = primary;
      ignoreTags = true;
      break;
    case 'replica':
      code = replica;
      break;
    case 'read-only':
      code = primary === 200 || standbyLeader === 200 ? 200 : replica;
      break;
    case 'health':
      code = status.state === 'running' ? 200 : 503;
      break;
    case 'sync':
      if (cluster && isSync) code = replica;
      break;
    case 'async':
      if (cluster && !isSync) code = replica;
      break;
    case 'read-only-sync':
      if (cluster) code = primary === 200 || standbyLeader === 200 ? 200 : isSync ? replica : 503;
      break;
  }

  if (!ignoreTags && code === 200) {
    const tags = effectiveTags(v.config.tags);
    for (const [k, want] of q) {
      // A tag asked for must be set on this member and equal (Patroni compares non-strings as lower-case text).
      if (!k.startsWith('tag_')) continue;
      const have = tags[k.slice(4)];
      if (have === undefined || have === null) return 503;
      if ((typeof have === 'string' ? have : String(have).toLowerCase()) !== want) return 503;
    }
  }
  return code;
}

function isOn(v: unknown): boolean {
  return toBool(v) === true;
}

// ---------------------------------------------------------------------------------------------
// The /patroni body (get_postgresql_status + _write_status_response)

/** Patroni's `cluster.is_synchronous_mode()`, read from the effective dynamic config. */
function syncMode(v: ApiView): boolean {
  return v.dynamic.synchronous_mode === true || v.dynamic.synchronous_mode === 'quorum';
}

/** The body of GET /patroni and of every health endpoint. */
export function patroniStatus(v: ApiView, cluster: Cluster | null): Record<string, unknown> {
  const pg = v.pg;
  let r: Record<string, unknown>;
  if (['running', 'restarting', 'starting'].includes(v.state) && pg?.running && pg.accepting && pg.inRecovery !== null) {
    let role = pg.inRecovery ? 'replica' : 'master';
    if (role === 'replica' && isStandbyCluster(v)) role = v.role === 'standby_leader' ? 'standby_leader' : 'replica';
    r = {
      state: v.state,
      postmaster_start_time: pg.postmasterStartTime,
      role,
      server_version: pg.serverVersion,
      xlog: pg.inRecovery
        ? { received_location: pg.receiveLsn ?? pg.replayLsn, replayed_location: pg.replayLsn, replayed_timestamp: pg.replayTimestamp, paused: pg.replayPaused }
        : { location: pg.walPosition },
    };
    if (role === 'replica' && cluster && syncMode(v) && (cluster.sync?.sync_standby ?? []).includes(v.name)) r.sync_standby = true;
    r.timeline = pg.timeline;
    if (pg.replication.length) {
      r.replication = pg.replication.map(({ usename, application_name, client_addr, state, sync_state, sync_priority }) => ({
        usename,
        application_name,
        client_addr,
        state,
        sync_state,
        sync_priority,
      }));
    }
  } else {
    // Patroni: a state of 'running' whose query fails is reported as 'unknown'.
    r = { state: v.state === 'running' ? 'unknown' : v.state, role: v.role };
  }
  if (!cluster || !cluster.leader) r.cluster_unlocked = true;
  if (v.failsafeActive) r.failsafe_mode_is_active = true;
  r.dcs_last_seen = v.dcsLastSeen ?? 0;
  const tags = effectiveTags(v.config.tags);
  if (Object.keys(tags).length) r.tags = tags;
  if (pg?.sysid) r.database_system_identifier = pg.sysid;
  if (pg?.pendingRestart) r.pending_restart = true;
  r.patroni = { version: v.version, scope: v.scope, name: v.name };
  if (v.scheduledRestart) {
    // Patroni shows the schedule and its filters, not the start time it was taken against.
    const { postmaster_start_time: _p, ...shown } = v.scheduledRestart;
    r.scheduled_restart = shown;
  }
  if (v.paused) r.pause = true;
  return r;
}

// ---------------------------------------------------------------------------------------------
// /metrics (get_metrics)

/** Patroni's `patroni_version`: each part of the semver padded to two digits (3.0.2 → 030002). */
export function encodeVersion(version: string): string {
  return version
    .split(/[.+-]/)
    .slice(0, 3)
    .map((x) => String(Number.parseInt(x, 10) || 0).padStart(2, '0'))
    .join('');
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function metricsText(v: ApiView, status: Record<string, unknown>): string {
  const xlog = (status.xlog ?? {}) as Record<string, unknown>;
  const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const epoch = (x: unknown): number => {
    if (typeof x !== 'string') return 0;
    const t = Date.parse(x);
    return Number.isFinite(t) ? t / 1000 : 0;
  };
  // Role gauges count only a PostgreSQL that answered (Patroni also counts a stopped member's configured role).
  const role = status.xlog !== undefined ? status.role : undefined;
  const isPrimary = role === 'master' || role === 'primary';
  const rows: Array<[string, 'gauge' | 'counter', string, number | string]> = [
    ['patroni_version', 'gauge', 'Patroni semver without periods.', encodeVersion(v.version)],
    ['patroni_postgres_running', 'gauge', 'Value is 1 if Postgres is running, 0 otherwise.', status.state === 'running' ? 1 : 0],
    ['patroni_postmaster_start_time', 'gauge', 'Epoch seconds since Postgres started.', epoch(status.postmaster_start_time)],
    ['patroni_master', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise.', isPrimary ? 1 : 0],
    ['patroni_primary', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise.', isPrimary ? 1 : 0],
    ['patroni_xlog_location', 'counter', 'Current location of the Postgres transaction log, 0 if this node is not the leader.', num(xlog.location)],
    ['patroni_standby_leader', 'gauge', 'Value is 1 if this node is the standby_leader, 0 otherwise.', role === 'standby_leader' ? 1 : 0],
    ['patroni_replica', 'gauge', 'Value is 1 if this node is a replica, 0 otherwise.', role === 'replica' ? 1 : 0],
    ['patroni_sync_standby', 'gauge', 'Value is 1 if this node is a sync standby replica, 0 otherwise.', status.sync_standby === true ? 1 : 0],
    ['patroni_xlog_received_location', 'counter', 'Current location of the received Postgres transaction log, 0 if this node is not a replica.', num(xlog.received_location)],
    ['patroni_xlog_replayed_location', 'counter', 'Current location of the replayed Postgres transaction log, 0 if this node is not a replica.', num(xlog.replayed_location)],
    ['patroni_xlog_replayed_timestamp', 'gauge', 'Current timestamp of the replayed Postgres transaction log, 0 if null.', epoch(xlog.replayed_timestamp)],
    ['patroni_xlog_paused', 'gauge', 'Value is 1 if the Postgres xlog is paused, 0 otherwise.', xlog.paused === true ? 1 : 0],
    ['patroni_postgres_server_version', 'gauge', 'Version of Postgres (if running), 0 otherwise.', num(status.server_version)],
    ['patroni_cluster_unlocked', 'gauge', 'Value is 1 if the cluster is unlocked, 0 if locked.', status.cluster_unlocked === true ? 1 : 0],
    ['patroni_failsafe_mode_is_active', 'gauge', 'Value is 1 if failsafe mode is active, 0 if inactive.', status.failsafe_mode_is_active === true ? 1 : 0],
    ['patroni_postgres_timeline', 'counter', 'Postgres timeline of this node (if running), 0 otherwise.', num(status.timeline)],
    ['patroni_dcs_last_seen', 'gauge', 'Epoch timestamp when DCS was last contacted successfully by Patroni.', num(status.dcs_last_seen)],
    ['patroni_pending_restart', 'gauge', 'Value is 1 if the node needs a restart, 0 otherwise.', v.pg?.pendingRestart ? 1 : 0],
    ['patroni_is_paused', 'gauge', 'Value is 1 if auto failover is disabled, 0 otherwise.', v.paused ? 1 : 0],
  ];
  const label = `{scope="${escapeLabel(v.scope)}"}`;
  const out: string[] = [];
  for (const [name, type, help, value] of rows) out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${label} ${value}`);
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Other handlers

/**
 * Patroni's do_GET_liveness: the HA loop completed within ttl (a running primary) or 2*ttl (anything
 * else: a replica's loop may stall longer without harm); always alive while paused. Before the first
 * loop completes the time counts from `startedAt` (unknown: alive).
 */
export function isAlive(v: ApiView, now: number, startedAt: number | null): boolean {
  if (v.paused) return true;
  const since = v.lastLoopAt ?? startedAt;
  if (since === null) return true;
  const primary = v.pg?.running === true && v.pg.inRecovery === false;
  return now - since <= (primary ? 1 : 2) * v.dynamic.ttl * 1000;
}

function healthHandler(kind: HealthKind): Handler {
  return (ctx) => {
    const status = patroniStatus(ctx.view, ctx.cluster);
    return { status: healthStatus(kind, ctx, status), body: status };
  };
}

const GET_ROUTES: Record<string, Handler> = {
  ...Object.fromEntries(Object.entries(HEALTH_PATHS).map(([p, k]) => [p, healthHandler(k)])),
  // Liveness: the status line only, as Patroni's _write_status_code_only.
  '/liveness': (ctx) => ({ status: isAlive(ctx.view, ctx.now, ctx.startedAt) ? 200 : 503 }),
  // Readiness (3.0.2): the leader, or PostgreSQL running with a view of the cluster. With the status body.
  '/readiness': (ctx) => ({
    status: holdsLock(ctx) ? 200 : ctx.view.state === 'running' && ctx.cluster !== null ? 200 : 503,
    body: patroniStatus(ctx.view, ctx.cluster),
  }),
  '/patroni': (ctx) => ({ status: 200, body: patroniStatus(ctx.view, ctx.cluster) }),
  '/cluster': async (ctx) => ({
    status: 200,
    body: clusterAsJson(await freshCluster(ctx.backend), ctx.view.scope, { standbyCluster: isStandbyCluster(ctx.view) }),
  }),
  '/history': async (ctx) => ({ status: 200, body: (await freshCluster(ctx.backend)).history }),
  '/config': async (ctx) => {
    const c = ctx.cluster ?? (await freshCluster(ctx.backend));
    if (!c.config) throw new HttpError(502, 'there is no configuration in the store');
    return { status: 200, body: c.config.value };
  },
  '/failsafe': getFailsafe,
  '/metrics': (ctx) => ({
    status: 200,
    text: metricsText(ctx.view, patroniStatus(ctx.view, ctx.cluster)),
    headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' },
  }),
};

/**
 * Unsafe routes, keyed `METHOD /path`, all behind `restapi.authentication`. Switchover, failover,
 * restart, reinitialize and config changes slot in here: validate, record the intent through a backend
 * hook, wake the loop — never act on PostgreSQL from here.
 */
const UNSAFE_ROUTES: Record<string, Handler> = { ...MANAGEMENT_ROUTES, 'POST /failsafe': postFailsafe };

/** Every route by `METHOD /path`. */
export const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ...Object.entries(GET_ROUTES).map(([p, handler]): [string, Route] => [`GET ${p}`, { auth: false, handler }]),
  ...Object.entries(UNSAFE_ROUTES).map(([k, handler]): [string, Route] => [k, { auth: true, handler }]),
]);

// ---------------------------------------------------------------------------------------------
// Access control (Patroni's check_access: Basic auth part)

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** 401 unless the request carries the configured Basic credentials (nothing configured: open). */
export function checkAuth(req: ApiRequest, auth: { username: string; password: string } | undefined): void {
  if (!auth) return;
  const challenge = { 'WWW-Authenticate': 'Basic realm="pgwarden"' };
  const h = req.headers.authorization;
  const header = Array.isArray(h) ? h[0] : h;
  if (header === undefined) throw new HttpError(401, 'no auth header received', challenge);
  const given = header.startsWith('Basic ') ? Buffer.from(header.slice(6).trim(), 'base64').toString('utf8') : null;
  // Compare digests: constant time, and lengths never leak.
  if (given === null || !timingSafeEqual(sha256(given), sha256(`${auth.username}:${auth.password}`))) {
    throw new HttpError(401, 'not authenticated', challenge);
  }
}

// ---------------------------------------------------------------------------------------------
// The router

function knownMethodsFor(path: string): string[] {
  const methods: string[] = [];
  for (const key of ROUTES.keys()) {
    const [m, p] = key.split(' ');
    if (p === path && m) methods.push(...(m === 'GET' ? SAFE_METHODS : [m]));
  }
  return methods;
}

/** Answer one request. Never throws for a bad request: errors become JSON `{message}` responses. */
export async function route(req: ApiRequest, backend: ApiBackend, opts: RouteOptions = {}): Promise<ApiResponse> {
  try {
    return await dispatch(req, backend, opts);
  } catch (e) {
    if (e instanceof HttpError) return { status: e.status, body: { message: e.message }, ...(e.headers ? { headers: e.headers } : {}) };
    throw e;
  }
}

async function dispatch(req: ApiRequest, backend: ApiBackend, opts: RouteOptions): Promise<ApiResponse> {
  const { method, path } = req;
  if (!SAFE_METHODS.includes(method) && !UNSAFE_METHODS.includes(method)) {
    throw new HttpError(405, `unsupported method: ${method}`, { Allow: [...SAFE_METHODS, ...UNSAFE_METHODS].join(', ') });
  }
  const r = ROUTES.get(`${SAFE_METHODS.includes(method) ? 'GET' : method} ${path}`);
  if (!r) {
    const allowed = knownMethodsFor(path);
    if (allowed.length) throw new HttpError(405, `method ${method} is not allowed on ${path}`, { Allow: allowed.join(', ') });
    throw new HttpError(404, `no such endpoint: ${method} ${path}`);
  }
  const view = backend.view();
  if (r.auth) {
    // Patroni's check_access order: client certificate (verify_client), then basic auth.
    checkClientCert(req, view.config.restapi);
    checkAuth(req, view.config.restapi.authentication);
  }
  const ctx: RouteContext = { req, view, backend, cluster: view.cluster, now: backend.now(), startedAt: opts.startedAt ?? null };
  const res = await r.handler(ctx);
  // HEAD and OPTIONS: the status code (and headers) only.
  return method === 'HEAD' || method === 'OPTIONS' ? { status: res.status, ...(res.headers ? { headers: res.headers } : {}) } : res;
}

// ---------------------------------------------------------------------------------------------
// Patroni's parse_int(value, base_unit): strtol with base 0, then PostgreSQL memory units

const HEX_RE = /^[-+]?0x[0-9a-fA-F]+/;
const OCT_RE = /^[-+]?0[0-7]*/;
const DEC_RE = /^[-+]?(0|[1-9][0-9]*)/;
const DBL_RE = /^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?/;
const BYTE_UNITS: Readonly<Record<string, number>> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const ROUND_TO: Readonly<Record<string, string>> = { TB: 'GB', GB: 'MB', MB: 'kB', kB: 'B' };

/** Round half to even (Patroni's rint). */
function rint(x: number): number {
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);
}

function strtol(s: string): [number | null, string] {
  for (const [re, base] of [
    [HEX_RE, 16],
    [OCT_RE, 8],
    [DEC_RE, 10],
  ] as const) {
    const m = re.exec(s);
    if (m) {
      const text = m[0];
      const neg = text.startsWith('-');
      const digits = text.replace(/^[-+]/, '').replace(/^0x/i, '');
      const n = digits === '' ? 0 : Number.parseInt(digits, base);
      return [neg ? -n : n, s.slice(text.length)];
    }
  }
  return [null, s];
}

/** A size as Patroni's `parse_int(value, 'B')` reads `?lag=`: `1048576`, `0x100000`, `1MB`, `1.5 GB`; null if unparsable. */
export function parseIntWithUnit(value: string, baseUnit: 'B'): number | null {
  const s = value.trim();
  let [val, unit] = strtol(s);
  if ((val === null && unit.startsWith('.')) || (unit && ['.', 'e', 'E'].includes(unit[0]!))) {
    const m = DBL_RE.exec(s);
    [val, unit] = m ? [Number(m[0]), s.slice(m[0].length)] : [null, s];
  }
  if (val === null) return null;
  unit = unit.trim();
  if (!unit) return rint(val);
  const mult = baseUnit === 'B' ? BYTE_UNITS[unit] : undefined;
  if (mult === undefined) return null;
  let bytes = val * mult;
  const roundTo = ROUND_TO[unit];
  if (roundTo) {
    const m = BYTE_UNITS[roundTo]!;
    bytes = rint(bytes / m) * m;
  }
  return rint(bytes);
}
