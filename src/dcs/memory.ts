/**
 * An in-memory store with the same contract as the etcd adapter (sessions with TTL, CAS, leader
 * watch), driven by an injected Clock: the fake behind HA loop tests. One MemoryBackend is one
 * cluster's store; each member gets its own MemoryStore on it.
 */
import type { Clock } from '../util/clock.js';
import { DcsError } from '../util/errors.js';
import { KEYS, buildCluster, serializeFailover, serializeSync, type RawNode } from './codec.js';
import type { Cluster, ClusterStatus, DcsStore, HistoryEntry, MemberData } from './types.js';

interface Entry {
  value: string;
  version: number;
  session?: string;
}

interface Session {
  expiresAt: number;
}

export class MemoryBackend {
  private readonly keys = new Map<string, Entry>();
  private readonly sessions = new Map<string, Session>();
  private revision = 0;
  private nextSession = 1;
  private available = true;
  private readonly watchers = new Set<() => void>();

  constructor(readonly clock: Clock) {}

  setAvailable(up: boolean): void {
    this.available = up;
  }

  check(): void {
    if (!this.available) throw new DcsError('memory store: unavailable (test fault)');
    this.expire();
  }

  /** Drop keys whose session expired; a dropped leader key wakes watchers. */
  expire(): void {
    const now = this.clock.now();
    for (const [id, s] of this.sessions) {
      if (s.expiresAt > now) continue;
      this.sessions.delete(id);
      for (const [k, e] of this.keys) {
        if (e.session === id) {
          this.keys.delete(k);
          if (k === KEYS.leader) this.notify();
        }
      }
    }
  }

  grant(ttl: number): string {
    const id = String(this.nextSession++);
    this.sessions.set(id, { expiresAt: this.clock.now() + ttl * 1000 });
    return id;
  }

  keepalive(id: string, ttl: number): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    s.expiresAt = this.clock.now() + ttl * 1000;
    return true;
  }

  get(k: string): Entry | undefined {
    return this.keys.get(k);
  }

  put(k: string, value: string, session?: string): void {
    if (session && !this.sessions.has(session)) throw new DcsError('memory store: session not found');
    this.keys.set(k, { value, version: ++this.revision, session });
    if (k === KEYS.leader) this.notify();
  }

  delete(k: string): void {
    if (this.keys.delete(k) && k === KEYS.leader) this.notify();
  }

  nodes(): RawNode[] {
    return [...this.keys].map(([key, e]) => ({ key, value: e.value, version: e.version, lease: e.session }));
  }

  watch(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  private notify(): void {
    for (const w of this.watchers) queueMicrotask(w);
  }
}

export class MemoryStore implements DcsStore {
  private session: string | null = null;
  private validUntil = -Infinity;
  /** This member alone is cut off from the store (a partition). */
  cutOff = false;

  constructor(
    private readonly backend: MemoryBackend,
    private readonly name: string,
    private ttl: number,
  ) {}

  private async op<T>(fn: () => T): Promise<T> {
    if (this.cutOff) throw new DcsError(`memory store: ${this.name} is cut off (test fault)`);
    this.backend.check();
    return fn();
  }

  load(): Promise<Cluster> {
    return this.op(() => buildCluster(this.backend.nodes()));
  }

  refreshSession(): Promise<void> {
    return this.op(() => {
      const sentAt = this.backend.clock.now();
      if (!this.session || !this.backend.keepalive(this.session, this.ttl)) this.session = this.backend.grant(this.ttl);
      this.validUntil = sentAt + this.ttl * 1000;
    });
  }

  sessionValidUntil(): number {
    return this.validUntil;
  }

  private async mySession(): Promise<string> {
    if (!this.session) await this.refreshSession();
    return this.session!;
  }

  initialize(sysid: string, create: boolean): Promise<boolean> {
    return this.op(() => {
      if (create && this.backend.get(KEYS.initialize)) return false;
      this.backend.put(KEYS.initialize, sysid);
      return true;
    });
  }

  cancelInitialization(): Promise<void> {
    return this.op(() => this.backend.delete(KEYS.initialize));
  }

  private cas(k: string, version: number | null, value: string): Promise<boolean> {
    return this.op(() => {
      const cur = this.backend.get(k);
      if (version === null ? cur !== undefined : cur?.version !== version) return false;
      this.backend.put(k, value);
      return true;
    });
  }

  setConfig(value: Record<string, unknown>, version: number | null): Promise<boolean> {
    return this.cas(KEYS.config, version, JSON.stringify(value));
  }

  async touchMember(data: MemberData): Promise<boolean> {
    const s = await this.mySession();
    return this.op(() => {
      this.backend.put(KEYS.members + this.name, JSON.stringify(data), s);
      return true;
    });
  }

  async attemptToAcquireLeader(): Promise<boolean> {
    const s = await this.mySession();
    return this.op(() => {
      if (this.backend.get(KEYS.leader)) return false;
      this.backend.put(KEYS.leader, this.name, s);
      return true;
    });
  }

  async updateLeader(status: ClusterStatus): Promise<boolean> {
    await this.refreshSession();
    return this.op(() => {
      if (this.backend.get(KEYS.leader)?.value !== this.name) return false;
      this.backend.put(KEYS.status, JSON.stringify(status));
      return true;
    });
  }

  deleteLeader(): Promise<boolean> {
    return this.op(() => {
      if (this.backend.get(KEYS.leader)?.value !== this.name) return false;
      this.backend.delete(KEYS.leader);
      return true;
    });
  }

  setHistory(history: readonly HistoryEntry[]): Promise<boolean> {
    return this.op(() => {
      this.backend.put(KEYS.history, JSON.stringify(history));
      return true;
    });
  }

  setFailover(value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null): Promise<boolean> {
    return this.cas(KEYS.failover, version, serializeFailover(value));
  }

  deleteFailover(version?: number): Promise<boolean> {
    return this.op(() => {
      const cur = this.backend.get(KEYS.failover);
      if (!cur || (version !== undefined && cur.version !== version)) return false;
      this.backend.delete(KEYS.failover);
      return true;
    });
  }

  setSync(value: { leader: string; sync_standby: string | null }, version: number | null): Promise<boolean> {
    return this.cas(KEYS.sync, version, serializeSync(value));
  }

  deleteSync(): Promise<boolean> {
    return this.op(() => {
      this.backend.delete(KEYS.sync);
      return true;
    });
  }

  setTimeouts(opts: { ttl: number; retryTimeout: number }): void {
    this.ttl = opts.ttl;
  }

  watchLeader(onChange: () => void): () => void {
    return this.backend.watch(onChange);
  }

  async close(): Promise<void> {
    // nothing held
  }
}
