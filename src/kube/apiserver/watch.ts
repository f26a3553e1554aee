/**
 * Watch streams. Each watch replays what it missed (synthetic ADDED for a fresh watch, retained
 * history for a resume), then follows live store events, turning selector transitions into ADDED /
 * DELETED as the upstream watch cache does (an object that stops matching is DELETED, stamped with
 * the new RV). Too-old resumes get an in-stream ERROR 410 and the stream closes. BOOKMARKs only when
 * asked for. The sink is abstract so the logic runs without sockets in unit tests.
 */
import { ApiError, errors } from './errors.js';
import { clone, metaOf, type JsonObject } from './json.js';
import type { ResourceType } from './registry.js';
import { typeKey } from './registry.js';
import { objectMatches, type Filter, type Store, type StoreEvent } from './store.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: JsonObject;
}

export interface WatchSink {
  /** writes one event; false when the peer is not keeping up */
  send(e: WatchEvent): boolean;
  /** bytes queued and not yet taken by the peer */
  backlog(): number;
  end(): void;
}

export interface WatchRequest {
  type: ResourceType;
  filter: Filter;
  /** raw `resourceVersion` query value */
  resourceVersion?: string;
  timeoutSeconds?: number;
  allowBookmarks: boolean;
  sendInitialEvents?: boolean;
  /** apiVersion of the requested group version (BOOKMARK objects carry it) */
  apiVersion: string;
  /** turns a stored object into what the client reads (apiVersion of the requested version) */
  present: (o: JsonObject) => JsonObject;
}

export interface WatchHubOptions {
  bookmarkIntervalMs?: number;
  /** a peer this far behind is cut off rather than buffered without bound */
  maxBacklogBytes?: number;
}

/** Maps one store event through a watch's filter: what (if anything) this watcher sees. */
export function transformEvent(e: StoreEvent, filter: Filter): WatchEvent | undefined {
  const now = objectMatches(e.object, filter);
  switch (e.type) {
    case 'ADDED':
      return now ? { type: 'ADDED', object: e.object } : undefined;
    case 'DELETED':
      return now ? { type: 'DELETED', object: e.object } : undefined;
    case 'MODIFIED': {
      const before = e.prev ? objectMatches(e.prev, filter) : now;
      if (now && before) return { type: 'MODIFIED', object: e.object };
      if (now) return { type: 'ADDED', object: e.object };
      if (before) {
        const gone = clone(e.prev!);
        metaOf(gone).resourceVersion = String(e.rv);
        return { type: 'DELETED', object: gone };
      }
      return undefined;
    }
  }
}

export function parseResourceVersion(rv: string | undefined): number | undefined {
  if (rv === undefined || rv === '' || rv === '0') return undefined;
  if (!/^\d+$/.test(rv)) throw errors.badRequest(`resourceVersion: Invalid value: "${rv}": must be a non-negative integer`);
  return Number(rv);
}

class ActiveWatch {
  private closed = false;
  /** events held back while the hub holds delivery (fault hook) */
  private held: WatchEvent[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: () => void = () => undefined;

  constructor(
    private readonly hub: WatchHub,
    private readonly req: WatchRequest,
    private readonly sink: WatchSink,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  start(store: Store): void {
    const key = typeKey(this.req.type);
    const from = parseResourceVersion(this.req.resourceVersion);
    if (from === undefined) {
      for (const o of store.list(this.req.type, this.req.filter).items) this.emit({ type: 'ADDED', object: o });
      if (this.req.sendInitialEvents && this.req.allowBookmarks) this.bookmark(store.resourceVersion, true);
    } else {
      const missed = store.eventsSince(from, key);
      if (!missed) {
        this.expire(`too old resource version: ${from} (${store.oldestResumableVersion + 1})`);
        return;
      }
      for (const e of missed) this.deliver(e);
    }
    if (this.closed) return;
    this.unsubscribe = store.subscribe((e) => {
      if (e.key === key) this.deliver(e);
    });
    if (this.req.timeoutSeconds !== undefined && this.req.timeoutSeconds > 0) {
      this.timers.push(setTimeout(() => this.close(), this.req.timeoutSeconds * 1000));
    }
    if (this.req.allowBookmarks && this.hub.bookmarkIntervalMs > 0) {
      this.timers.push(setInterval(() => this.bookmark(store.resourceVersion, false), this.hub.bookmarkIntervalMs));
    }
  }

  private deliver(e: StoreEvent): void {
    const out = transformEvent(e, this.req.filter);
    if (out) this.emit(out);
  }

  private emit(e: WatchEvent): void {
    if (this.closed) return;
    if (this.hub.holding && e.type !== 'ERROR') {
      this.held.push(e);
      return;
    }
    this.send(e);
  }

  /** Delivers what was held back, in order. */
  flush(): void {
    const q = this.held;
    this.held = [];
    for (const e of q) if (!this.closed) this.send(e);
  }

  private send(e: WatchEvent): void {
    this.sink.send(e.type === 'ERROR' || e.type === 'BOOKMARK' ? e : { type: e.type, object: this.req.present(e.object) });
    if (this.sink.backlog() > this.hub.maxBacklogBytes) this.close();
  }

  private bookmark(rv: number, initialEventsEnd: boolean): void {
    const t = this.req.type;
    const metadata: JsonObject = { resourceVersion: String(rv) };
    if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
    this.emit({ type: 'BOOKMARK', object: { kind: t.kind, apiVersion: this.req.apiVersion, metadata } });
  }

  /** In-stream 410 Gone, then close: informers relist and watch again. */
  expire(message: string): void {
    const status = new ApiError(410, 'Expired', message).toStatus();
    this.emit({ type: 'ERROR', object: status });
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    for (const t of this.timers) clearTimeout(t);
    this.hub.forget(this);
    this.sink.end();
  }
}

export interface WatchHandle {
  close(): void;
}

export class WatchHub {
  readonly bookmarkIntervalMs: number;
  readonly maxBacklogBytes: number;
  private readonly active = new Set<ActiveWatch>();
  private hold = false;

  constructor(
    private readonly store: Store,
    opts: WatchHubOptions = {},
  ) {
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 10_000;
    this.maxBacklogBytes = opts.maxBacklogBytes ?? 32 * 1024 * 1024;
  }

  get holding(): boolean {
    return this.hold;
  }

  /** Fault hook: writes still happen, but no watch sees their events until `releaseEvents()`. */
  holdEvents(): void {
    this.hold = true;
  }

  releaseEvents(): void {
    this.hold = false;
    for (const w of [...this.active]) w.flush();
  }

  get count(): number {
    return this.active.size;
  }

  /** Starts a watch; the caller closes it when the peer goes away. */
  open(req: WatchRequest, sink: WatchSink): WatchHandle {
    const w = new ActiveWatch(this, req, sink);
    this.active.add(w);
    w.start(this.store);
    if (w.isClosed) this.active.delete(w);
    return { close: () => w.close() };
  }

  forget(w: ActiveWatch): void {
    this.active.delete(w);
  }

  /** Fault hook: every open watch gets ERROR 410 and closes, and history is dropped so resumes get 410 too. */
  expireAll(): number {
    const rv = this.store.resourceVersion;
    const all = [...this.active];
    this.store.compact();
    for (const w of all) w.expire(`too old resource version: expired by the test server at ${rv}`);
    return all.length;
  }

  closeAll(): void {
    for (const w of [...this.active]) w.close();
  }
}
