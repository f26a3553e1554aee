/**
 * What every route handler shares: the request context, the error type that becomes a JSON
 * `{message}` response, and body/store helpers.
 */
import type { Cluster } from '../dcs/types.js';
import type { ApiBackend, ApiRequest, ApiResponse, ApiView } from './types.js';

/** Thrown by handlers; `route` turns it into a JSON `{message}` response with this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export interface RouteContext {
  req: ApiRequest;
  view: ApiView;
  backend: ApiBackend;
  /** The HA loop's last store snapshot (null: never read) — Patroni's `dcs.cluster`. */
  cluster: Cluster | null;
  /** Monotonic ms. */
  now: number;
  /** Monotonic ms when the API started: /liveness counts from it until the first HA loop completes. */
  startedAt: number | null;
}

export interface RouteOptions {
  /** Monotonic ms when the server started (see RouteContext.startedAt). */
  startedAt?: number;
}

export type Handler = (ctx: RouteContext) => ApiResponse | Promise<ApiResponse>;

export interface Route {
  /** Unsafe routes run behind `restapi.authentication` (Patroni's `check_access`). */
  auth: boolean;
  handler: Handler;
}

export async function freshCluster(backend: ApiBackend): Promise<Cluster> {
  try {
    return await backend.loadCluster();
  } catch (e) {
    throw new HttpError(503, `the store is not accessible: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * The JSON object of a request body (Patroni's `_read_json_content`): 400 unless it is a JSON object;
 * an empty body is `{}` when `optional`, else 400.
 */
export function readJsonBody(req: ApiRequest, optional: boolean): Record<string, unknown> {
  if (!req.body.trim()) {
    if (optional) return {};
    throw new HttpError(400, 'a JSON object is required in the request body');
  }
  let j: unknown;
  try {
    j = JSON.parse(req.body);
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new HttpError(400, 'the request body must be a JSON object');
  if (!optional && Object.keys(j).length === 0) throw new HttpError(400, 'the request body must not be empty');
  return j as Record<string, unknown>;
}

