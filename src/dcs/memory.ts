/**
 * An in-memory store with the etcd adapter's contract — sessions with a TTL, CAS on revisions, the
 * leader watch — driven by an injected Clock so tests decide when leases expire. One MemoryBackend is one
 * cluster's store (an etcd); each member gets its own MemoryStore on it (a client with its own lease).
 */
import type { Clock } from '../util/clock.js';
import { DcsError } from '../util/errors.js';
import {
  KEYS,
  buildCluster,
  memberKey,
  serializeConfig,
  serializeFailover,
  serializeFailsafe,
  serializeHistory,
  serializeMember,
  serializeStatus,
  serializeSync,
  type RawNode,
} from './codec.js';
import type { Cluster, ClusterStatus, DcsStore, FailsafeTopology, HistoryEntry, MemberData, SyncValue } from './types.js';

interface Entry {
  value: string;
  /** Modification revision, like etcd's mod_revision. */
  version: number;
  session?: string;
}

export class MemoryBackend {
  private readonly keys = new Map<string, Entry>();
  /** Session id → monotonic time at which it expires. */
  private readonly sessions = new Map<string, number>();
  private revision = 0;
  private nextSession = 1;
  private available = true;
  private readonly watchers = new Set<() => void>();

  constructor(readonly clock: Clock) {}

  /** `false`: every call of every member rejects with DcsError (the whole store is down). */
  setAvailable(up: boolean): void {
    this.available = up;
  }

  /** Gate of every operation: fail if down, then apply the expiries that are due. */
  check(): void {
    if (!this.available) throw new DcsError('memory store: unavailable (test fault)');
    this.expire();
  }

  /**
   * Drop the sessions whose time is up, with their keys; a dropped leader key wakes the watchers. Expiry is
   * lazy (the fake clock cannot call us): it happens on the next operation of any member, or when a test
   * calls this.
   */
  expire(): void {
    const now = this.clock.now();
    for (const [id, expiresAt] of this.sessions) {
      if (expiresAt > now) continue;
      this.sessions.delete(id);
      for (const [k, e] of this.keys) if (e.session === id) this.delete(k);
    }
  }

  grant(ttl: number): string {
    const id = String(this.nextSession++);
    this.sessions.set(id, this.clock.now() + ttl * 1000);
    return id;
  }

  /** Extend a live session by `ttl` from now; false if it no longer exists. */
  keepalive(id: string, ttl: number): boolean {
    if (!this.sessions.has(id)) return false;
    this.sessions.set(id, this.clock.now() + ttl * 1000);
    return true;
  }

  hasSession(id: string): boolean {
    return this.sessions.has(id);
  }

  get(k: string): Readonly<Entry> | undefined {
    return this.keys.get(k);
  }

  put(k: string, value: string, session?: string): void {
    if (session && !this.sessions.has(session)) throw new DcsError('memory store: session not found');
    this.keys.set(k, { value, version: ++this.revision, ...(session ? { session } : {}) });
    if (k === KEYS.leader) this.notify();
  }

  delete(k: string): boolean {
    if (!this.keys.delete(k)) return false;
    this.revision++;
    if (k === KEYS.leader) this.notify();
    return true;
  }

  /** Every key, relative to the cluster prefix, as the etcd adapter would read them. */
  nodes(): RawNode[] {
    return [...this.keys].map(([key, e]) => ({ key, value: e.value, version: e.version, ...(e.session ? { lease: e.session } : {}) }));
  }

  watch(fn: () => void): () => void {
    // A distinct wrapper per call, so watching twice with one function means two subscriptions.
    const w = (): void => fn();
    this.watchers.add(w);
    return () => {
      this.watchers.delete(w);
    };
  }

  private notify(): void {
    // Asynchronously, like a watch event arriving over the wire after the write returned.
    for (const w of this.watchers) queueMicrotask(() => this.watchers.has(w) && w());
  }
}

interface Session {
  readonly id: string;
  readonly ttl: number;
  validUntil: number;
}

