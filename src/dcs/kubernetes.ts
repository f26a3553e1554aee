/**
 * The Kubernetes store, with Patroni's objects and annotations (patroni/dcs/kubernetes.py, 3.0.2;
 * DESIGN.md §3, reference/peers.md §2.3), so Patroni members, patronictl and pgwarden read each other:
 *
 * - ConfigMap mode (default): `<scope>-leader`, `<scope>-config`, `<scope>-failover`, `<scope>-sync`.
 *   Endpoints mode (`use_endpoints`): the same as Endpoints, except the leader object is `<scope>`, whose
 *   subsets carry the primary's pod IP and `kubernetes.ports` — a selector-less `<scope>` Service then routes
 *   writes to the primary — plus the headless `<scope>-config` Service that keeps `<scope>-config` alive.
 * - The lock: annotations `leader`, `acquireTime`, `renewTime`, `ttl`, `transitions` (strings), `optime` and
 *   `slots` on the leader object, each write carrying the resourceVersion last seen (a stale one gets 409).
 *   Expiry is judged on our own monotonic clock: the record unchanged for `ttl` seconds since we first saw
 *   it; clocks of different machines are never compared.
 * - Members: the pod's `status` annotation (the member JSON) and its role label (`kubernetes.role_label`,
 *   values `leader_label_value`/`follower_label_value`/`standby_leader_label_value`, default
 *   primary/replica/primary), so a Service selecting the role label routes to the primary or the replicas.
 *   A new lock holder takes the leader label off every other pod before it promotes: no two pods carry it.
 * - Reads come from two list + watch caches (pods, and the kind); a change of the leader object wakes the
 *   HA loop at once, and so does its expiry.
 */
import { DcsError, errorMessage } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { statusMessage, type KubeClient } from '../kube/client.js';
import { buildCluster, serializeConfig, serializeHistory, serializeMember, type RawNode } from './codec.js';
import { KubeCache, rvNumber, type KubeObject } from './kube-cache.js';
import type { Cluster, ClusterStatus, DcsStore, HistoryEntry, MemberData, SyncValue } from './types.js';

export interface KubernetesSettings {
  namespace: string;
  labels: Record<string, string>;
  scopeLabel: string;
  roleLabel: string;
  leaderLabelValue: string;
  followerLabelValue: string;
  standbyLeaderLabelValue: string;
  useEndpoints: boolean;
  podIp?: string;
  ports: Array<{ port: number; name?: string; protocol?: string }>;
  context?: string;
  cacert?: string;
  retriableCodes: number[];
}

/** The `kubernetes:` section (validated by the config schema) with Patroni's defaults. */
export function kubernetesSettings(raw: Record<string, unknown>): KubernetesSettings {
  const s = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
  const labels: Record<string, string> = {};
  if (raw.labels && typeof raw.labels === 'object') for (const [k, v] of Object.entries(raw.labels)) labels[k] = String(v);
  const ports = Array.isArray(raw.ports)
    ? (raw.ports as Array<Record<string, unknown>>).map((p) => ({
        port: Number(p.port ?? 5432),
        ...(s(p.name) ? { name: s(p.name)! } : {}),
        ...(s(p.protocol) ? { protocol: s(p.protocol)! } : {}),
      }))
    : [{ port: 5432 }];
  const codes = raw.retriable_http_codes;
  const leaderLabelValue = s(raw.leader_label_value) ?? 'primary';
  return {
    namespace: s(raw.namespace) ?? 'default',
    labels,
    scopeLabel: s(raw.scope_label) ?? 'cluster-name',
    roleLabel: s(raw.role_label) ?? 'role',
    leaderLabelValue,
    followerLabelValue: s(raw.follower_label_value) ?? 'replica',
    standbyLeaderLabelValue: s(raw.standby_leader_label_value) ?? leaderLabelValue,
    useEndpoints: raw.use_endpoints === true || ['true', 'yes', 'on', '1'].includes(String(raw.use_endpoints).toLowerCase()),
    ...(s(raw.pod_ip) ? { podIp: s(raw.pod_ip)! } : {}),
    ports,
    ...(s(raw.context) ? { context: s(raw.context)! } : {}),
    ...(s(raw.cacert) ? { cacert: s(raw.cacert)! } : {}),
    retriableCodes: (Array.isArray(codes) ? codes : codes === undefined ? [] : String(codes).split(',')).map(Number).filter(Number.isInteger),
  };
}

