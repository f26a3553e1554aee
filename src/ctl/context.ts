/**
 * What every `ctl` verb works with: the cluster's scope, the store, the members' REST APIs, the
 * terminal and the clock — ports, so the verbs run against fakes in unit tests.
 */
import { clusterAsJson } from '../api/cluster-json.js';
import type { Cluster, Member } from '../dcs/types.js';
import type { Clock } from '../util/clock.js';
import { failed } from './args.js';
import type { CtlHttp, HttpResponse } from './http.js';
import { RequestError } from './http.js';
import type { CtlStore } from './store.js';
import type { Terminal } from './terminal.js';
import { renderMembers, type OutputFormat } from './view.js';

export interface CtlContext {
  scope: string;
  store: CtlStore;
  http: CtlHttp;
  term: Terminal;
  /** Print one line (or several joined by \n) to stdout. */
  out(text: string): void;
  /** Clear the screen between `--watch` refreshes (a no-op when stdout is not a terminal). */
  clear(): void;
  clock: Clock;
  /** How long a request that makes a member act (switchover, restart) may take; short GETs use the client default. */
  actionTimeoutMs: number;
}

/** patronictl's `output_members`: the member table (and service lines) of a snapshot. */
export function printMembers(ctx: CtlContext, cluster: Cluster, fmt: OutputFormat = 'pretty', extended = false): void {
  ctx.out(renderMembers(clusterAsJson(cluster, ctx.scope), ctx.scope, fmt, extended));
}

/**
 * The member's body as text for messages: one line, bounded. Patroni answers refusals in plain text;
 * a JSON `{"message": …}` body (pgwarden's error format) is shown as its message.
 */
export function bodyText(r: HttpResponse): string {
  let t = r.body.trim();
  if (t.startsWith('{')) {
    try {
      const j = JSON.parse(t) as { message?: unknown };
      if (typeof j.message === 'string') t = j.message;
    } catch {
      // not JSON after all: shown as it is
    }
  }
  t = t.replace(/\s*\n\s*/g, ' ');
  return t.length > 500 ? `${t.slice(0, 500)}…` : t;
}

/** Why a member could not be asked; `timedOut`: it may have received the request all the same. */
export interface NoAnswer {
  error: string;
  timedOut: boolean;
}

/** A request to a member; not reaching it comes back as NoAnswer, never thrown. */
export async function ask(ctx: CtlContext, m: Member, method: string, endpoint: string, body?: unknown, timeoutMs?: number): Promise<HttpResponse | NoAnswer> {
  if (!m.data.api_url) return { error: `member ${m.name} publishes no api_url`, timedOut: false };
  try {
    return await ctx.http.request(m.data.api_url, method, endpoint, body, timeoutMs);
  } catch (e) {
    if (e instanceof RequestError) return { error: e.message, timedOut: e.timedOut };
    throw e;
  }
}

export function isError(r: HttpResponse | NoAnswer): r is NoAnswer {
  return 'error' in r;
}

/** Read the cluster; a store failure is a failed command (exit 1) naming the store. */
export async function loadCluster(ctx: CtlContext): Promise<Cluster> {
  try {
    return await ctx.store.load();
  } catch (e) {
    throw failed(`cannot read cluster ${ctx.scope} from the store: ${e instanceof Error ? e.message : String(e)}`);
  }
}
