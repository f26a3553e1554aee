/**
 * The management half of the REST API (Patroni 3.0.2 api.py): switchover, failover, restart,
 * reinitialize, reload and dynamic-config changes. Handlers validate, record the intent (the store's
 * `failover`/`config` keys, or a request to the HA loop) and wake the loop; they never act on
 * PostgreSQL themselves. Status codes and sentences are Patroni's, so patronictl and scripts read
 * them unchanged; refusals carry the sentence as a JSON `{message}`, successes as text like Patroni.
 */
import { effectiveDynamicConfig, mergeDynamicPatch } from '../config/dynamic.js';
import { toBool } from '../config/values.js';
import type { Cluster } from '../dcs/types.js';
import { isStandbyClusterConfig } from './cluster-json.js';
import { HttpError, freshCluster, readJsonBody, type Handler, type RouteContext } from './http.js';
import type { ApiBackend, ApiResponse, RestartFilters } from './types.js';

type Action = 'switchover' | 'failover';

/** The hook `name` of the backend, or 503: this daemon cannot do that (a read-only backend). */
function hook<K extends keyof ApiBackend>(b: ApiBackend, name: K): NonNullable<ApiBackend[K]> {
  const f = b[name];
  if (!f) throw new HttpError(503, `${String(name)} is not available on this member`);
  return (typeof f === 'function' ? f.bind(b) : f) as NonNullable<ApiBackend[K]>;
}

function text(status: number, body: string): ApiResponse {
  return { status, text: body };
}

function title(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `${key} must be a string`);
  return v;
}

function isPaused(ctx: RouteContext, cluster: Cluster): boolean {
  const stored = cluster.config?.value.pause;
  return stored === undefined ? ctx.view.paused : toBool(stored) === true;
}

function syncMembers(cluster: Cluster): readonly string[] | null {
  // A standby cluster ignores synchronous mode (as its HA rules do, and Patroni's global config since 3.1).
  if (isStandbyClusterConfig(cluster.config?.value.standby_cluster)) return null;
  const mode = cluster.config?.value.synchronous_mode;
  const on = mode === 'quorum' || toBool(mode) === true;
  return on ? (cluster.sync?.sync_standby ?? []) : null;
}

/**
 * Patroni's parse_schedule: an ISO-8601 time with a zone, not in the past.
 * Returns the normalised time or throws 400 (no zone) / 422 (unparsable, past).
 */
