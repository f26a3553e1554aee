/**
 * Patroni-compatible REST routes (api.py, 3.0.2): request + state view → response, no socket.
 * Health endpoints answer GET with the /patroni body and their status code, HEAD/OPTIONS with the code
 * only (HAProxy's `option httpchk OPTIONS /primary`).
 */
import { clusterAsJson, clusterLastLsn } from './cluster-json.js';
import type { ApiBackend, ApiRequest, ApiResponse, ApiView } from './types.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Check = (v: ApiView, q: URLSearchParams) => boolean;

const isPrimary = (v: ApiView) => v.isLeader && v.pg?.running === true && v.pg.inRecovery === false;
const isRunning = (v: ApiView) => v.state === 'running';
const isReplica = (v: ApiView) => isRunning(v) && v.pg?.inRecovery === true && !v.isLeader;
const isSync = (v: ApiView) => (v.cluster?.sync?.sync_standby ?? []).includes(v.name);

function replicaOk(v: ApiView, q: URLSearchParams): boolean {
  if (!isReplica(v) || truthy(v.config.tags.noloadbalance)) return false;
  const lag = q.get('lag');
  if (lag !== null) {
    const max = parseSize(lag);
    const last = v.cluster ? clusterLastLsn(v.cluster) : null;
    const mine = v.pg?.walPosition ?? null;
    if (last !== null && mine !== null && last - mine > max) return false;
  }
  for (const [k, val] of q) {
    if (k.startsWith('tag_') && String(v.config.tags[k.slice(4)] ?? '') !== val) return false;
  }
  return true;
}

const HEALTH: Record<string, Check> = {
  '/': isPrimary,
  '/primary': isPrimary,
  '/master': isPrimary,
  '/read-write': isPrimary,
  '/leader': (v) => v.isLeader,
  '/standby-leader': (v) => v.isLeader && v.role === 'standby_leader',
  '/standby_leader': (v) => v.isLeader && v.role === 'standby_leader',
  '/replica': replicaOk,
  '/read-only': (v, q) => isPrimary(v) || (v.isLeader && v.role === 'standby_leader') || replicaOk(v, q),
  '/sync': (v) => isReplica(v) && isSync(v),
  '/synchronous': (v) => isReplica(v) && isSync(v),
  '/async': (v, q) => replicaOk(v, q) && !isSync(v),
  '/asynchronous': (v, q) => replicaOk(v, q) && !isSync(v),
  '/health': isRunning,
  '/readiness': (v) => v.isLeader || (isRunning(v) && v.cluster !== null),
};

export async function route(req: ApiRequest, backend: ApiBackend): Promise<ApiResponse> {
  const view = backend.view();
  const { method, path } = req;
  const lag = req.query.get('lag');
  if (lag !== null && Number.isNaN(parseSize(lag))) throw new HttpError(400, `lag: not a size: ${lag}`);
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') {
    const body = method === 'GET';
    if (path === '/liveness') return { status: liveness(view, backend.now()) ? 200 : 503 };
    const check = HEALTH[path];
    if (check) return { status: check(view, req.query) ? 200 : 503, ...(body ? { body: patroniStatus(view) } : {}) };
    if (method !== 'GET') return getOnly(path);
    switch (path) {
      case '/patroni':
        return { status: 200, body: patroniStatus(view) };
      case '/cluster': {
        const cluster = await fresh(backend);
        return { status: 200, body: clusterAsJson(cluster, view.scope) };
      }
      case '/history':
        return { status: 200, body: (await fresh(backend)).history };
      case '/config':
        return view.cluster?.config ? { status: 200, body: view.cluster.config.value } : { status: 502, body: { message: 'no configuration in the store yet' } };
      case '/metrics':
        return { status: 200, text: metrics(view), headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' } };
      default:
        throw new HttpError(404, `no such endpoint: GET ${path}`);
    }
  }
  if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
    checkAuth(req, view);
    if (method === 'POST' && path === '/reload') {
      parseBody(req);
      backend.requestReload?.();
      return { status: 202, text: 'reload scheduled' };
    }
    throw new HttpError(404, `no such endpoint: ${method} ${path}`);
  }
  throw new HttpError(405, `method not allowed: ${method}`);
}

function getOnly(path: string): ApiResponse {
  if (['/patroni', '/cluster', '/history', '/config', '/metrics'].includes(path)) return { status: 200 };
  throw new HttpError(404, `no such endpoint: ${path}`);
}