export interface KubernetesStoreOptions {
  client: KubeClient;
  settings: KubernetesSettings;
  scope: string;
  /** Our member name = our pod's name ('' for a client that is no member, e.g. ctl). */
  name: string;
  ttl: number;
  retryTimeout: number;
  clock: Clock;
  log: Logger;
}

/** Connect (in a pod, or through a kubeconfig) and open the store the `kubernetes:` section describes. */
export async function connectKubernetesStore(raw: Record<string, unknown>, o: Omit<KubernetesStoreOptions, 'client' | 'settings'>): Promise<KubernetesStore> {
  const { KubeClient } = await import('../kube/client.js');
  const settings = kubernetesSettings(raw);
  const client = await KubeClient.connect({ context: settings.context, cacert: settings.cacert, retriableCodes: settings.retriableCodes });
  return new KubernetesStore({ ...o, client, settings });
}

/** The lock record as Patroni compares it (`_leader_observed_record`). */
const RECORD_KEYS = ['leader', 'acquireTime', 'ttl', 'renewTime', 'transitions'] as const;
const SM_PATCH = 'application/strategic-merge-patch+json';

type Annotations = Record<string, string | null>;

const annotationsOf = (o: KubeObject | undefined): Record<string, string> => (o?.metadata.annotations ?? {}) as Record<string, string>;

export class KubernetesStore implements DcsStore {
  private readonly s: KubernetesSettings;
  private readonly labels: Record<string, string>;
  private readonly selector: string;
  private readonly kindPath: string;
  private readonly podPath: string;
  private readonly names: { leader: string; config: string; failover: string; sync: string };
  private readonly pods: KubeCache;
  private readonly kinds: KubeCache;
  private ttl: number;
  private retryTimeoutMs: number;

  /** The leader record as last observed and when (monotonic): the only basis of lock expiry. */
  private observedRecord: Record<string, string> = {};
  private observedAt: number | null = null;
  /** The leader object's resourceVersion as of the last load(): what a race for the lock CASes on. */
  private leaderRvAtLoad: string | null = null;
  /** Whether that load saw the lock free (absent, released or expired): only then may we race for it. */
  private lockFreeAtLoad = false;
  /** When our last successful lock write was sent, and whether we hold the lock by it. */
  private renewedAt = Number.NEGATIVE_INFINITY;
  private held = false;
  private contactAt = Number.NEGATIVE_INFINITY;
  private lastStatus: ClusterStatus = {};
  private needConfigService: boolean;
  private readonly leaderWatchers = new Set<() => void>();
  private expiryTimer: NodeJS.Timeout | null = null;
  private started = false;