export function parseSchedule(value: unknown, action: string, now: Date): string {
  if (typeof value !== 'string' || !value.trim()) {
    throw new HttpError(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601');
  }
  const v = value.trim();
  const iso = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i.exec(v);
  if (!iso) throw new HttpError(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601');
  if (!iso[3]) throw new HttpError(400, `Timezone information is mandatory for the scheduled ${action}`);
  const t = Date.parse(v.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  if (Number.isNaN(t)) throw new HttpError(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601');
  if (t < now.getTime()) throw new HttpError(422, `Cannot schedule ${action} in the past`);
  return new Date(t).toISOString().replace('Z', '+00:00');
}

/** Patroni's postgres_version_to_int: "15.4" → 150004, "9.6.3" → 90603. null: not a version. */
export function postgresVersionToInt(v: unknown): number | null {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  if (!/^\d+(\.\d+){0,2}$/.test(s)) return null;
  const parts = s.split('.').map(Number);
  const major = parts[0]!;
  if (major >= 10) return parts.length <= 2 ? major * 10000 + (parts[1] ?? 0) : null;
  if (parts.length < 2) return null;
  return major * 10000 + parts[1]! * 100 + (parts[2] ?? 0);
}

/** Why no switchover/failover is possible now (Patroni's is_failover_possible); null: it is. */
async function failoverImpossible(ctx: RouteContext, cluster: Cluster, leader: string | undefined, candidate: string | undefined, action: Action): Promise<string | null> {
  if (leader && cluster.leader?.name !== leader) return 'leader name does not match';
  const sync = syncMembers(cluster);
  let members;
  if (candidate) {
    if (action === 'switchover' && sync && !sync.includes(candidate)) return 'candidate name does not match with sync_standby';
    members = cluster.members.filter((m) => m.name === candidate);
    if (members.length === 0) return 'candidate does not exists';
    if (candidate === cluster.leader?.name) return `${action} is not possible: ${candidate} is already the leader`;
  } else if (sync) {
    members = cluster.members.filter((m) => sync.includes(m.name));
    if (members.length === 0) return `${action} is not possible: can not find sync_standby`;
  } else {
    members = cluster.members.filter((m) => m.name !== cluster.leader?.name && m.data.api_url);
    if (members.length === 0) return `${action} is not possible: cluster does not have members except leader`;
  }
  const status = hook(ctx.backend, 'memberStatus');
  const timeoutMs = Math.min(2000, Number(cluster.config?.value.retry_timeout ?? 10) * 1000);
  const statuses = await Promise.all(members.map((m) => (m.data.api_url ? status(m.data.api_url, timeoutMs).catch(() => null) : null)));
  // A good candidate answers, runs as a replica and may be promoted.
  const good = statuses.some((st) => {
    if (!st || st.state !== 'running' || st.role === 'master' || st.role === 'primary') return false;
    const tags = (st.tags ?? {}) as Record<string, unknown>;
    return toBool(tags.nofailover) !== true;
  });
  return good ? null : `${action} is not possible: no good candidates have been found`;
}

/** Patroni's poll_failover_result, polling the store closely instead of once a second. */
async function pollResult(ctx: RouteContext, oldLeader: string | null, candidate: string | undefined, action: Action, loopWait: number): Promise<ApiResponse> {
  const sleep = hook(ctx.backend, 'sleep');
  const deadline = ctx.backend.now() + 2 * Math.max(10, loopWait) * 1000;
  const verb = action === 'switchover' ? 'switched' : 'failed';
  while (ctx.backend.now() < deadline) {
    await sleep(50);
    let c: Cluster;
    try {
      c = await ctx.backend.loadCluster();
    } catch {
      continue;
    }
    if (c.leader && c.leader.name !== oldLeader) {
      if (!candidate || candidate === c.leader.name) return text(200, `Successfully ${verb} over to "${c.leader.name}"`);
      return text(200, `${title(verb)} over to "${c.leader.name}" instead of "${candidate}"`);
    }
    if (!c.failover) throw new HttpError(503, `${title(action)} failed`);
  }
  throw new HttpError(503, `${title(action)} status unknown`);
}

function manualFailover(action: Action): Handler {
  return async (ctx) => {
    const body = readJsonBody(ctx.req, false);
    const leader = optString(body, 'leader');
    const candidate = optString(body, 'candidate') ?? optString(body, 'member');
    const cluster = await freshCluster(ctx.backend);
    if (action === 'failover' && !candidate) throw new HttpError(400, 'Failover could be performed only to a specific candidate');
    if (action === 'switchover' && !leader) throw new HttpError(400, 'Switchover could be performed only from a specific leader');
    const paused = isPaused(ctx, cluster);
    let scheduledAt: string | undefined;
    if (body.scheduled_at !== undefined && body.scheduled_at !== null && body.scheduled_at !== '') {
      if (!leader) throw new HttpError(400, `Scheduled ${action} is possible only from a specific leader`);
      if (paused) throw new HttpError(400, `Can't schedule ${action} in the paused state`);
      scheduledAt = parseSchedule(body.scheduled_at, action, hook(ctx.backend, 'wallNow')());
    }
    if (paused && !candidate) throw new HttpError(400, `${title(action)} is possible only to a specific candidate in a paused state`);
    if (!scheduledAt) {
      const why = await failoverImpossible(ctx, cluster, leader, candidate, action);
      if (why) throw new HttpError(412, why);
    } else if (leader && cluster.leader?.name !== leader) {
      throw new HttpError(412, 'leader name does not match');
    }
    const value = { ...(leader ? { leader } : {}), ...(candidate ? { member: candidate } : {}), ...(scheduledAt ? { scheduled_at: scheduledAt } : {}) };
    const written = await hook(ctx.backend, 'setFailover')(value, cluster.failover?.version ?? null).catch(() => false);
    if (!written) throw new HttpError(503, `failed to write ${action} key into DCS`);
    ctx.backend.wake?.();
    if (scheduledAt) return text(202, `${title(action)} scheduled`);
    return pollResult(ctx, cluster.leader?.name ?? null, candidate, action, Number(cluster.config?.value.loop_wait ?? ctx.view.dynamic.loop_wait));
  };
}

const deleteSwitchover: Handler = async (ctx) => {
  const f = (await freshCluster(ctx.backend)).failover;
  if (!f?.scheduled_at) return text(404, 'no switchover is scheduled');
  if (!(await hook(ctx.backend, 'deleteFailover')(f.version).catch(() => false))) throw new HttpError(409, 'the switchover was changed concurrently');
  return text(200, 'scheduled switchover deleted');
};

/** POST /restart body → filters (Patroni's do_POST_restart validation, same messages). */
export function restartFilters(body: Record<string, unknown>, now: Date): RestartFilters & { schedule?: string } {
  const out: RestartFilters & { schedule?: string } = {};
  for (const [k, v] of Object.entries(body)) {
    switch (k) {
      case 'schedule':
        out.schedule = parseSchedule(v, 'restart', now);
        break;
      case 'role':
        if (v !== 'master' && v !== 'primary' && v !== 'replica') throw new HttpError(400, 'PostgreSQL role should be either primary or replica');
        out.role = v;
        break;
      case 'postgres_version': {
        const n = postgresVersionToInt(v);
        if (n === null) throw new HttpError(400, `Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: ${String(v)}`);
        out.postgresVersionNum = n;
        break;
      }
      case 'timeout': {
        const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+\s*s?$/.test(v.trim()) ? Number.parseInt(v, 10) : NaN;
        if (!Number.isFinite(n) || n <= 0) throw new HttpError(400, 'Timeout should be a positive number of seconds');
        out.timeoutS = n;
        break;
      }
      case 'restart_pending':
        // Patroni: the key's presence asks for the filter.
        out.pendingOnly = v !== false;
        break;
      default:
        throw new HttpError(400, `Unknown filter for the scheduled restart: ${k}`);
    }
  }
  return out;
}

const postRestart: Handler = async (ctx) => {
  const body = readJsonBody(ctx.req, true);
  if ('schedule' in body && ctx.view.paused) throw new HttpError(500, "Can't schedule restart in the paused state");
  const { schedule, ...filters } = restartFilters(body, hook(ctx.backend, 'wallNow')());
  if (schedule) {
    if (!hook(ctx.backend, 'scheduleRestart')({ ...filters, schedule })) throw new HttpError(409, 'Another restart is already scheduled');
    return text(202, 'Restart scheduled');
  }
  const r = await hook(ctx.backend, 'restart')(filters);
  if (!r.ok) throw new HttpError(503, r.message);
  return text(200, r.message);
};

const deleteRestart: Handler = (ctx) =>
  hook(ctx.backend, 'cancelScheduledRestart')() ? text(200, 'scheduled restart deleted') : text(404, 'no restarts are scheduled');

const postReinitialize: Handler = async (ctx) => {
  const body = readJsonBody(ctx.req, true);
  const force = toBool(body.force) === true;
  const why = await hook(ctx.backend, 'reinitialize')(force);
  if (why !== null) throw new HttpError(503, why);
  return text(200, 'reinitialize started');
};

/** New problems a config change would bring (what effectiveDynamicConfig would ignore or adjust). */
function configProblems(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const known = new Set(effectiveDynamicConfig(before, {}).warnings);
  return effectiveDynamicConfig(after, {}).warnings.filter((w) => !known.has(w));
}

async function writeConfig(ctx: RouteContext, cluster: Cluster, next: Record<string, unknown>): Promise<ApiResponse> {
  const problems = configProblems((cluster.config?.value as Record<string, unknown>) ?? {}, next);
  if (problems.length) throw new HttpError(400, `invalid configuration: ${problems.join('; ')}`);
  if (!(await hook(ctx.backend, 'setConfig')(next, cluster.config?.version ?? null).catch(() => false))) {
    throw new HttpError(409, 'the configuration was changed concurrently: read it again and retry');
  }
  ctx.backend.wake?.();
  return { status: 200, body: next };
}

const patchConfig: Handler = async (ctx) => {
  const patch = readJsonBody(ctx.req, false);
  const cluster = await freshCluster(ctx.backend);
  if (!cluster.config) throw new HttpError(503, 'the configuration is not initialized in the store yet');
  const next = mergeDynamicPatch(cluster.config.value as Record<string, unknown>, patch);
  if (JSON.stringify(next) === JSON.stringify(cluster.config.value)) return { status: 200, body: next };
  return writeConfig(ctx, cluster, next);
};

const putConfig: Handler = async (ctx) => {
  const next = readJsonBody(ctx.req, false);
  const cluster = await freshCluster(ctx.backend);
  if (cluster.config && JSON.stringify(next) === JSON.stringify(cluster.config.value)) return { status: 200, body: next };
  return writeConfig(ctx, cluster, next);
};

const postReload: Handler = (ctx) => {
  readJsonBody(ctx.req, true);
  ctx.backend.requestReload?.();
  return text(202, 'reload scheduled');
};

/** Unsafe routes, keyed `METHOD /path`, all behind `restapi.authentication`. */
export const MANAGEMENT_ROUTES: Record<string, Handler> = {
  'POST /switchover': manualFailover('switchover'),
  'POST /failover': manualFailover('failover'),
  'DELETE /switchover': deleteSwitchover,
  'POST /restart': postRestart,
  'DELETE /restart': deleteRestart,
  'POST /reinitialize': postReinitialize,
  'POST /reload': postReload,
  'PATCH /config': patchConfig,
  'PUT /config': putConfig,
};
