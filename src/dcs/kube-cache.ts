/**
 * One list + watch cache of a namespaced kind under a label selector (Patroni's ObjectCache): list,
 * then watch from the list's resourceVersion; a newer event replaces an older one only when its
 * resourceVersion is higher; a 410 Gone, an ERROR event or a broken stream re-lists. Objects written by
 * us are put in at once from the write's answer (`set`), so our next CAS carries the version we made.
 */
import type { Logger } from '../util/log.js';
import { errorMessage } from '../util/errors.js';
import { statusMessage, type KubeClient, type WatchEvent, type WatchHandle } from '../kube/client.js';

export type KubeObject = Record<string, any> & { metadata: { name: string; resourceVersion: string; [k: string]: any } };

/** resourceVersions are opaque strings; in practice (etcd revisions, our server) decimal integers. */
export function rvNumber(rv: string | undefined): number {
  const n = Number(rv);
  return Number.isFinite(n) ? n : 0;
}

export interface KubeCacheOptions {
  client: KubeClient;
  /** e.g. /api/v1/namespaces/default/pods */
  path: string;
  labelSelector: string;
  log: Logger;
  /** Watch requests ask the server to end the stream after this many seconds (then we resume). */
  watchSeconds: () => number;
  /** Deadline of the list request, in ms. */
  listTimeoutMs: () => number;
  /** Called after any change of an object (name), from the list or a watch event. */
  onChange: (name: string) => void;
}

export class KubeCache {
  private readonly objects = new Map<string, KubeObject>();
  private ready = false;
  /** Monotonic-enough wall time (Date.now()) since which we have had no open watch, or null while one is open. */
  private disconnectedAt: number | null = Date.now();
  private stopped = false;
  private current: WatchHandle | null = null;
  private readonly waiters = new Set<() => void>();
  private running: Promise<void> | null = null;

  constructor(private readonly o: KubeCacheOptions) {}

  start(): void {
    this.running ??= this.run();
  }

  isReady(): boolean {
    return this.ready;
  }

  /** Resolves true once the first list has arrived, false if `timeoutMs` passed first. */
  async waitReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.waiters.delete(wake);
        resolve(ok);
      };
      const wake = () => done(true);
      const t = setTimeout(() => done(this.ready), Math.max(0, timeoutMs));
      this.waiters.add(wake);
    });
  }

  /** How long (ms) the cache has been without an open watch stream: 0 while one is open. */
  disconnectedFor(): number {
    return this.disconnectedAt === null ? 0 : Date.now() - this.disconnectedAt;
  }

  get(name: string): KubeObject | undefined {
    return this.objects.get(name);
  }

  values(): KubeObject[] {
    return [...this.objects.values()];
  }

  /** Put an object we wrote (or read directly) in, unless the cache already holds a newer version. */
  set(obj: KubeObject): void {
    const old = this.objects.get(obj.metadata.name);
    if (old && rvNumber(old.metadata.resourceVersion) >= rvNumber(obj.metadata.resourceVersion)) return;
    this.objects.set(obj.metadata.name, obj);
    this.o.onChange(obj.metadata.name);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort();
    for (const w of this.waiters) w();
    await this.running;
  }

  private async run(): Promise<void> {
    let rv: string | null = null;
    while (!this.stopped) {
      try {
        if (rv === null) rv = await this.list();
        rv = await this.watchFrom(rv);
      } catch (e) {
        this.o.log.warn({ err: errorMessage(e), path: this.o.path }, 'kubernetes list failed; retrying');
        rv = null;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async list(): Promise<string> {
    const q = `?labelSelector=${encodeURIComponent(this.o.labelSelector)}`;
    const r = await this.o.client.request<{ items?: KubeObject[]; metadata?: { resourceVersion?: string } }>('GET', this.o.path + q, Date.now() + this.o.listTimeoutMs());
    if (r.status !== 200) throw new Error(`list ${this.o.path}: HTTP ${r.status}: ${statusMessage(r.body)}`);
    const items = r.body.items ?? [];
    const seen = new Set(items.map((i) => i.metadata.name));
    for (const name of [...this.objects.keys()]) {
      if (!seen.has(name)) {
        this.objects.delete(name);
        this.o.onChange(name);
      }
    }
    for (const item of items) {
      const old = this.objects.get(item.metadata.name);
      if (!old || old.metadata.resourceVersion !== item.metadata.resourceVersion) {
        this.objects.set(item.metadata.name, item);
        this.o.onChange(item.metadata.name);
      }
    }
    if (!this.ready) {
      this.ready = true;
      for (const w of [...this.waiters]) w();
    }
    return r.body.metadata?.resourceVersion ?? '0';
  }

  /** Watch from `rv`; returns the version to resume from, or null to re-list. */
  private async watchFrom(rv: string): Promise<string | null> {
    const seconds = Math.max(5, Math.round(this.o.watchSeconds()));
    const q = `?labelSelector=${encodeURIComponent(this.o.labelSelector)}&watch=true&resourceVersion=${encodeURIComponent(rv)}&timeoutSeconds=${seconds}`;
    let last: string | null = rv;
    let events = 0;
    const onEvent = (e: WatchEvent) => {
      events++;
      if (e.type === 'ERROR') {
        last = null;
        return;
      }
      const obj = e.object as KubeObject;
      if (!obj?.metadata?.name) return;
      if (e.type !== 'BOOKMARK') this.apply(e.type, obj);
      if (last !== null) last = obj.metadata.resourceVersion;
    };
    const started = Date.now();
    const opened = () => {
      this.disconnectedAt = null;
    };
    this.current = this.o.client.watch(this.o.path + q, onEvent, (seconds + 10) * 1000, opened);
    await this.current.done;
    this.current = null;
    this.disconnectedAt ??= Date.now();
    // A stream that broke at once without a word: do not hammer the server.
    if (events === 0 && Date.now() - started < 200 && !this.stopped) await new Promise((r) => setTimeout(r, 500));
    return last;
  }

  private apply(type: WatchEvent['type'], obj: KubeObject): void {
    const name = obj.metadata.name;
    const old = this.objects.get(name);
    if (old && rvNumber(old.metadata.resourceVersion) >= rvNumber(obj.metadata.resourceVersion)) return;
    if (type === 'DELETED') this.objects.delete(name);
    else this.objects.set(name, obj);
    this.o.onChange(name);
  }
}