  constructor(private readonly o: KubernetesStoreOptions) {
    this.s = o.settings;
    this.ttl = o.ttl;
    this.retryTimeoutMs = o.retryTimeout * 1000;
    this.labels = { ...this.s.labels, [this.s.scopeLabel]: o.scope };
    this.selector = Object.entries(this.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const ns = `/api/v1/namespaces/${encodeURIComponent(this.s.namespace)}`;
    this.kindPath = `${ns}/${this.s.useEndpoints ? 'endpoints' : 'configmaps'}`;
    this.podPath = `${ns}/pods`;
    this.names = {
      leader: this.s.useEndpoints ? o.scope : `${o.scope}-leader`,
      config: `${o.scope}-config`,
      failover: `${o.scope}-failover`,
      sync: `${o.scope}-sync`,
    };
    this.needConfigService = this.s.useEndpoints;
    const common = {
      client: o.client,
      labelSelector: this.selector,
      log: o.log,
      watchSeconds: () => Math.max(this.ttl, 30),
      listTimeoutMs: () => this.retryTimeoutMs,
    };
    this.pods = new KubeCache({ ...common, path: this.podPath, onChange: () => undefined });
    this.kinds = new KubeCache({ ...common, path: this.kindPath, onChange: (name) => name === this.names.leader && this.observeLeader() });
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.pods.start();
    this.kinds.start();
  }

  // ---- reads ----------------------------------------------------------------------------------

  async load(): Promise<Cluster> {
    this.start();
    const deadline = Date.now() + this.retryTimeoutMs;
    const ready = (await this.pods.waitReady(deadline - Date.now())) && (await this.kinds.waitReady(deadline - Date.now()));
    if (!ready) throw new DcsError('kubernetes: the API server did not answer the first list within retry_timeout');
    const stale = Math.max(this.pods.disconnectedFor(), this.kinds.disconnectedFor());
    if (stale > this.retryTimeoutMs) throw new DcsError(`kubernetes: no watch connection to the API server for ${Math.round(stale / 1000)} s`);
    this.observeLeader();
    const nodes: RawNode[] = [];
    const leaderObj = this.kinds.get(this.names.leader);
    this.leaderRvAtLoad = leaderObj?.metadata.resourceVersion ?? null;
    this.lockFreeAtLoad = !(annotationsOf(leaderObj).leader && this.leaderValid());

    const config = this.kinds.get(this.names.config);
    const ca = annotationsOf(config);
    const cv = rvNumber(config?.metadata.resourceVersion);
    for (const key of ['config', 'initialize', 'history'] as const) {
      if (typeof ca[key] === 'string') nodes.push({ key, value: ca[key], version: cv });
    }

    if (leaderObj) {
      const la = annotationsOf(leaderObj);
      const lv = rvNumber(leaderObj.metadata.resourceVersion);
      if (la.leader && this.leaderValid()) nodes.push({ key: 'leader', value: la.leader, version: lv });
      const status: Record<string, unknown> = {};
      if (la.optime !== undefined && la.optime !== null) status.optime = la.optime;
      for (const [k, v] of Object.entries(la)) {
        if (k === 'optime' || k === 'failsafe' || RECORD_KEYS.includes(k as (typeof RECORD_KEYS)[number]) || typeof v !== 'string') continue;
        if (k === 'slots' || k === 'retain_slots') status[k] = parseJsonOr(v, undefined);
      }
      if (Object.keys(status).length) nodes.push({ key: 'status', value: JSON.stringify(status), version: lv });
      if (typeof la.failsafe === 'string') nodes.push({ key: 'failsafe', value: la.failsafe, version: lv });
    }

    const failover = this.kinds.get(this.names.failover);
    if (failover) {
      const fa = annotationsOf(failover);
      const v: Record<string, string> = {};
      for (const k of ['leader', 'member', 'scheduled_at']) if (typeof fa[k] === 'string') v[k] = fa[k]!;
      nodes.push({ key: 'failover', value: JSON.stringify(v), version: rvNumber(failover.metadata.resourceVersion) });
    }

    const sync = this.kinds.get(this.names.sync);
    const sa = annotationsOf(sync);
    if (sync && typeof sa.leader === 'string') {
      const quorum = sa.quorum !== undefined && sa.quorum !== null && /^\d+$/.test(String(sa.quorum)) ? Number(sa.quorum) : undefined;
      const value = { leader: sa.leader, sync_standby: sa.sync_standby ?? null, ...(quorum !== undefined ? { quorum } : {}) };
      nodes.push({ key: 'sync', value: JSON.stringify(value), version: rvNumber(sync.metadata.resourceVersion) });
    }

    for (const pod of this.pods.values()) {
      const status = annotationsOf(pod).status;
      if (typeof status === 'string' && status) nodes.push({ key: `members/${pod.metadata.name}`, value: status, version: rvNumber(pod.metadata.resourceVersion) });
    }
    return buildCluster(nodes);
  }

  /** Remember when the lock record last changed (Patroni's `_leader_observed_time`), and wake on changes and expiry. */
  private observeLeader(): void {
    const a = annotationsOf(this.kinds.get(this.names.leader));
    const record: Record<string, string> = {};
    for (const k of RECORD_KEYS) if (typeof a[k] === 'string') record[k] = a[k]!;
    const same = JSON.stringify(record) === JSON.stringify(this.observedRecord);
    if (same || (Object.keys(record).length === 0 && Object.keys(this.observedRecord).length === 0)) return;
    const ours = record.leader === this.o.name && this.o.name !== '';
    this.observedRecord = record;
    this.observedAt = this.o.clock.now();
    if (!ours) for (const w of this.leaderWatchers) w();
    this.armExpiry();
  }

  private recordTtlMs(): number {
    const t = Number(this.observedRecord.ttl);
    return (Number.isInteger(t) && t > 0 ? t : this.ttl) * 1000;
  }

  private leaderValid(): boolean {
    return this.observedAt !== null && this.observedAt + this.recordTtlMs() >= this.o.clock.now();
  }

  /** Followers race as soon as the lock expires, not at their next loop. */
  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    if (this.observedAt === null || !this.observedRecord.leader || this.leaderWatchers.size === 0) return;
    const delay = this.observedAt + this.recordTtlMs() - this.o.clock.now() + 50;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      for (const w of this.leaderWatchers) w();
    }, Math.max(0, delay));
    this.expiryTimer.unref();
  }

  // ---- the lock -------------------------------------------------------------------------------

  async refreshSession(): Promise<void> {
    this.start();
    // No sessions here: the lock lives as long as its holder rewrites it. A holder whose last write is
    // half a ttl old renews now (the HA loop also calls this to keep the lock during a slow promotion).
    if (this.held) {
      if (this.o.clock.now() - this.renewedAt >= (this.ttl * 1000) / 2 && !(await this.updateLeader(this.lastStatus))) {
        throw new DcsError('kubernetes: could not renew the leader lock');
      }
      return;
    }
    // Anyone else's "session" is its contact with the API server (what an etcd lease keepalive proves):
    // open watches, or else one read.
    const sent = this.o.clock.now();
    if (this.pods.disconnectedFor() > 0 || this.kinds.disconnectedFor() > 0) {
      const r = await this.o.client.request('GET', `${this.kindPath}/${encodeURIComponent(this.names.leader)}`, this.deadline());
      if (r.status !== 200 && r.status !== 404) throw new DcsError(`kubernetes: the API server answered HTTP ${r.status}: ${statusMessage(r.body)}`);
    }
    this.contactAt = sent;
  }

  /** The lock holder: its last lock write + ttl. Anyone else: its last contact with the API server + ttl. */
  sessionValidUntil(): number {
    return (this.held ? this.renewedAt : this.contactAt) + this.ttl * 1000;
  }

  async attemptToAcquireLeader(): Promise<boolean> {
    this.start();
    // As the contract says, acquiring is for a free lock only: never overwrite a holder we saw alive.
    if (!this.lockFreeAtLoad) await this.load();
    if (!this.lockFreeAtLoad) return false;
    const now = this.o.clock.wallNow().toISOString();
    const annotations: Annotations = { leader: this.o.name, ttl: String(this.ttl), renewTime: now, acquireTime: now, transitions: '0' };
    const prev = this.observedRecord;
    if (Object.keys(prev).length) {
      let transitions = Number.parseInt(prev.transitions ?? '', 10);
      if (!Number.isFinite(transitions)) transitions = 0;
      if (prev.leader !== this.o.name) transitions += 1;
      else annotations.acquireTime = prev.acquireTime || now;
      annotations.transitions = String(transitions);
    }
    const sent = this.o.clock.now();
    const ok = await this.writeKind(this.names.leader, annotations, this.leaderRvAtLoad, { subsets: this.s.useEndpoints ? [] : undefined, create: this.leaderRvAtLoad === null });
    if (!ok) {
      this.o.log.info('could not take out the leader lock (someone changed it first)');
      return false;
    }
    this.held = true;
    this.renewedAt = sent;
    await this.dropStaleLeaderLabels();
    return true;
  }

  async updateLeader(status: ClusterStatus): Promise<boolean> {
    this.start();
    this.lastStatus = status;
    const obj = this.kinds.get(this.names.leader);
    const a = annotationsOf(obj);
    if (obj && a.leader !== this.o.name) {
      this.held = false;
      return false;
    }
    const now = this.o.clock.wallNow().toISOString();
    const prev = Object.keys(a).length ? a : this.observedRecord;
    const annotations: Annotations = {
      leader: this.o.name,
      ttl: String(this.ttl),
      renewTime: now,
      acquireTime: prev.acquireTime || now,
      transitions: prev.transitions || '0',
    };
    if (status.optime) {
      annotations.optime = String(status.optime);
      annotations.slots = status.slots && Object.keys(status.slots).length ? JSON.stringify(status.slots) : null;
      const extra = status as Record<string, unknown>;
      if ('retain_slots' in extra) annotations.retain_slots = Array.isArray(extra.retain_slots) && extra.retain_slots.length ? JSON.stringify(extra.retain_slots) : null;
    }
    const sent = this.o.clock.now();
    const subsets = this.s.useEndpoints ? this.leaderSubsets(obj) : undefined;
    let ok = await this.writeKind(this.names.leader, annotations, obj?.metadata.resourceVersion ?? null, { subsets, create: !obj });
    if (!ok) {
      // A 409 re-read the object itself (the cache may lag): retry once if it is still ours.
      const fresh = this.kinds.get(this.names.leader);
      if (fresh && annotationsOf(fresh).leader === this.o.name && fresh.metadata.resourceVersion !== obj?.metadata.resourceVersion) {
        ok = await this.writeKind(this.names.leader, annotations, fresh.metadata.resourceVersion, { subsets: this.s.useEndpoints ? this.leaderSubsets(fresh) : undefined, create: false });
      }
    }
    this.held = ok;
    if (!ok) return false;
    this.renewedAt = sent;
    await this.dropStaleLeaderLabels();
    return true;
  }

  async deleteLeader(): Promise<boolean> {
    this.start();
    const obj = this.kinds.get(this.names.leader);
    this.held = false;
    this.renewedAt = Number.NEGATIVE_INFINITY;
    if (!obj || annotationsOf(obj).leader !== this.o.name) return false;
    const annotations: Annotations = { leader: null };
    if (this.lastStatus.optime) annotations.optime = String(this.lastStatus.optime);
    return this.writeKind(this.names.leader, annotations, obj.metadata.resourceVersion, { subsets: this.s.useEndpoints ? [] : undefined, create: false });
  }

  /** Endpoints mode: the subsets pointing at us, or undefined when they already do (Patroni's subsets_changed). */
  private leaderSubsets(obj: KubeObject | undefined): unknown[] | undefined {
    const pod = this.pods.get(this.o.name);
    const ip = this.s.podIp ?? (pod?.status?.podIP as string | undefined);
    if (!ip) return undefined;
    const want = this.s.ports.map((p) => ({ port: p.port, ...(p.name ? { name: p.name } : {}), protocol: p.protocol ?? 'TCP' }));
    const cur = (obj?.subsets ?? []) as Array<{ addresses?: Array<{ ip: string }>; ports?: Array<{ port: number; name?: string; protocol?: string }> }>;
    const same =
      cur.length === 1 &&
      cur[0]!.addresses?.length === 1 &&
      cur[0]!.addresses[0]!.ip === ip &&
      JSON.stringify((cur[0]!.ports ?? []).map((p) => [p.name ?? '', p.port, p.protocol ?? 'TCP']).sort()) === JSON.stringify(want.map((p) => [p.name ?? '', p.port, p.protocol]).sort());
    if (same) return undefined;
    const targetRef = pod ? { kind: 'Pod', namespace: this.s.namespace, name: this.o.name, uid: pod.metadata.uid, resourceVersion: pod.metadata.resourceVersion } : undefined;
    const address = { ip, ...(pod?.spec?.hostname ? { hostname: pod.spec.hostname } : {}), ...(pod?.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}), ...(targetRef ? { targetRef } : {}) };
    return [{ addresses: [address], ports: want }];
  }

  /** We hold the lock: no other pod may carry the leader's role label (a dead primary cannot remove its own). */
  private async dropStaleLeaderLabels(): Promise<void> {
    const leaderValues = new Set([this.s.leaderLabelValue, this.s.standbyLeaderLabelValue]);
    for (const pod of this.pods.values()) {
      if (pod.metadata.name === this.o.name) continue;
      const v = (pod.metadata.labels ?? {})[this.s.roleLabel];
      if (!leaderValues.has(v)) continue;
      const body = { metadata: { resourceVersion: pod.metadata.resourceVersion, labels: { [this.s.roleLabel]: null } } };
      try {
        const r = await this.o.client.request<KubeObject>('PATCH', `${this.podPath}/${encodeURIComponent(pod.metadata.name)}`, this.deadline(), body, SM_PATCH);
        if (r.status === 200) {
          this.pods.set(r.body);
          this.o.log.info({ pod: pod.metadata.name }, `took the ${this.s.roleLabel}=${v} label off the former leader's pod`);
        }
      } catch (e) {
        this.o.log.warn({ pod: pod.metadata.name, err: errorMessage(e) }, 'could not take the leader label off a former leader pod');
      }
    }
  }

  /** Failsafe mode: the topology lives on the leader object (Patroni's `failsafe` annotation); only its holder writes it. */
  async setFailsafe(value: Readonly<Record<string, string>>): Promise<boolean> {
    this.start();
    const obj = this.kinds.get(this.names.leader);
    if (!obj || annotationsOf(obj).leader !== this.o.name) return false;
    return this.writeKind(this.names.leader, { failsafe: Object.keys(value).length ? JSON.stringify(value) : null }, obj.metadata.resourceVersion, { create: false });
  }

  // ---- members --------------------------------------------------------------------------------

  async touchMember(data: MemberData): Promise<boolean> {
    this.start();
    if (this.needConfigService) await this.createConfigService();
    for (let attempt = 0; attempt < 2; attempt++) {
      const pod = this.pods.get(this.o.name);
      const role = this.roleLabelValue(data);
      const status = serializeMember(data);
      const labels = (pod?.metadata.labels ?? {}) as Record<string, string>;
      if (pod && (labels[this.s.roleLabel] ?? null) === role && annotationsOf(pod).status === status) return true;
      const body = { metadata: { ...(pod ? { resourceVersion: pod.metadata.resourceVersion } : {}), labels: { [this.s.roleLabel]: role }, annotations: { status } } };
      const r = await this.o.client.request<KubeObject>('PATCH', `${this.podPath}/${encodeURIComponent(this.o.name)}`, this.deadline(), body, SM_PATCH);
      if (r.status === 200) {
        this.pods.set(r.body);
        return true;
      }
      if (r.status === 404) {
        this.o.log.error(`kubernetes: pod ${this.o.name} not found in namespace ${this.s.namespace}: on the Kubernetes store a member is its pod (name = pod name)`);
        return false;
      }
      if (r.status !== 409) throw new DcsError(`kubernetes: updating pod ${this.o.name} failed: HTTP ${r.status}: ${statusMessage(r.body)}`);
      // Someone else wrote our pod (a new leader took our label off, the kubelet): re-read and decide again.
      const fresh = await this.o.client.request<KubeObject>('GET', `${this.podPath}/${encodeURIComponent(this.o.name)}`, this.deadline());
      if (fresh.status === 200) this.pods.set(fresh.body);
    }
    return false;
  }

  /** Patroni's touch_member with 4.x's configurable values: the leader label only while our lock is valid. */
  private roleLabelValue(data: MemberData): string | null {
    const lockValid = this.held && this.o.clock.now() < this.sessionValidUntil();
    if (lockValid && (data.role === 'master' || data.role === 'primary')) return this.s.leaderLabelValue;
    if (lockValid && data.role === 'standby_leader') return this.s.standbyLeaderLabelValue;
    if (data.state === 'running' && data.role !== 'master' && data.role !== 'primary' && data.role !== 'standby_leader') return this.s.followerLabelValue;
    return null;
  }

  // ---- config, initialize, history --------------------------------------------------------------

  async initialize(sysid: string, create: boolean): Promise<boolean> {
    this.start();
    const obj = this.kinds.get(this.names.config);
    if (!create) return this.writeKind(this.names.config, { initialize: sysid }, null, { create: !obj });
    if (obj && typeof annotationsOf(obj).initialize === 'string') return false;
    return this.writeKind(this.names.config, { initialize: sysid }, obj?.metadata.resourceVersion ?? null, { create: !obj });
  }

  async cancelInitialization(): Promise<void> {
    this.start();
    if (!this.kinds.get(this.names.config)) return;
    await this.writeKind(this.names.config, { initialize: null }, null, { create: false });
  }

  async setConfig(value: Record<string, unknown>, version: number | null): Promise<boolean> {
    this.start();
    const obj = this.kinds.get(this.names.config);
    if (version === null) {
      if (obj && typeof annotationsOf(obj).config === 'string') return false;
      return this.writeKind(this.names.config, { config: serializeConfig(value) }, obj?.metadata.resourceVersion ?? null, { create: !obj });
    }
    return this.writeKind(this.names.config, { config: serializeConfig(value) }, String(version), { create: false });
  }

  async setHistory(history: readonly HistoryEntry[]): Promise<boolean> {
    this.start();
    return this.writeKind(this.names.config, { history: serializeHistory(history) }, null, { create: !this.kinds.get(this.names.config) });
  }

  // ---- failover and sync ----------------------------------------------------------------------

  async setFailover(value: { leader?: string; member?: string; scheduled_at?: string }, version: number | null): Promise<boolean> {
    this.start();
    const annotations: Annotations = { leader: value.leader || null, member: value.member || null, scheduled_at: value.scheduled_at || null };
    const obj = this.kinds.get(this.names.failover);
    if (version !== null) return this.writeKind(this.names.failover, annotations, String(version), { create: false });
    const a = annotationsOf(obj);
    if (obj && (a.leader || a.member)) return false;
    return this.writeKind(this.names.failover, annotations, obj?.metadata.resourceVersion ?? null, { create: !obj });
  }

  async deleteFailover(version?: number): Promise<boolean> {
    this.start();
    const obj = this.kinds.get(this.names.failover);
    if (!obj) return true;
    const rv = version !== undefined ? String(version) : null;
    return this.writeKind(this.names.failover, { leader: null, member: null, scheduled_at: null }, rv, { create: false });
  }

  async setSync(value: SyncValue, version: number | null): Promise<boolean> {
    this.start();
    const annotations: Annotations = { leader: value.leader, sync_standby: value.sync_standby || null, quorum: value.quorum !== undefined ? String(value.quorum) : null };
    const obj = this.kinds.get(this.names.sync);
    if (version !== null) return this.writeKind(this.names.sync, annotations, String(version), { create: false });
    if (obj && annotationsOf(obj).leader) return false;
    return this.writeKind(this.names.sync, annotations, obj?.metadata.resourceVersion ?? null, { create: !obj });
  }

  async deleteSync(): Promise<boolean> {
    this.start();
    if (!this.kinds.get(this.names.sync)) return true;
    return this.writeKind(this.names.sync, { leader: null, sync_standby: null, quorum: null }, null, { create: false });
  }

  // ---- plumbing -------------------------------------------------------------------------------

  setTimeouts(opts: { ttl: number; retryTimeout: number }): void {
    this.ttl = opts.ttl;
    this.retryTimeoutMs = opts.retryTimeout * 1000;
  }

  watchLeader(onChange: () => void): () => void {
    this.start();
    this.leaderWatchers.add(onChange);
    this.armExpiry();
    return () => {
      this.leaderWatchers.delete(onChange);
    };
  }

  async close(): Promise<void> {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.leaderWatchers.clear();
    await Promise.all([this.pods.stop(), this.kinds.stop()]);
  }

  /** ctl remove: every object of the kind under our labels (Patroni's delete_cluster). */
  async deleteCluster(): Promise<void> {
    const r = await this.o.client.request('DELETE', `${this.kindPath}?labelSelector=${encodeURIComponent(this.selector)}`, this.deadline());
    if (r.status >= 300) throw new DcsError(`kubernetes: deleting the cluster's objects failed: HTTP ${r.status}: ${statusMessage(r.body)}`);
  }

  private deadline(): number {
    return Date.now() + this.retryTimeoutMs;
  }

  private async getKind(name: string): Promise<KubeObject | null> {
    const r = await this.o.client.request<KubeObject>('GET', `${this.kindPath}/${encodeURIComponent(name)}`, this.deadline());
    if (r.status === 404) return null;
    if (r.status !== 200) throw new DcsError(`kubernetes: reading ${name} failed: HTTP ${r.status}: ${statusMessage(r.body)}`);
    this.kinds.set(r.body);
    return r.body;
  }

  /**
   * Create the object, or strategic-merge-patch its annotations (null deletes one) — conditioned on
   * `rv` when given. false: a lost race (409 Conflict or AlreadyExists, 404 on a conditional patch);
   * a 409 also refreshes the cached object so the next attempt starts from the truth.
   */
  private async writeKind(name: string, annotations: Annotations, rv: string | null, o: { create: boolean; subsets?: unknown[] | undefined }): Promise<boolean> {
    const path = o.create ? this.kindPath : `${this.kindPath}/${encodeURIComponent(name)}`;
    const metadata: Record<string, unknown> = { name, namespace: this.s.namespace, labels: this.labels };
    if (o.create) {
      metadata.annotations = Object.fromEntries(Object.entries(annotations).filter(([, v]) => v !== null));
      if (name === this.names.config) await this.createConfigService();
    } else {
      metadata.annotations = annotations;
      if (rv !== null) metadata.resourceVersion = rv;
    }
    const body: Record<string, unknown> = { metadata };
    if (this.s.useEndpoints && o.subsets !== undefined) body.subsets = o.subsets;
    const r = await this.o.client.request<KubeObject>(o.create ? 'POST' : 'PATCH', path, this.deadline(), body, o.create ? 'application/json' : SM_PATCH);
    if (r.status === 200 || r.status === 201) {
      this.kinds.set(r.body);
      return true;
    }
    if (r.status === 409 || r.status === 404) {
      if (r.status === 409) await this.getKind(name).catch(() => undefined);
      return false;
    }
    if (r.status === 403) this.o.log.error({ object: name }, `kubernetes: permission denied: ${statusMessage(r.body)}`);
    throw new DcsError(`kubernetes: writing ${name} failed: HTTP ${r.status}: ${statusMessage(r.body)}`);
  }

  /** Endpoints mode: the headless `<scope>-config` Service keeps `<scope>-config` from being cleaned up. */
  private async createConfigService(): Promise<void> {
    if (!this.s.useEndpoints) return;
    const body = { metadata: { name: this.names.config, namespace: this.s.namespace, labels: this.labels }, spec: { clusterIP: 'None' } };
    try {
      const r = await this.o.client.request('POST', `/api/v1/namespaces/${encodeURIComponent(this.s.namespace)}/services`, this.deadline(), body);
      if (r.status === 201 || r.status === 409 || r.status === 403) this.needConfigService = false;
    } catch (e) {
      this.o.log.warn({ err: errorMessage(e) }, 'could not create the headless config Service');
    }
  }
}

function parseJsonOr<T>(text: string, fallback: T): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}
