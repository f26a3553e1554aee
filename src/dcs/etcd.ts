/**
 * The etcd v3 store, with Patroni's etcd3 semantics (patroni/dcs/etcd3.py): one lease of `ttl` seconds
 * per member; `leader` and `members/<name>` are bound to it; CAS through transactions on values and
 * create/mod revisions.
 *
 * Bounded calls: the client's own retry and circuit-breaker policies are replaced by no-ops, and every
 * public method gets one deadline of `retry_timeout` that covers all of its requests and retries. Each
 * request carries that deadline to gRPC (so it is cancelled on the wire) and is raced against it here
 * (so nothing in the client can hold us longer). A frozen or stopped etcd therefore costs a call at most
 * `retry_timeout`, and because a failed request resets the client's channels, the next call after etcd
 * comes back connects afresh instead of waiting out a reconnect backoff or an open circuit.
 */
import { readFileSync } from 'node:fs';
import { ExponentialBackoff, noop as noopPolicy, type IBackoff } from 'cockatiel';
import {
  EtcdLeaseInvalidError,
  Etcd3,
  castGrpcError,
  isRecoverableError,
  type ICompare,
  type IKeyValue,
  type IOptions,
  type IRequestOp,
  type Watcher,
} from 'etcd3';
import type { Etcd3Settings } from '../config/types.js';
import type { Clock } from '../util/clock.js';
import { ConfigError, DcsError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import {
  KEYS,
  buildCluster,
  clusterPrefix,
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

/**
 * `hosts`: `host:port` or `http(s)://host:port`; TLS files (Patroni's etcd3 cacert, cert, key): https is
 * used when the protocol or a host URL says so.
 */
export interface Etcd3StoreOptions extends Etcd3Settings {
  namespace: string;
  scope: string;
  name: string;
  /** Seconds. */
  ttl: number;
  /** Seconds: the bound on every call. */
  retryTimeout: number;
  clock: Clock;
  log: Logger;
}

/** Pause between retries of a request that failed fast (connection refused, leader election). */
const RETRY_PAUSE_MS = 100;

/** Our lease: its id, the TTL it was granted with, and until when it certainly lives. */
interface Lease {
  readonly id: string;
  readonly ttl: number;
  validUntil: number;
}

/** etcd said the lease a write was bound to does not exist (it expired or was revoked). */
class LeaseGoneError extends DcsError {}

class CallTimeoutError extends Error {}

export class Etcd3Store implements DcsStore {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private ttl: number;
  private retryTimeoutMs: number;
  private lease: Lease | null = null;
  /**
   * After a TTL change we grant a new lease, but the leader key stays bound to the old one until
   * updateLeader() re-binds it: until then our lock lives only as long as the old lease is sure to.
   */
  private retiring: { id: string; validUntil: number } | null = null;
  /**
   * Our member key as last seen (by load() or our own write). Like Patroni's touch_member, an unchanged
   * member on our current lease is not rewritten: every write is a revision, and members change rarely.
   */
  private seenMember: { lease: string; json: string } | null = null;
  /** The status JSON last written by updateLeader(), to skip unchanged writes like Patroni's write_status. */
  private lastStatus: string | null = null;
  /** Stoppers of the leader watches still running, for close(). */
  private readonly stoppers = new Set<() => Promise<void>>();

  constructor(private readonly o: Etcd3StoreOptions) {
    this.prefix = clusterPrefix(o.namespace, o.scope);
    this.ttl = o.ttl;
    this.retryTimeoutMs = o.retryTimeout * 1000;
    this.client = new Etcd3(this.clientOptions());
  }

  private clientOptions(): IOptions {
    const o = this.o;
    const proto = o.protocol ?? 'http';
    const hosts = o.hosts.map((h) => (h.includes('://') ? h : `${proto}://${h}`));
    // As Patroni: the TLS files matter only for https hosts.
    const secure = hosts.every((h) => h.startsWith('https://'));
    if (!secure && (o.cacert || o.cert)) o.log.warn('etcd3.cacert/cert are set but the hosts are not https: connecting without TLS (set etcd3.protocol: https)');
    const credentials = secure ? etcdCredentials(o) : undefined;
    const opts: IOptions = {
      hosts,
      ...(credentials ? { credentials } : {}),
      faultHandling: {
        host: () => noopPolicy,
        global: noopPolicy,
        // The leader watch reconnects by itself; keep its backoff short so a restarted etcd is watched again soon.
        // (The client wants the backoff factory here, as its own default passes, though its type says IBackoff.)
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }) as unknown as IBackoff<unknown>,
      },
      // Unary calls we do not give a deadline ourselves (the auth token exchange) still get one.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + this.retryTimeoutMs) }),
      grpcOptions: {
        // A private subchannel per client: reset channels really start over, without a shared reconnect backoff.
        'grpc.use_local_subchannel_pool': 1,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        // Notice a dead connection under a long-lived watch stream (etcd allows pings every 5 s).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
    };
    if (o.username) opts.auth = { username: o.username, password: o.password ?? '' };
    return opts;
  }

  private key(k: string): Buffer {
    return Buffer.from(this.prefix + k);
  }

  /** The deadline (Clock.now() ms) of a public call that starts now. */
  private deadline(): number {
    return this.o.clock.now() + this.retryTimeoutMs;
  }

  /**
   * Run one request until it succeeds, fails for good, or `end` passes. Transient failures are retried;
   * everything comes out as DcsError (LeaseGoneError when etcd says the lease is gone).
   */
  private async call<T>(what: string, end: number, fn: (opts: { deadline: Date }) => Promise<T>): Promise<T> {
    const { clock } = this.o;
    let last: unknown = new CallTimeoutError('no time left');
    for (;;) {
      const left = end - clock.now();
      if (left <= 0) break;
      try {
        return await withTimeout(fn({ deadline: new Date(Date.now() + left) }), left);
      } catch (e) {
        last = e;
        if (isLeaseGone(e)) throw new LeaseGoneError(`etcd ${what}: our lease is gone`, { cause: e });
        if (!isTransient(e)) throw new DcsError(`etcd ${what} failed: ${errorMessage(e)}`, { cause: e });
      }
      const pause = Math.min(RETRY_PAUSE_MS, end - clock.now());
      if (pause <= 0) break;
      await clock.sleep(pause);
    }
    throw new DcsError(`etcd ${what} failed within retry_timeout ${this.retryTimeoutMs / 1000}s: ${errorMessage(last)}`, { cause: last });
  }

  async load(): Promise<Cluster> {
    const prefix = this.key('');
    // Linearizable (not serializable): the snapshot the HA loop decides on must not be stale.
    const res = await this.call('range', this.deadline(), (opts) => this.client.kv.range({ key: prefix, range_end: prefixEnd(prefix) }, opts));
    const nodes: RawNode[] = res.kvs.map((kv: IKeyValue) => ({
      key: kv.key.toString().slice(this.prefix.length),
      value: kv.value.toString(),
      version: Number(kv.mod_revision),
      ...(kv.lease && kv.lease !== '0' ? { lease: String(kv.lease) } : {}),
    }));
    const mine = nodes.find((n) => n.key === memberKey(this.o.name));
    this.seenMember = mine?.lease ? { lease: mine.lease, json: mine.value } : null;
    return buildCluster(nodes);
  }

  // ---- session (lease) ----

  refreshSession(): Promise<void> {
    return this.renew(this.deadline());
  }

  sessionValidUntil(): number {
    if (!this.lease) return -Infinity;
    return Math.min(this.lease.validUntil, this.retiring?.validUntil ?? Infinity);
  }

  /** Keep our lease alive, or grant a new one when it is gone or the TTL changed (Patroni's _do_refresh_lease + set_ttl). */
  private async renew(end: number): Promise<void> {
    const cur = this.lease;
    if (cur && cur.ttl === this.ttl) {
      const sentAt = await this.keepaliveOnce(cur.id, end);
      if (sentAt !== null) {
        cur.validUntil = sentAt + cur.ttl * 1000;
        return;
      }
      this.o.log.warn({ lease: cur.id }, 'our etcd lease expired: granting a new one');
    } else if (cur) {
      const validUntil = Math.min(cur.validUntil, this.retiring?.validUntil ?? Infinity);
      this.retiring = { id: cur.id, validUntil };
      this.o.log.info({ ttl: this.ttl }, 'ttl changed: granting a new etcd lease');
    }
    await this.grant(end);
  }

  private async grant(end: number): Promise<void> {
    const ttl = this.ttl;
    const { id, sentAt } = await this.call('lease grant', end, async (opts) => {
      const sentAt = this.o.clock.now();
      const res = await this.client.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }, opts);
      return { id: String(res.ID), sentAt };
    });
    this.lease = { id, ttl, validUntil: sentAt + ttl * 1000 };
  }

  /**
   * One keepalive on a fresh stream (the client's own keepalive loop would renew behind the HA loop's
   * back, which is exactly what a leader that stopped deciding must not have). Resolves the monotonic time
   * taken just before the request was sent, or null if etcd says the lease no longer exists.
   */
  private keepaliveOnce(id: string, end: number): Promise<number | null> {
    return this.call('lease keepalive', end, async (opts) => {
      const stream = await this.client.leaseClient.leaseKeepAlive(opts);
      const sentAt = this.o.clock.now();
      const res = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', (e: Error) => reject(castGrpcError(e)));
        stream.on('end', () => reject(new CallTimeoutError('keepalive stream ended without an answer')));
        stream.write({ ID: id });
      });
      // A graceful half-close; cancel() would look like a failure and make the client reset its channels.
      stream.end();
      return Number(res.TTL) > 0 ? sentAt : null;
    });
  }

  /** Run `fn` with our lease id; if etcd says the lease is gone, grant a new one and run it once more. */
  private async withLease<T>(end: number, fn: (lease: string) => Promise<T>): Promise<T> {
    if (!this.lease) await this.renew(end);
    try {
      return await fn(this.lease!.id);
    } catch (e) {
      if (!(e instanceof LeaseGoneError)) throw e;
      this.o.log.warn('our etcd lease disappeared: granting a new one and retrying');
      this.lease = null;
      await this.renew(end);
      return fn(this.lease!.id);
    }
  }

  // ---- writes ----

  private async txn(what: string, end: number, compare: ICompare[], success: IRequestOp[], failure: IRequestOp[] = []): Promise<boolean> {
    const res = await this.call(what, end, (opts) => this.client.kv.txn({ compare, success, failure }, opts));
    return res.succeeded;
  }

  private putOp(k: string, value: string, lease?: string): IRequestOp {
    return { request_put: { key: this.key(k), value: Buffer.from(value), ...(lease ? { lease } : {}) } };
  }

  private deleteOp(k: string): IRequestOp {
    return { request_delete_range: { key: this.key(k) } };
  }

  private isMine(k: string): ICompare {
    return { key: this.key(k), target: 'Value', result: 'Equal', value: Buffer.from(this.o.name) };
  }

  /** CAS on the mod revision; `null` means "only if absent" (create revision 0). */
  private unchangedSince(k: string, version: number | null): ICompare {
    return version === null
      ? { key: this.key(k), target: 'Create', result: 'Equal', create_revision: 0 }
      : { key: this.key(k), target: 'Mod', result: 'Equal', mod_revision: version };
  }

  async initialize(sysid: string, create: boolean): Promise<boolean> {
    const end = this.deadline();
    if (!create) return this.txn('put initialize', end, [], [this.putOp(KEYS.initialize, sysid)]);
    return this.txn('create initialize', end, [this.unchangedSince(KEYS.initialize, null)], [this.putOp(KEYS.initialize, sysid)]);
  }

  async cancelInitialization(): Promise<void> {
    await this.txn('delete initialize', this.deadline(), [], [this.deleteOp(KEYS.initialize)]);
  }

  setConfig(value: Record<string, unknown>, version: number | null): Promise<boolean> {
    return this.txn('set config', this.deadline(), [this.unchangedSince(KEYS.config, version)], [this.putOp(KEYS.config, serializeConfig(value))]);
  }

  async touchMember(data: MemberData): Promise<boolean> {
    const json = serializeMember(data);
    const end = this.deadline();
    if (!this.lease) await this.renew(end);
    if (this.seenMember && this.seenMember.lease === this.lease!.id && this.seenMember.json === json) return true;
    await this.withLease(end, async (lease) => {
      await this.txn('put member', end, [], [this.putOp(memberKey(this.o.name), json, lease)]);
      this.seenMember = { lease, json };
    });
    return true;
  }

  async attemptToAcquireLeader(): Promise<boolean> {
    const end = this.deadline();
    const won = await this.withLease(end, (lease) =>
      this.txn('acquire leader', end, [this.unchangedSince(KEYS.leader, null)], [this.putOp(KEYS.leader, this.o.name, lease)]),
    );
    if (won) {
      this.retiring = null;
      this.lastStatus = null;
    }
    return won;
  }

  async updateLeader(status: ClusterStatus): Promise<boolean> {
    const end = this.deadline();
    await this.renew(end);
    const statusJson = serializeStatus(status);
    const statusOps = statusJson !== null && statusJson !== this.lastStatus ? [this.putOp(KEYS.status, statusJson)] : [];
    const ok = await this.withLease(end, (lease) =>
      // If the key is ours: leave it alone when it is on our current lease (rewriting it would wake every
      // watcher every tick), else re-bind it to this lease (a new lease after a TTL change, or a key left by
      // our previous process).
      this.txn('update leader', end, [this.isMine(KEYS.leader)], [
        {
          request_txn: {
            compare: [{ key: this.key(KEYS.leader), target: 'Lease', result: 'Equal', lease }],
            success: statusOps,
            failure: [this.putOp(KEYS.leader, this.o.name, lease), ...statusOps],
          },
        },
      ]),
    );
    if (ok) {
      this.retiring = null;
      if (statusJson !== null) this.lastStatus = statusJson;
    } else {
      this.lastStatus = null;
    }
    return ok;
  }

  async deleteLeader(): Promise<boolean> {
    const deleted = await this.txn('delete leader', this.deadline(), [this.isMine(KEYS.leader)], [this.deleteOp(KEYS.leader)]);
    if (deleted) this.lastStatus = null;
    return deleted;
  }

  async setHistory(history: readonly HistoryEntry[]): Promise<boolean> {
    return this.txn('put history', this.deadline(), [], [this.putOp(KEYS.history, serializeHistory(history))]);
  }

  setFailover(value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null): Promise<boolean> {
    return this.txn('set failover', this.deadline(), [this.unchangedSince(KEYS.failover, version)], [this.putOp(KEYS.failover, serializeFailover(value))]);
  }

  deleteFailover(version?: number): Promise<boolean> {
    const compare = version === undefined ? [] : [this.unchangedSince(KEYS.failover, version)];
    return this.txn('delete failover', this.deadline(), compare, [this.deleteOp(KEYS.failover)]);
  }

  setSync(value: SyncValue, version: number | null): Promise<boolean> {
    return this.txn('set sync', this.deadline(), [this.unchangedSince(KEYS.sync, version)], [this.putOp(KEYS.sync, serializeSync(value))]);
  }

  deleteSync(): Promise<boolean> {
    return this.txn('delete sync', this.deadline(), [], [this.deleteOp(KEYS.sync)]);
  }

  /** Patroni's etcd3 `_write_failsafe`: a plain put, not bound to a lease (it must outlive the leader's session). */
  setFailsafe(value: FailsafeTopology): Promise<boolean> {
    return this.txn('put failsafe', this.deadline(), [], [this.putOp(KEYS.failsafe, serializeFailsafe(value))]);
  }

  /** Like Patroni's set_ttl: a new TTL takes effect with a new lease at the next refresh. */
  setTimeouts(opts: { ttl: number; retryTimeout: number }): void {
    this.ttl = opts.ttl;
    this.retryTimeoutMs = opts.retryTimeout * 1000;
  }

  // ---- watch ----

  watchLeader(onChange: () => void): () => void {
    let closed = false;
    let watcher: Watcher | null = null;
    let retry: NodeJS.Timeout | null = null;
    const log = this.o.log;
    // Events of a watcher being cancelled may still arrive: after unwatch, nothing reaches the caller.
    const fire = (): void => {
      if (!closed) onChange();
    };
    const start = (): void => {
      if (closed) return;
      // The client reconnects a broken stream by itself and resumes at the next revision, so nothing is
      // lost; we still report a (re)connect as a change: the leader may have changed before it.
      const w = this.client.watch().key(this.prefix + KEYS.leader).watcher();
      watcher = w;
      let disconnected = true;
      w.on('connected', () => {
        if (disconnected) fire();
        disconnected = false;
      });
      w.on('disconnected', (e: unknown) => {
        disconnected = true;
        log.debug({ err: errorMessage(e) }, 'leader watch disconnected (it reconnects)');
      });
      w.on('put', fire);
      w.on('delete', fire);
      // etcd cancelled the watch (e.g. its revision was compacted): the client drops it, we watch again.
      w.on('error', (e: unknown) => {
        log.warn({ err: errorMessage(e) }, 'leader watch cancelled by etcd: watching again');
        w.removeAllListeners();
        retry = setTimeout(start, 500);
        retry.unref();
      });
    };
    start();
    const stop = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      if (retry) clearTimeout(retry);
      this.stoppers.delete(stop);
      await watcher?.cancel().catch(() => undefined);
    };
    this.stoppers.add(stop);
    return () => void stop();
  }

  /** Stop our watches (waiting a moment for etcd to confirm) and release the client. The leader key stays. */
  async close(): Promise<void> {
    const stops = Promise.all([...this.stoppers].map((stop) => stop()));
    await withTimeout(stops, 1000).catch(() => undefined);
    this.client.close();
  }
}