async function fresh(backend: ApiBackend) {
  try {
    return await backend.loadCluster();
  } catch (e) {
    throw new HttpError(503, `store not accessible: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function liveness(v: ApiView, now: number): boolean {
  if (v.paused) return true;
  if (v.lastLoopAt === null) return true;
  const limit = (v.isLeader ? 1 : 2) * v.dynamic.ttl * 1000;
  return now - v.lastLoopAt <= limit;
}

/** Basic auth on unsafe methods when `restapi.authentication` is set (Patroni check_access). */
function checkAuth(req: ApiRequest, v: ApiView): void {
  const auth = v.config.restapi.authentication;
  if (!auth) return;
  const h = req.headers.authorization;
  const given = typeof h === 'string' && h.startsWith('Basic ') ? Buffer.from(h.slice(6), 'base64').toString() : null;
  if (given !== `${auth.username}:${auth.password}`) throw new HttpError(401, 'authentication required');
}

export function parseBody(req: ApiRequest): Record<string, unknown> {
  if (!req.body.trim()) return {};
  let j: unknown;
  try {
    j = JSON.parse(req.body);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new HttpError(400, 'request body must be a JSON object');
  return j as Record<string, unknown>;
}

/** The /patroni body. */
export function patroniStatus(v: ApiView): Record<string, unknown> {
  const pg = v.pg;
  const r: Record<string, unknown> = { state: v.state };
  if (pg?.running && pg.accepting) {
    r.postmaster_start_time = pg.postmasterStartTime;
    r.role = pg.inRecovery ? (v.role === 'standby_leader' ? 'standby_leader' : 'replica') : 'master';
    r.server_version = pg.serverVersion;
    r.xlog = pg.inRecovery
      ? { received_location: pg.receiveLsn ?? pg.replayLsn, replayed_location: pg.replayLsn, replayed_timestamp: null, paused: false }
      : { location: pg.walPosition };
    if (pg.timeline) r.timeline = pg.timeline;
    if (pg.replication.length) {
      r.replication = pg.replication.map(({ usename, application_name, client_addr, state, sync_state, sync_priority }) => ({
        usename, application_name, client_addr, state, sync_state, sync_priority,
      }));
    }
    if (pg.inRecovery && isSync(v)) r.sync_standby = true;
  } else {
    r.role = v.role;
  }
  if (!v.cluster || !v.cluster.leader) r.cluster_unlocked = true;
  r.dcs_last_seen = v.dcsLastSeen;
  if (Object.keys(v.config.tags).length) r.tags = v.config.tags;
  if (pg?.sysid) r.database_system_identifier = pg.sysid;
  if (pg?.pendingRestart) r.pending_restart = true;
  if (v.paused) r.pause = true;
  r.patroni = { version: v.version, scope: v.scope, name: v.name };
  return r;
}

function metrics(v: ApiView): string {
  const pg = v.pg;
  const running = pg?.running && pg.accepting;
  const primary = running && pg!.inRecovery === false;
  const replica = running && pg!.inRecovery === true;
  const scope = v.scope.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const startSecs = pg?.postmasterStartTime ? Date.parse(pg.postmasterStartTime) / 1000 : 0;
  const ver = v.version.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const rows: Array<[string, 'gauge' | 'counter', string, number]> = [
    ['patroni_version', 'gauge', 'Patroni-compatible version (pgwarden version, encoded as Patroni does).', (ver[0] ?? 0) * 10000 + (ver[1] ?? 0) * 100 + (ver[2] ?? 0)],
    ['patroni_postgres_running', 'gauge', 'Value is 1 if Postgres is running, 0 otherwise.', running ? 1 : 0],
    ['patroni_postmaster_start_time', 'gauge', 'Epoch seconds since Postgres started.', startSecs],
    ['patroni_master', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise.', primary && v.isLeader ? 1 : 0],
    ['patroni_primary', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise.', primary && v.isLeader ? 1 : 0],
    ['patroni_xlog_location', 'counter', 'Current location of the Postgres transaction log, 0 if this node is not the leader.', primary ? pg!.walPosition ?? 0 : 0],
    ['patroni_standby_leader', 'gauge', 'Value is 1 if this node is the standby_leader, 0 otherwise.', v.role === 'standby_leader' && v.isLeader ? 1 : 0],
    ['patroni_replica', 'gauge', 'Value is 1 if this node is a replica, 0 otherwise.', replica ? 1 : 0],
    ['patroni_sync_standby', 'gauge', 'Value is 1 if this node is a sync standby replica, 0 otherwise.', replica && isSync(v) ? 1 : 0],
    ['patroni_xlog_received_location', 'counter', 'Current location of the received Postgres transaction log, 0 if this node is not a replica.', replica ? pg!.receiveLsn ?? 0 : 0],
    ['patroni_xlog_replayed_location', 'counter', 'Current location of the replayed Postgres transaction log, 0 if this node is not a replica.', replica ? pg!.replayLsn ?? 0 : 0],
    ['patroni_xlog_replayed_timestamp', 'gauge', 'Current timestamp of the replayed Postgres transaction log, 0 if null.', 0],
    ['patroni_xlog_paused', 'gauge', 'Value is 1 if the Postgres xlog is paused, 0 otherwise.', 0],
    ['patroni_postgres_server_version', 'gauge', 'Version of Postgres (if running), 0 otherwise.', pg?.serverVersion ?? 0],
    ['patroni_cluster_unlocked', 'gauge', 'Value is 1 if the cluster is unlocked, 0 if locked.', v.cluster?.leader ? 0 : 1],
    ['patroni_failsafe_mode_is_active', 'gauge', 'Value is 1 if failsafe mode is active, 0 if inactive.', 0],
    ['patroni_postgres_timeline', 'counter', 'Postgres timeline of this node (if running), 0 otherwise.', running ? pg!.timeline ?? 0 : 0],
    ['patroni_dcs_last_seen', 'gauge', 'Epoch timestamp when DCS was last contacted successfully by Patroni.', v.dcsLastSeen ?? 0],
    ['patroni_pending_restart', 'gauge', 'Value is 1 if the node needs a restart, 0 otherwise.', pg?.pendingRestart ? 1 : 0],
    ['patroni_is_paused', 'gauge', 'Value is 1 if auto failover is disabled, 0 otherwise.', v.paused ? 1 : 0],
  ];
  const out: string[] = [];
  for (const [name, type, help, value] of rows) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{scope="${scope}"} ${value}`);
  }
  return `${out.join('\n')}\n`;
}

/** `?lag=` values: bytes, or with units as Patroni's parse_int accepts (kB, MB, GB…). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|TB)?\s*$/.exec(s);
  if (!m) return NaN;
  const mult: Record<string, number> = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
  return Number(m[1]) * (mult[m[2] ?? 'B'] ?? 1);
}

function truthy(v: unknown): boolean {
  return v === true || v === 'true' || v === 'on';
}

