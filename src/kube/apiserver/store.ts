/**
 * The object store: every object of every type, one global resourceVersion counter (like etcd's
 * revision), and a bounded history of change events for watches to resume from. All operations are
 * synchronous, so a write, its event and its delivery to watchers happen in one step and in RV order.
 *
 * Semantics follow the generic apiserver registry (kube-api-subset.md §5): preconditions → 409,
 * status subresources, generation, finalizers + deletionTimestamp, background/orphan garbage
 * collection by ownerReferences, namespaces that must exist and terminate with their contents, CRDs
 * that register and unregister their custom resource types.
 */
import { randomUUID } from 'node:crypto';
import { applyDefaults } from './defaults.js';
import { ApiError, errors, type StatusCause, type Target } from './errors.js';
import { clone, deepEqual, isObject, metaOf, stringMap, type Json, type JsonObject } from './json.js';
import { apiVersionOf, typeKey, validateCrd, type Registry, type ResourceType } from './registry.js';
import { matchesFields, matchesLabels, type FieldSelector, type LabelSelector } from './selectors.js';
import { validateMetadata, validateName, validateUpdate } from './validate.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  /** typeKey of the object's type */
  key: string;
  namespace: string;
  /** the object after the change (for DELETED: the last state, stamped with the deletion RV) */
  object: JsonObject;
  /** the object before the change (MODIFIED only), for selector transitions */
  prev?: JsonObject;
}

export interface Filter {
  namespace?: string;
  labels?: LabelSelector;
  fields?: FieldSelector;
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
}

export interface DeleteResult {
  object: JsonObject;
  /** false when finalizers keep the object (it now carries deletionTimestamp) */
  removed: boolean;
}

export interface StoreSnapshot {
  resourceVersion: number;
  objects: JsonObject[];
}

export interface StoreOptions {
  registry: Registry;
  /** change events kept for watches to resume from; older resourceVersions get 410 Gone */
  historyLimit?: number;
  now?: () => Date;
  /** first resourceVersion is this + 1 */
  initialResourceVersion?: number;
}

const nsKey = (namespace: string, name: string): string => `${namespace}/${name}`;
const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const ownerUids = (o: JsonObject): string[] => {
  const refs = metaOf(o).ownerReferences;
  return Array.isArray(refs) ? refs.filter(isObject).map((r) => String(r.uid)) : [];
};

export function objectMatches(o: JsonObject, f: Filter): boolean {
  const meta = isObject(o.metadata) ? o.metadata : {};
  if (f.namespace !== undefined && (meta.namespace ?? '') !== f.namespace) return false;
  if (f.labels && !matchesLabels(f.labels, stringMap(meta.labels))) return false;
  if (f.fields && !matchesFields(f.fields, o)) return false;
  return true;
}

/** Drop metadata members that are empty, as Go's omitempty would, so `labels: {}` and no labels compare equal. */
function normalizeMeta(meta: JsonObject): void {
  for (const k of ['labels', 'annotations', 'finalizers', 'ownerReferences', 'managedFields']) {
    const v = meta[k];
    if (v === null || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0)) delete meta[k];
  }
  delete meta.selfLink;
  delete meta.managedFields;
}

/** The part of an object whose change bumps metadata.generation. */
function specPart(t: ResourceType, o: JsonObject): JsonObject {
  const out: JsonObject = { ...o };
  delete out.metadata;
  if (t.statusSubresource) delete out.status;
  return out;
}

export class Store {
  readonly registry: Registry;
  private rv: number;
  /** events with rv <= compactedRv are no longer retained */
  private compactedRv: number;
  private readonly history: StoreEvent[] = [];
  private readonly historyLimit: number;
  private readonly objects = new Map<string, Map<string, JsonObject>>();
  private readonly byUid = new Map<string, { key: string; id: string }>();
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly now: () => Date;
  private nextClusterIP = 10;

  constructor(opts: StoreOptions) {
    this.registry = opts.registry;
    this.rv = opts.initialResourceVersion ?? 1000;
    this.compactedRv = this.rv;
    this.historyLimit = opts.historyLimit ?? 2000;
    this.now = opts.now ?? ((): Date => new Date());
  }

