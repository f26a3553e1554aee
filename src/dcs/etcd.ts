/**
 * The etcd v3 store, with Patroni's etcd3 semantics (patroni/dcs/etcd3.py): one lease of `ttl`
 * seconds per member; `leader` and `members/<name>` are bound to it; CAS through transactions on
 * create/mod revisions. The client's own retry and circuit-breaker policies are off: every call is
 * retried here, and only until its `retry_timeout` deadline, so a frozen etcd cannot stall the HA
 * loop and a recovered etcd is usable at once.
 */
import { Etcd3, type IKeyValue, type IOptions, type Watcher } from 'etcd3';
import { noop as noopPolicy } from 'cockatiel';
import type { Clock } from '../util/clock.js';
import { DcsError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { KEYS, buildCluster, clusterPrefix, serializeFailover, serializeSync, type RawNode } from './codec.js';
import type { Cluster, ClusterStatus, DcsStore, HistoryEntry, MemberData } from './types.js';

export interface Etcd3StoreOptions {
  hosts: string[];
  protocol?: 'http' | 'https';
  username?: string;
  password?: string;
  namespace: string;
  scope: string;
  name: string;
  ttl: number;
  retryTimeout: number;
  clock: Clock;
  log: Logger;
}

type Compare = { key: Buffer; target: 'Create' | 'Mod' | 'Value'; result: 'Equal'; create_revision?: number; mod_revision?: number; value?: Buffer };

export class Etcd3Store implements DcsStore {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private ttl: number;
  private retryTimeoutMs: number;
  private lease: string | null = null;
  private leaseTtl = 0;
  private validUntil = -Infinity;
  private lastMember: string | null = null;

  constructor(private readonly o: Etcd3StoreOptions) {
    this.prefix = clusterPrefix(o.namespace, o.scope);
    this.ttl = o.ttl;
    this.retryTimeoutMs = o.retryTimeout * 1000;
    const proto = o.protocol ?? 'http';
    const opts: IOptions = {
      hosts: o.hosts.map((h) => (h.includes('://') ? h : `${proto}://${h}`)),
      dialTimeout: 2000,
      faultHandling: { host: () => noopPolicy, global: noopPolicy },
    };
    if (o.username) opts.auth = { username: o.username, password: o.password ?? '' };
    this.client = new Etcd3(opts);
  }

  private key(k: string): Buffer {
    return Buffer.from(this.prefix + k);
  }

  /** Run `fn` with a gRPC deadline, retrying transient errors until `retry_timeout` is spent. */
  private async call<T>(what: string, fn: (opts: { deadline: Date }) => Promise<T>): Promise<T> {
    const { clock } = this.o;
    const end = clock.now() + this.retryTimeoutMs;
    let last: unknown;
    for (let attempt = 0; attempt < 10; attempt++) {
      const left = end - clock.now();
      if (left <= 50) break;
      try {
        return await withTimeout(fn({ deadline: new Date(Date.now() + left) }), left);
      } catch (e) {
        last = e;
        if (isLeaseGone(e)) throw e;
        await clock.sleep(Math.min(200, Math.max(0, end - clock.now() - 50)));
      }
    }
    throw new DcsError(`etcd ${what} failed within retry_timeout ${this.retryTimeoutMs / 1000}s: ${errorMessage(last)}`, { cause: last });
  }

  async load(): Promise<Cluster> {
    const prefix = this.key('');
    const res = await this.call('range', (opts) =>
      this.client.kv.range({ key: prefix, range_end: prefixEnd(prefix) }, opts),
    );
    const nodes: RawNode[] = (res.kvs as IKeyValue[]).map((kv) => ({
      key: kv.key.toString().slice(this.prefix.length),
      value: kv.value.toString(),
      version: Number(kv.mod_revision),
      lease: kv.lease && kv.lease !== '0' ? String(kv.lease) : undefined,
    }));
    return buildCluster(nodes);
  }

  async refreshSession(): Promise<void> {
    const sentAt = this.o.clock.now();
    if (this.lease && this.leaseTtl === this.ttl) {
      const ok = await this.call('lease keepalive', (opts) => this.keepaliveOnce(this.lease!, opts));
      if (ok) {
        this.validUntil = sentAt + this.ttl * 1000;
        return;
      }
      this.o.log.warn('our etcd lease expired: granting a new one');
    }
    const grantAt = this.o.clock.now();
    const res = await this.call('lease grant', (opts) => this.client.leaseClient.leaseGrant({ TTL: this.ttl, ID: 0 }, opts));
    this.lease = String(res.ID);
    this.leaseTtl = this.ttl;
    this.lastMember = null;
    this.validUntil = grantAt + this.ttl * 1000;
  }

  private async keepaliveOnce(id: string, opts: { deadline: Date }): Promise<boolean> {
    const stream = await this.client.leaseClient.leaseKeepAlive(opts);
    try {
      const res = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        stream.write({ ID: id });
      });
      return Number(res.TTL) > 0;
    } finally {
      stream.end();
    }
  }

  sessionValidUntil(): number {
    return this.validUntil;
  }

  private async ensureLease(): Promise<string> {
    if (!this.lease) await this.refreshSession();
    return this.lease!;
  }

  /** Run a write bound to our lease; if etcd says the lease is gone, take a new one and try once more. */
  private async withLease<T>(fn: (lease: string) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.ensureLease());
    } catch (e) {
      if (!isLeaseGone(e)) throw e;
      this.lease = null;
      return fn(await this.ensureLease());
    }
  }

  private async txn(what: string, compare: Compare[], success: Array<Record<string, unknown>>): Promise<boolean> {
    const res = await this.call(what, (opts) => this.client.kv.txn({ compare, success, failure: [] } as never, opts));
    return res.succeeded;
  }

  private put(k: string, value: string, lease?: string): Record<string, unknown> {
    return { request_put: { key: this.key(k), value: Buffer.from(value), ...(lease ? { lease } : {}) } };
  }

  async initialize(sysid: string, create: boolean): Promise<boolean> {
    if (!create) {
      await this.call('put initialize', (opts) => this.client.kv.put({ key: this.key(KEYS.initialize), value: Buffer.from(sysid) }, opts));
      return true;
    }
    return this.txn('create initialize', [absent(this.key(KEYS.initialize))], [this.put(KEYS.initialize, sysid)]);
  }

  async cancelInitialization(): Promise<void> {
    await this.call('delete initialize', (opts) => this.client.kv.deleteRange({ key: this.key(KEYS.initialize) }, opts));
  }

  private casCompare(k: string, version: number | null): Compare {
    return version === null ? absent(this.key(k)) : { key: this.key(k), target: 'Mod', result: 'Equal', mod_revision: version };
  }

  setConfig(value: Record<string, unknown>, version: number | null): Promise<boolean> {
    return this.txn('set config', [this.casCompare(KEYS.config, version)], [this.put(KEYS.config, JSON.stringify(value))]);
  }

  async touchMember(data: MemberData): Promise<boolean> {
    const json = JSON.stringify(data);
    if (json === this.lastMember) return true;
    await this.withLease((lease) =>
      this.call('put member', (opts) =>
        this.client.kv.put({ key: this.key(KEYS.members + this.o.name), value: Buffer.from(json), lease }, opts),
      ),
    );
    this.lastMember = json;
    return true;
  }

  attemptToAcquireLeader(): Promise<boolean> {
    return this.withLease((lease) =>
      this.txn('acquire leader', [absent(this.key(KEYS.leader))], [this.put(KEYS.leader, this.o.name, lease)]),
    );
  }

  async updateLeader(status: ClusterStatus): Promise<boolean> {
    await this.refreshSession();
    const lease = this.lease!;
    const leaderKey = this.key(KEYS.leader);
    const mine: Compare = { key: leaderKey, target: 'Value', result: 'Equal', value: Buffer.from(this.o.name) };
    const statusPut = this.put(KEYS.status, JSON.stringify(dropUndefined({ optime: status.optime, slots: status.slots })));
    // Re-bind the leader key only when it is not on our current lease (a new lease after expiry of the old
    // one cannot happen while we hold the key, but a restarted daemon may find its old key): rewriting it
    // every tick would wake every watcher every tick.
    const sameLease: Compare = { key: leaderKey, target: 'Lease' as 'Value', result: 'Equal', lease } as unknown as Compare;
    const res = await this.call('update leader', (opts) =>
      this.client.kv.txn(
        {
          compare: [mine],
          success: [{ request_txn: { compare: [sameLease], success: [statusPut], failure: [this.put(KEYS.leader, this.o.name, lease), statusPut] } }],
          failure: [],
        } as never,
        opts,
      ),
    );
    return res.succeeded;
  }

  deleteLeader(): Promise<boolean> {
    const leaderKey = this.key(KEYS.leader);
    return this.txn('delete leader', [{ key: leaderKey, target: 'Value', result: 'Equal', value: Buffer.from(this.o.name) }], [
      { request_delete_range: { key: leaderKey } },
    ]);
  }

  async setHistory(history: readonly HistoryEntry[]): Promise<boolean> {
    await this.call('put history', (opts) => this.client.kv.put({ key: this.key(KEYS.history), value: Buffer.from(JSON.stringify(history)) }, opts));
    return true;
  }

  setFailover(value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null): Promise<boolean> {
    return this.txn('set failover', [this.casCompare(KEYS.failover, version)], [this.put(KEYS.failover, serializeFailover(value))]);
  }

  async deleteFailover(version?: number): Promise<boolean> {
    const del = { request_delete_range: { key: this.key(KEYS.failover) } };
    if (version === undefined) return this.txn('delete failover', [], [del]);
    return this.txn('delete failover', [this.casCompare(KEYS.failover, version)], [del]);
  }

  setSync(value: { leader: string; sync_standby: string | null }, version: number | null): Promise<boolean> {
    return this.txn('set sync', [this.casCompare(KEYS.sync, version)], [this.put(KEYS.sync, serializeSync(value))]);
  }

  deleteSync(): Promise<boolean> {
    return this.txn('delete sync', [], [{ request_delete_range: { key: this.key(KEYS.sync) } }]);
  }

  setTimeouts(opts: { ttl: number; retryTimeout: number }): void {
    this.ttl = opts.ttl;
    this.retryTimeoutMs = opts.retryTimeout * 1000;
  }

  watchLeader(onChange: () => void): () => void {
    let watcher: Watcher | null = null;
    let closed = false;
    void this.client
      .watch()
      .key(this.prefix + KEYS.leader)
      .create()
      .then((w) => {
        if (closed) {
          void w.cancel();
          return;
        }
        watcher = w;
        w.on('put', () => onChange());
        w.on('delete', () => onChange());
        w.on('connected', () => onChange());
        w.on('error', (e) => this.o.log.debug({ err: errorMessage(e) }, 'leader watch error (it reconnects)'));
      })
      .catch((e: unknown) => this.o.log.warn({ err: errorMessage(e) }, 'could not watch the leader key'));
    return () => {
      closed = true;
      void watcher?.cancel().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function absent(key: Buffer): Compare {
  return { key, target: 'Create', result: 'Equal', create_revision: 0 };
}

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

function isLeaseGone(e: unknown): boolean {
  return /requested lease not found/i.test(errorMessage(e));
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
