/**
 * Test-only fault hooks: fail or delay the next matching requests, or expire every open watch.
 * Recovery paths (informer relist after 410, retries on 5xx, conflict handling) are only exercised
 * through these (kube-api-subset.md §5 SHOULD). Reachable in-process and, for servers run as a
 * separate process, through `POST /_pgwarden/faults` (token required).
 */
export type FaultCode = 409 | 410 | 429 | 500 | 503 | 504;

export interface FaultMatch {
  /** HTTP method, e.g. PATCH */
  method?: string;
  /** substring of (or regular expression over) the request path with its query */
  path?: string | RegExp;
  /** only watch requests (true) or only non-watch requests (false) */
  watch?: boolean;
}

interface Rule {
  match: FaultMatch;
  remaining: number;
  fail?: { code: FaultCode; retryAfterSeconds?: number };
  delayMs?: number;
}

export interface FaultDecision {
  delayMs: number;
  fail?: { code: FaultCode; retryAfterSeconds?: number };
}

export interface KubeFaults {
  /** the next `count` matching requests fail with `code` (a Status body; Retry-After when given) */
  failNext(code: FaultCode, opts?: { count?: number; match?: FaultMatch; retryAfterSeconds?: number }): void;
  /** the next `count` matching requests are held `ms` before being served */
  delayNext(ms: number, opts?: { count?: number; match?: FaultMatch }): void;
  /** every open watch gets an in-stream ERROR 410 and closes; history is dropped so resumes get 410 too. Returns how many closed. */
  expireWatches(): number;
  /** hold back every watch event (writes still happen): a client's cached resourceVersion goes stale */
  holdWatchEvents(): void;
  /** deliver the held-back events, in order, and stop holding */
  releaseWatchEvents(): void;
  /** forget pending fail/delay rules (and release held watch events) */
  clear(): void;
}

function matches(m: FaultMatch, method: string, url: string, watch: boolean): boolean {
  if (m.method && m.method.toUpperCase() !== method) return false;
  if (m.watch !== undefined && m.watch !== watch) return false;
  if (m.path !== undefined) return typeof m.path === 'string' ? url.includes(m.path) : m.path.test(url);
  return true;
}

export class Faults implements KubeFaults {
  private rules: Rule[] = [];

  constructor(private readonly watches: { expireAll(): number; holdEvents(): void; releaseEvents(): void }) {}

  failNext(code: FaultCode, opts: { count?: number; match?: FaultMatch; retryAfterSeconds?: number } = {}): void {
    const fail: Rule['fail'] = opts.retryAfterSeconds === undefined ? { code } : { code, retryAfterSeconds: opts.retryAfterSeconds };
    this.rules.push({ match: opts.match ?? {}, remaining: opts.count ?? 1, fail });
  }

  delayNext(ms: number, opts: { count?: number; match?: FaultMatch } = {}): void {
    this.rules.push({ match: opts.match ?? {}, remaining: opts.count ?? 1, delayMs: ms });
  }

  expireWatches(): number {
    return this.watches.expireAll();
  }

  holdWatchEvents(): void {
    this.watches.holdEvents();
  }

  releaseWatchEvents(): void {
    this.watches.releaseEvents();
  }

  clear(): void {
    this.rules = [];
    this.watches.releaseEvents();
  }

  /** Consumes the rules that apply to this request. */
  take(method: string, url: string, watch: boolean): FaultDecision {
    const out: FaultDecision = { delayMs: 0 };
    for (const r of this.rules) {
      if (r.remaining <= 0 || !matches(r.match, method, url, watch)) continue;
      if (r.delayMs !== undefined) {
        out.delayMs += r.delayMs;
        r.remaining--;
      } else if (r.fail && !out.fail) {
        out.fail = r.fail;
        r.remaining--;
      }
    }
    this.rules = this.rules.filter((r) => r.remaining > 0);
    return out;
  }

  /** Applies a JSON command from the admin endpoint; returns a result document. */
  command(body: unknown): Record<string, unknown> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const out: Record<string, unknown> = { ok: true };
    const match = (x: Record<string, unknown>): FaultMatch => {
      const m: FaultMatch = {};
      if (typeof x.method === 'string') m.method = x.method;
      if (typeof x.path === 'string') m.path = x.path;
      if (typeof x.watch === 'boolean') m.watch = x.watch;
      return m;
    };
    if (b.clear === true) this.clear();
    if (b.expireWatches === true) out.expired = this.expireWatches();
    if (b.holdWatchEvents === true) this.holdWatchEvents();
    if (b.releaseWatchEvents === true) this.releaseWatchEvents();
    if (typeof b.fail === 'object' && b.fail !== null) {
      const f = b.fail as Record<string, unknown>;
      const code = Number(f.code);
      if (![409, 410, 429, 500, 503, 504].includes(code)) throw new Error(`fail.code must be one of 409, 410, 429, 500, 503, 504`);
      const opts: { count?: number; match?: FaultMatch; retryAfterSeconds?: number } = { match: match(f) };
      if (typeof f.count === 'number') opts.count = f.count;
      if (typeof f.retryAfterSeconds === 'number') opts.retryAfterSeconds = f.retryAfterSeconds;
      this.failNext(code as FaultCode, opts);
    }
    if (typeof b.delay === 'object' && b.delay !== null) {
      const d = b.delay as Record<string, unknown>;
      const opts: { count?: number; match?: FaultMatch } = { match: match(d) };
      if (typeof d.count === 'number') opts.count = d.count;
      this.delayNext(Number(d.ms ?? 0), opts);
    }
    return out;
  }
}