  get resourceVersion(): number {
    return this.rv;
  }

  get oldestResumableVersion(): number {
    return this.compactedRv;
  }

  subscribe(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events after `rv` of one type, in order; undefined when some of them are no longer retained. */
  eventsSince(rv: number, key: string): StoreEvent[] | undefined {
    if (rv < this.compactedRv) return undefined;
    return this.history.filter((e) => e.rv > rv && e.key === key);
  }

  /** Forget all history: every resume from an older resourceVersion now gets 410 Gone. */
  compact(): void {
    this.history.length = 0;
    this.compactedRv = this.rv;
  }

  // ---- reads ----

  private table(t: ResourceType): Map<string, JsonObject> {
    const key = typeKey(t);
    let m = this.objects.get(key);
    if (!m) this.objects.set(key, (m = new Map()));
    return m;
  }

  private target(t: ResourceType, name?: string): Target {
    return name === undefined ? { group: t.group, plural: t.plural } : { group: t.group, plural: t.plural, name };
  }

  private existing(t: ResourceType, namespace: string, name: string): JsonObject {
    const o = this.table(t).get(nsKey(namespace, name));
    if (!o) throw errors.notFound(this.target(t, name));
    return o;
  }

  get(t: ResourceType, namespace: string, name: string): JsonObject {
    return clone(this.existing(t, namespace, name));
  }

  list(t: ResourceType, filter: Filter): { resourceVersion: number; items: JsonObject[] } {
    const items = [...this.table(t).values()].filter((o) => objectMatches(o, filter));
    items.sort((a, b) => {
      const ma = metaOf(a);
      const mb = metaOf(b);
      const ka = `${String(ma.namespace ?? '')}/${String(ma.name)}`;
      const kb = `${String(mb.namespace ?? '')}/${String(mb.name)}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    return { resourceVersion: this.rv, items: items.map(clone) };
  }

  // ---- writes ----

  private emit(t: ResourceType, type: EventType, object: JsonObject, prev?: JsonObject): void {
    const meta = metaOf(object);
    const e: StoreEvent = { rv: this.rv, type, key: typeKey(t), namespace: String(meta.namespace ?? ''), object: clone(object) };
    if (prev) e.prev = clone(prev);
    this.history.push(e);
    while (this.history.length > this.historyLimit) this.compactedRv = this.history.shift()!.rv;
    for (const l of [...this.listeners]) l(e);
  }

  private put(t: ResourceType, o: JsonObject, type: 'ADDED' | 'MODIFIED', prev?: JsonObject): JsonObject {
    this.rv++;
    const meta = metaOf(o);
    meta.resourceVersion = String(this.rv);
    const id = nsKey(String(meta.namespace ?? ''), String(meta.name));
    this.table(t).set(id, o);
    this.byUid.set(String(meta.uid), { key: typeKey(t), id });
    this.emit(t, type, o, prev);
    return clone(o);
  }

  private checkNamespace(t: ResourceType, namespace: string, name: string, creating: boolean): void {
    if (!t.namespaced) return;
    const nsType = this.registry.find('', 'v1', 'namespaces')!;
    const ns = this.table(nsType).get(nsKey('', namespace));
    if (!ns) throw errors.notFound({ group: '', plural: 'namespaces', name: namespace });
    if (creating && metaOf(ns).deletionTimestamp) {
      throw errors.forbidden(this.target(t, name), `unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  private invalid(t: ResourceType, name: string, causes: StatusCause[]): ApiError {
    return errors.invalid(t.kind, this.target(t, name), causes);
  }

  private allocateClusterIP = (): string => {
    const n = this.nextClusterIP++;
    return `10.96.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
  };

  /** POST: `body` is the decoded request; `namespace` comes from the URL ('' for cluster-scoped types). */
  create(t: ResourceType, namespace: string, body: Json): JsonObject {
    if (!isObject(body)) throw errors.badRequest('the body of the request was not a JSON object');
    const o = clone(body);
    this.checkKind(t, o);
    const meta = metaOf(o);
    if (t.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace;
    } else delete meta.namespace;
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string' && meta.generateName) {
      meta.name = this.generateName(t, namespace, meta.generateName);
    }
    if (typeof meta.name !== 'string' || meta.name === '') {
      throw this.invalid(t, '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
    }
    const name = meta.name;
    this.checkNamespace(t, namespace, name, true);
    const causes = [...validateName(t.kind, name), ...validateMetadata(meta)];
    if (causes.length) throw this.invalid(t, name, causes);
    if (this.table(t).has(nsKey(namespace, name))) throw errors.alreadyExists(this.target(t, name));
    // The harness plays kubelet, so a Pod may be created with its status; other kinds with a status
    // subresource start with none (their controllers write it), as upstream PrepareForCreate does.
    if (t.statusSubresource && t.kind !== 'Pod') delete o.status;
    for (const k of ['resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation']) delete meta[k];
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339(this.now());
    if (t.generation) meta.generation = 1;
    o.apiVersion = apiVersionOf(t.group, t.versions[0]!);
    o.kind = t.kind;
    applyDefaults(t.kind, o, { allocateClusterIP: this.allocateClusterIP, create: true });
    normalizeMeta(meta);
    if (t.kind === 'CustomResourceDefinition') this.prepareCrd(t, o);
    const created = this.put(t, o, 'ADDED');
    this.afterWrite(t, o);
    if (ownerUids(o).length) setImmediate(() => this.collectIfOrphaned(t, namespace, name));
    return created;
  }

  private generateName(t: ResourceType, namespace: string, prefix: string): string {
    const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
    for (let attempt = 0; attempt < 100; attempt++) {
      let s = prefix;
      for (let i = 0; i < 5; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
      if (!this.table(t).has(nsKey(namespace, s))) return s;
    }
    throw errors.alreadyExists(this.target(t, prefix));
  }

  private checkKind(t: ResourceType, o: JsonObject): void {
    if (typeof o.kind === 'string' && o.kind !== '' && o.kind !== t.kind) {
      throw errors.badRequest(`the kind of the provided object (${o.kind}) does not match the kind of the resource (${t.kind})`);
    }
  }

  /**
   * PUT (and the second half of PATCH): `candidate` replaces the object, subject to the RV precondition.
   * `subresource: 'status'` changes only status; a main write keeps a status subresource's status.
   * `verb` 'update' requires an RV for types without unconditional update; patches never do.
   */
  update(t: ResourceType, namespace: string, name: string, candidate: Json, opts: { subresource?: 'status'; verb: 'update' | 'patch' }): JsonObject {
    if (!isObject(candidate)) throw errors.badRequest('the body of the request was not a JSON object');
    const existing = this.table(t).get(nsKey(namespace, name));
    if (!existing) {
      if (opts.verb === 'update' && t.createOnUpdate && !opts.subresource) return this.create(t, namespace, candidate);
      throw errors.notFound(this.target(t, name));
    }
    this.checkKind(t, candidate);
    const inMeta = isObject(candidate.metadata) ? candidate.metadata : {};
    if (inMeta.name !== undefined && inMeta.name !== name) {
      throw errors.badRequest(`the name of the object (${String(inMeta.name)}) does not match the name on the URL (${name})`);
    }
    if (t.namespaced && inMeta.namespace !== undefined && inMeta.namespace !== '' && inMeta.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const oldMeta = metaOf(existing);
    const rvIn = inMeta.resourceVersion;
    if (rvIn !== undefined && rvIn !== null && rvIn !== '') {
      if (String(rvIn) !== oldMeta.resourceVersion) throw errors.conflict(this.target(t, name));
    } else if (opts.verb === 'update' && !t.unconditionalUpdate) {
      throw this.invalid(t, name, [{ reason: 'FieldValueInvalid', field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update' }]);
    }
    let o: JsonObject;
    if (opts.subresource === 'status') {
      o = clone(existing);
      if (candidate.status === undefined) delete o.status;
      else o.status = clone(candidate.status);
    } else {
      o = clone(candidate);
      if (t.statusSubresource) {
        if (existing.status === undefined) delete o.status;
        else o.status = clone(existing.status);
      }
    }
    const meta = metaOf(o);
    meta.name = name;
    if (t.namespaced) meta.namespace = namespace;
    else delete meta.namespace;
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'resourceVersion']) {
      if (oldMeta[k] === undefined) delete meta[k];
      else meta[k] = oldMeta[k]!;
    }
    o.apiVersion = existing.apiVersion ?? null;
    o.kind = t.kind;
    applyDefaults(t.kind, o, { allocateClusterIP: this.allocateClusterIP, create: false });
    normalizeMeta(meta);
    const causes = validateMetadata(meta);
    if (oldMeta.deletionTimestamp) {
      const before = new Set((Array.isArray(oldMeta.finalizers) ? oldMeta.finalizers : []).map(String));
      const added = (Array.isArray(meta.finalizers) ? meta.finalizers : []).map(String).filter((f) => !before.has(f));
      if (added.length) causes.push({ reason: 'FieldValueForbidden', field: 'metadata.finalizers', message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"${added.join('", "')}"}` });
    }
    causes.push(...validateUpdate(t.kind, existing, o));
    if (causes.length) throw this.invalid(t, name, causes);
    if (t.kind === 'CustomResourceDefinition') this.prepareCrd(t, o);
    if (t.generation && !deepEqual(specPart(t, existing), specPart(t, o))) meta.generation = Number(oldMeta.generation ?? 0) + 1;
    if (deepEqual(o, existing)) return clone(existing);
    if (oldMeta.deletionTimestamp && !(Array.isArray(meta.finalizers) && meta.finalizers.length)) {
      return this.remove(t, o);
    }
    const updated = this.put(t, o, 'MODIFIED', existing);
    this.afterWrite(t, o);
    return updated;
  }

  /** Side effects of a stored write: CRDs (re)register their type. */
  private afterWrite(t: ResourceType, o: JsonObject): void {
    if (t.kind === 'CustomResourceDefinition') this.registry.registerCrd(o);
  }

  /** Validates a CRD and fills its status as the apiextensions controllers would. */
  private prepareCrd(t: ResourceType, o: JsonObject): void {
    const name = String(metaOf(o).name);
    const problems = validateCrd(o);
    if (problems.length) throw this.invalid(t, name, problems.map((p) => ({ reason: 'FieldValueInvalid', field: p.field, message: p.message })));
    const spec = o.spec as JsonObject;
    const names = clone(spec.names as JsonObject);
    if (typeof names.singular !== 'string' || !names.singular) names.singular = String(names.kind).toLowerCase();
    if (typeof names.listKind !== 'string' || !names.listKind) names.listKind = `${String(names.kind)}List`;
    const ts = rfc3339(this.now());
    const versions = (spec.versions as Json[]).filter(isObject);
    const storage = versions.find((v) => v.storage === true);
    const prev = isObject(o.status) ? o.status : {};
    const prevStored = Array.isArray(prev.storedVersions) ? prev.storedVersions.map(String) : [];
    const stored = [...new Set([...prevStored, String(storage?.name)])];
    const cond = (type: string, reason: string, message: string): JsonObject => {
      const old = (Array.isArray(prev.conditions) ? prev.conditions : []).filter(isObject).find((c) => c.type === type && c.status === 'True');
      return { type, status: 'True', lastTransitionTime: (old?.lastTransitionTime as string | undefined) ?? ts, reason, message };
    };
    o.status = {
      conditions: [cond('NamesAccepted', 'NoConflicts', 'no conflicts found'), cond('Established', 'InitialNamesAccepted', 'the initial names have been accepted')],
      acceptedNames: names,
      storedVersions: stored,
    };
  }

  /** DELETE of one object. */
  delete(t: ResourceType, namespace: string, name: string, opts: DeleteOptions = {}): DeleteResult {
    const existing = this.existing(t, namespace, name);
    const meta = metaOf(existing);
    const pre = opts.preconditions;
    if (pre?.uid !== undefined && pre.uid !== meta.uid) {
      throw errors.conflict(this.target(t, name), `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(meta.uid)}`);
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== meta.resourceVersion) {
      throw errors.conflict(
        this.target(t, name),
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(meta.resourceVersion)}`,
      );
    }
    if (opts.propagationPolicy === 'Orphan') this.orphanDependents(String(meta.uid));
    if (t.kind === 'Namespace') return this.deleteNamespace(t, existing);
    const finalizers = Array.isArray(meta.finalizers) ? meta.finalizers : [];
    if (finalizers.length > 0) {
      if (meta.deletionTimestamp) return { object: clone(existing), removed: false };
      const o = clone(existing);
      const m = metaOf(o);
      m.deletionTimestamp = rfc3339(this.now());
      m.deletionGracePeriodSeconds = 0;
      if (typeof m.generation === 'number') m.generation += 1;
      return { object: this.put(t, o, 'MODIFIED', existing), removed: false };
    }
    return { object: this.remove(t, clone(existing)), removed: true };
  }

  deleteCollection(t: ResourceType, filter: Filter, opts: DeleteOptions = {}): JsonObject[] {
    const out: JsonObject[] = [];
    for (const o of this.list(t, filter).items) {
      const meta = metaOf(o);
      try {
        out.push(this.delete(t, String(meta.namespace ?? ''), String(meta.name), { propagationPolicy: opts.propagationPolicy ?? 'Background' }).object);
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return out;
  }

  /** Removes `o` for good: DELETED event at a new RV, then the consequences (GC, CRD and namespace cleanup). */
  private remove(t: ResourceType, o: JsonObject): JsonObject {
    const meta = metaOf(o);
    const namespace = String(meta.namespace ?? '');
    const id = nsKey(namespace, String(meta.name));
    this.table(t).delete(id);
    this.byUid.delete(String(meta.uid));
    this.rv++;
    meta.resourceVersion = String(this.rv);
    this.emit(t, 'DELETED', o);
    if (t.kind === 'CustomResourceDefinition') this.dropCustomType(String(meta.name));
    this.collectDependents(String(meta.uid));
    if (namespace) this.finishNamespaceIfEmpty(namespace);
    return clone(o);
  }

  private dropCustomType(crdName: string): void {
    const ct = this.registry.byCrd(crdName);
    if (!ct) return;
    for (const o of [...this.table(ct).values()]) this.remove(ct, clone(o));
    this.registry.unregisterCrd(crdName);
    this.objects.delete(typeKey(ct));
  }

  /** Every stored object whose ownerReferences name `uid`. */
  private dependentsOf(uid: string): { t: ResourceType; o: JsonObject }[] {
    const out: { t: ResourceType; o: JsonObject }[] = [];
    for (const [key, table] of this.objects) {
      const t = this.registry.byKey(key);
      if (!t) continue;
      for (const o of table.values()) if (ownerUids(o).includes(uid)) out.push({ t, o });
    }
    return out;
  }

  /** Background GC: a dependent goes when none of its owners exists any more; otherwise it only loses the dangling reference. */
  private collectDependents(uid: string): void {
    for (const { t, o } of this.dependentsOf(uid)) {
      const meta = metaOf(o);
      const ns = String(meta.namespace ?? '');
      const name = String(meta.name);
      if (!this.table(t).has(nsKey(ns, name))) continue;
      const alive = ownerUids(o).filter((u) => u !== uid && this.byUid.has(u));
      if (alive.length === 0) {
        this.delete(t, ns, name, { propagationPolicy: 'Background' });
      } else {
        this.stripOwner(t, o, uid);
      }
    }
  }

  private stripOwner(t: ResourceType, o: JsonObject, uid: string): void {
    const next = clone(o);
    const m = metaOf(next);
    m.ownerReferences = (m.ownerReferences as Json[]).filter((r) => !(isObject(r) && String(r.uid) === uid));
    normalizeMeta(m);
    this.put(t, next, 'MODIFIED', o);
  }

  private orphanDependents(uid: string): void {
    for (const { t, o } of this.dependentsOf(uid)) this.stripOwner(t, o, uid);
  }

  /** A dependent created with owners that do not exist is collected (upstream GC's "dangling owner" case). */
  private collectIfOrphaned(t: ResourceType, namespace: string, name: string): void {
    const o = this.table(t).get(nsKey(namespace, name));
    if (!o) return;
    const uids = ownerUids(o);
    if (uids.length && uids.every((u) => !this.byUid.has(u))) {
      try {
        this.delete(t, namespace, name, { propagationPolicy: 'Background' });
      } catch {
        // gone meanwhile
      }
    }
  }

  /** A namespace terminates: it is marked, its contents deleted, and it goes once empty. */
  private deleteNamespace(t: ResourceType, existing: JsonObject): DeleteResult {
    const name = String(metaOf(existing).name);
    let current = existing;
    if (!metaOf(existing).deletionTimestamp) {
      const o = clone(existing);
      metaOf(o).deletionTimestamp = rfc3339(this.now());
      metaOf(o).deletionGracePeriodSeconds = 0;
      o.status = { ...(isObject(o.status) ? o.status : {}), phase: 'Terminating' };
      this.put(t, o, 'MODIFIED', existing);
      current = o;
      for (const ct of this.registry.all().filter((x) => x.namespaced)) {
        for (const obj of [...this.table(ct).values()]) {
          const m = metaOf(obj);
          if (m.namespace === name && this.table(ct).has(nsKey(name, String(m.name)))) this.delete(ct, name, String(m.name), { propagationPolicy: 'Background' });
        }
      }
      this.finishNamespaceIfEmpty(name);
    }
    const gone = !this.table(t).has(nsKey('', name));
    return { object: clone(gone ? current : this.table(t).get(nsKey('', name))!), removed: gone };
  }

  private finishNamespaceIfEmpty(namespace: string): void {
    const nsType = this.registry.find('', 'v1', 'namespaces')!;
    const ns = this.table(nsType).get(nsKey('', namespace));
    if (!ns || !metaOf(ns).deletionTimestamp) return;
    for (const ct of this.registry.all().filter((x) => x.namespaced)) {
      for (const o of this.table(ct).values()) if (metaOf(o).namespace === namespace) return;
    }
    this.remove(nsType, clone(ns));
  }

  // ---- persistence ----

  snapshot(): StoreSnapshot {
    const objects: JsonObject[] = [];
    const crds = this.table(this.registry.find('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!);
    objects.push(...[...crds.values()].map(clone));
    for (const [key, table] of this.objects) {
      if (key === 'apiextensions.k8s.io/customresourcedefinitions') continue;
      for (const o of table.values()) objects.push(clone(o));
    }
    return { resourceVersion: this.rv, objects };
  }

  /** Loads a snapshot into an empty store (CRDs first, so their custom resources have a type). */
  restore(s: StoreSnapshot): void {
    for (const o of s.objects) {
      const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', String(o.apiVersion)];
      const t = this.registry.all().find((x) => x.group === group && x.kind === o.kind && x.versions.includes(version!));
      if (!t) continue;
      const meta = metaOf(o);
      const id = nsKey(String(meta.namespace ?? ''), String(meta.name));
      this.table(t).set(id, clone(o));
      this.byUid.set(String(meta.uid), { key: typeKey(t), id });
      if (t.kind === 'CustomResourceDefinition') this.registry.registerCrd(o);
    }
    this.rv = Math.max(this.rv, s.resourceVersion);
    this.compact();
  }

  /** Creates an object unless it exists (for seeding the `default` namespace and fixtures). */
  ensure(t: ResourceType, namespace: string, body: JsonObject): void {
    const name = String(metaOf(clone(body)).name);
    if (!this.table(t).has(nsKey(namespace, name))) this.create(t, namespace, body);
  }
}