/** The first key after every key that starts with `prefix`. */
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
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new CallTimeoutError(`no answer within ${Math.round(ms)} ms`)), ms);
  });
  // The losing promise may still reject later: never let that become an unhandled rejection.
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

function isLeaseGone(e: unknown): boolean {
  return e instanceof EtcdLeaseInvalidError || /requested lease not found/i.test(errorMessage(e));
}

/** Worth another try before the deadline: timeouts, unavailability, leader elections, a reset stream. */
function isTransient(e: unknown): boolean {
  if (e instanceof CallTimeoutError) return true;
  return typeof e === 'object' && e !== null && isRecoverableError(e as Error);
}

/**
 * The gRPC TLS material from Patroni's etcd3 `cacert`, `cert` and `key` files (the key may be in the cert
 * file, as Patroni allows), or undefined without any: https then verifies etcd with the system's CAs.
 * An unreadable file is a configuration error naming the key.
 */
export function etcdCredentials(o: { cacert?: string; cert?: string; key?: string }): IOptions['credentials'] {
  if (!o.cacert && !o.cert) return undefined;
  const read = (key: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new ConfigError(`etcd3.${key}`, `cannot read ${file}: ${errorMessage(e)}`);
    }
  };
  const ca = o.cacert ? read('cacert', o.cacert) : undefined;
  const cert = o.cert ? read('cert', o.cert) : undefined;
  let key = o.key ? read('key', o.key) : undefined;
  if (cert && !key) {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(cert.toString('utf8'))) throw new ConfigError('etcd3.key', 'required with etcd3.cert (or put the key into the cert file)');
    key = cert;
  }
  return {
    rootCertificate: ca ?? (undefined as unknown as Buffer),
    ...(cert && key ? { certChain: cert, privateKey: key } : {}),
  };
}
