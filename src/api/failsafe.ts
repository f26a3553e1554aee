/**
 * The REST half of failsafe mode (Patroni 3.0.2 api.py `do_GET_failsafe`, `do_POST_failsafe`,
 * ha.py `update_failsafe`). POST is unsafe (behind `restapi.authentication`, like Patroni's
 * `@check_access`); it only records the leader's ping through a backend hook — the HA loop reads it.
 *
 * Answers, as Patroni's:
 * - failsafe mode off → 502;
 * - we run as primary ourselves → 500 `Running as a leader` (we disagree: the sender must not count us);
 * - otherwise → 200 `Accepted`: the sender is our leader for the next ttl.
 */
import type { FailsafeLeader } from '../dcs/types.js';
import { HttpError, readJsonBody, type Handler } from './http.js';

/** The body of POST /failsafe: `{name, conn_url, api_url, slots?}`; a string says what is wrong. */
export function parseFailsafeRequest(body: Record<string, unknown>): FailsafeLeader | string {
  for (const k of ['name', 'conn_url', 'api_url'] as const) {
    if (typeof body[k] !== 'string' || body[k] === '') return `${k} must be a non-empty string`;
  }
  const out: { name: string; conn_url: string; api_url: string; slots?: Record<string, number> } = {
    name: body.name as string,
    conn_url: body.conn_url as string,
    api_url: body.api_url as string,
  };
  const slots = body.slots;
  if (slots && typeof slots === 'object' && !Array.isArray(slots)) {
    const s: Record<string, number> = {};
    for (const [k, v] of Object.entries(slots)) if (typeof v === 'number' && Number.isFinite(v)) s[k] = v;
    out.slots = s;
  }
  return out;
}

/** GET /failsafe: the failsafe topology as last read from the store or written by us. */
export const getFailsafe: Handler = (ctx) => {
  const t = ctx.backend.failsafeTopology?.() ?? ctx.cluster?.failsafe ?? null;
  if (!t) throw new HttpError(502, 'there is no failsafe topology');
  return { status: 200, body: t };
};

/** POST /failsafe: a leader that cannot reach the store asks us to acknowledge it. */
export const postFailsafe: Handler = (ctx) => {
  const accept = ctx.backend.acceptFailsafe;
  if (!ctx.view.dynamic.failsafe_mode || !accept) throw new HttpError(502, 'failsafe mode is not enabled');
  const data = parseFailsafeRequest(readJsonBody(ctx.req, false));
  if (typeof data === 'string') throw new HttpError(400, data);
  const pg = ctx.view.pg;
  if (ctx.view.state === 'running' && pg?.running && pg.inRecovery === false) return { status: 500, text: 'Running as a leader' };
  accept.call(ctx.backend, data);
  return { status: 200, text: 'Accepted' };
};