export class MemoryStore implements DcsStore {
  private session: Session | null = null;
  /** As in the etcd adapter: after a TTL change the leader key stays on the old session until re-bound. */
  private retiringUntil: number | null = null;
  /** This member alone is cut off from the store (a partition): its calls reject with DcsError. */
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
    return this.op(() => this.renew());
  }

  sessionValidUntil(): number {
    if (!this.session) return -Infinity;
    return Math.min(this.session.validUntil, this.retiringUntil ?? Infinity);
  }

  private renew(): void {
    const clock = this.backend.clock;
    const cur = this.session;
    const sentAt = clock.now();
    if (cur && cur.ttl === this.ttl) {
      if (this.backend.keepalive(cur.id, cur.ttl)) {
        cur.validUntil = sentAt + cur.ttl * 1000;
        return;
      }
    } else if (cur) {
      this.retiringUntil = Math.min(cur.validUntil, this.retiringUntil ?? Infinity);
    }
    this.session = { id: this.backend.grant(this.ttl), ttl: this.ttl, validUntil: sentAt + this.ttl * 1000 };
  }

  /** Our live session id; a new session if there is none or it expired (the etcd adapter does the same on "lease not found"). */
  private liveSession(): string {
    if (!this.session || !this.backend.hasSession(this.session.id)) this.renew();
    return this.session!.id;
  }

  initialize(sysid: string, create: boolean): Promise<boolean> {
    return this.op(() => {
      if (create && this.backend.get(KEYS.initialize)) return false;
      this.backend.put(KEYS.initialize, sysid);
      return true;
    });
  }

  async cancelInitialization(): Promise<void> {
    await this.op(() => this.backend.delete(KEYS.initialize));
  }

  /** Write `value` if the key is unchanged since `version` (null: only if absent). */
  private cas(k: string, version: number | null, value: string): Promise<boolean> {
    return this.op(() => {
      if (!this.unchangedSince(k, version)) return false;
      this.backend.put(k, value);
      return true;
    });
  }

  private unchangedSince(k: string, version: number | null): boolean {
    const cur = this.backend.get(k);
    return version === null ? cur === undefined : cur?.version === version;
  }

  setConfig(value: Record<string, unknown>, version: number | null): Promise<boolean> {
    return this.cas(KEYS.config, version, serializeConfig(value));
  }

  touchMember(data: MemberData): Promise<boolean> {
    return this.op(() => {
      this.backend.put(memberKey(this.name), serializeMember(data), this.liveSession());
      return true;
    });
  }

  attemptToAcquireLeader(): Promise<boolean> {
    return this.op(() => {
      const session = this.liveSession();
      if (this.backend.get(KEYS.leader)) return false;
      this.backend.put(KEYS.leader, this.name, session);
      this.retiringUntil = null;
      return true;
    });
  }

  updateLeader(status: ClusterStatus): Promise<boolean> {
    return this.op(() => {
      this.renew();
      const session = this.liveSession();
      const leader = this.backend.get(KEYS.leader);
      if (leader?.value !== this.name) return false;
      if (leader.session !== session) this.backend.put(KEYS.leader, this.name, session);
      const json = serializeStatus(status);
      if (json !== null && this.backend.get(KEYS.status)?.value !== json) this.backend.put(KEYS.status, json);
      this.retiringUntil = null;
      return true;
    });
  }

  deleteLeader(): Promise<boolean> {
    return this.op(() => {
      if (this.backend.get(KEYS.leader)?.value !== this.name) return false;
      return this.backend.delete(KEYS.leader);
    });
  }

  setHistory(history: readonly HistoryEntry[]): Promise<boolean> {
    return this.op(() => {
      this.backend.put(KEYS.history, serializeHistory(history));
      return true;
    });
  }

  setFailover(value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null): Promise<boolean> {
    return this.cas(KEYS.failover, version, serializeFailover(value));
  }

  deleteFailover(version?: number): Promise<boolean> {
    return this.op(() => {
      if (version !== undefined && !this.unchangedSince(KEYS.failover, version)) return false;
      this.backend.delete(KEYS.failover);
      return true;
    });
  }

  setSync(value: SyncValue, version: number | null): Promise<boolean> {
    return this.cas(KEYS.sync, version, serializeSync(value));
  }

  deleteSync(): Promise<boolean> {
    return this.op(() => {
      this.backend.delete(KEYS.sync);
      return true;
    });
  }

  setFailsafe(value: FailsafeTopology): Promise<boolean> {
    return this.op(() => {
      this.backend.put(KEYS.failsafe, serializeFailsafe(value));
      return true;
    });
  }

  /** A new TTL takes effect with a new session at the next refresh, as in the etcd adapter. */
  setTimeouts(opts: { ttl: number; retryTimeout: number }): void {
    this.ttl = opts.ttl;
  }

  watchLeader(onChange: () => void): () => void {
    return this.backend.watch(onChange);
  }

  async close(): Promise<void> {
    // Nothing is held: the session simply stops being renewed, as when a daemon exits.
  }
}
