/** The API server's object store without HTTP: versioning, preconditions, generation, status, finalizers, GC, CRDs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../src/kube/apiserver/errors.js';
import type { JsonObject } from '../../src/kube/apiserver/json.js';
import { Registry, typeKey, type ResourceType } from '../../src/kube/apiserver/registry.js';
import { Store, type StoreEvent } from '../../src/kube/apiserver/store.js';

function setup(): { store: Store; registry: Registry; type(group: string, plural: string, version?: string): ResourceType; events: StoreEvent[] } {
  const registry = new Registry();
  const store = new Store({ registry, now: () => new Date('2026-11-25T01:02:03.456Z') });
  const type = (group: string, plural: string, version = 'v1'): ResourceType => {
    const t = registry.find(group, version, plural);
    assert.ok(t, `${group}/${plural}`);
    return t;
  };
  store.create(type('', 'namespaces'), '', { metadata: { name: 'default' } });
  const events: StoreEvent[] = [];
  store.subscribe((e) => events.push(e));
  return { store, registry, type, events };
}

const meta = (o: JsonObject): JsonObject => o.metadata as JsonObject;
const apiError = (code: number, reason?: string) => (e: unknown) => e instanceof ApiError && e.code === code && (reason === undefined || e.reason === reason);

test('create sets uid, creationTimestamp (RFC 3339 seconds), kind/apiVersion and a global integer resourceVersion', () => {
  const { store, type } = setup();
  const cm = type('', 'configmaps');
  const a = store.create(cm, 'default', { metadata: { name: 'a' }, data: { x: '1' } });
  const b = store.create(type('', 'pods'), 'default', { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'x' }] } });
  assert.equal(a.kind, 'ConfigMap');
  assert.equal(a.apiVersion, 'v1');
  assert.match(String(meta(a).uid), /^[0-9a-f-]{36}$/);
  assert.equal(meta(a).creationTimestamp, '2026-11-25T01:02:03Z');
  assert.equal(meta(a).generation, undefined, 'ConfigMaps have no generation');
  assert.equal(Number(meta(b).resourceVersion), Number(meta(a).resourceVersion) + 1);
  assert.equal(store.list(cm, {}).resourceVersion, Number(meta(b).resourceVersion));
});

test('create errors: existing name 409 AlreadyExists, missing name 422, missing namespace 404, namespace mismatch 400', () => {
  const { store, type } = setup();
  const cm = type('', 'configmaps');
  store.create(cm, 'default', { metadata: { name: 'a' } });
  assert.throws(() => store.create(cm, 'default', { metadata: { name: 'a' } }), (e: unknown) => e instanceof ApiError && e.code === 409 && e.reason === 'AlreadyExists' && e.message === 'configmaps "a" already exists');
  assert.throws(() => store.create(cm, 'default', { metadata: {} }), apiError(422, 'Invalid'));
  assert.throws(() => store.create(cm, 'nope', { metadata: { name: 'b' } }), (e: unknown) => e instanceof ApiError && e.code === 404 && e.message === 'namespaces "nope" not found');
  assert.throws(() => store.create(cm, 'default', { metadata: { name: 'b', namespace: 'other' } }), apiError(400, 'BadRequest'));
  assert.throws(() => store.create(cm, 'default', { metadata: { name: 'Bad_Name' } }), apiError(422, 'Invalid'));
  const g = store.create(cm, 'default', { metadata: { generateName: 'gen-' } });
  assert.match(String(meta(g).name), /^gen-[a-z0-9]{5}$/);
});

test('update with a stale resourceVersion is 409 Conflict; without one it is unconditional; a no-op keeps the RV and emits nothing', () => {
  const { store, type, events } = setup();
  const cm = type('', 'configmaps');
  const a = store.create(cm, 'default', { metadata: { name: 'a' }, data: { x: '1' } });
  const rv1 = String(meta(a).resourceVersion);
  const b = store.update(cm, 'default', 'a', { metadata: { name: 'a', resourceVersion: rv1 }, data: { x: '2' } }, { verb: 'update' });
  assert.ok(Number(meta(b).resourceVersion) > Number(rv1));
  assert.throws(
    () => store.update(cm, 'default', 'a', { metadata: { name: 'a', resourceVersion: rv1 }, data: { x: '3' } }, { verb: 'update' }),
    (e: unknown) =>
      e instanceof ApiError &&
      e.code === 409 &&
      e.reason === 'Conflict' &&
      e.message === 'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again',
  );
  const c = store.update(cm, 'default', 'a', { metadata: { name: 'a' }, data: { x: '3' } }, { verb: 'update' });
  const n = events.length;
  const same = store.update(cm, 'default', 'a', { metadata: { name: 'a' }, data: { x: '3' } }, { verb: 'update' });
  assert.equal(meta(same).resourceVersion, meta(c).resourceVersion);
  assert.equal(events.length, n);
  assert.throws(() => store.update(cm, 'default', 'zz', { metadata: { name: 'zz' } }, { verb: 'update' }), apiError(404, 'NotFound'));
});

test('custom resources and CRDs need a resourceVersion on update (upstream AllowUnconditionalUpdate=false)', () => {
  const { store, type } = setup();
  const crd = type('apiextensions.k8s.io', 'customresourcedefinitions');
  const c = store.create(crd, '', crdBody());
  assert.throws(() => store.update(crd, '', String(meta(c).name), { ...crdBody(), metadata: { name: meta(c).name ?? null } }, { verb: 'update' }), apiError(422, 'Invalid'));
});

function crdBody(status = true): JsonObject {
  return {
    metadata: { name: 'postgresqls.acid.example.com' },
    spec: {
      group: 'acid.example.com',
      scope: 'Namespaced',
      names: { kind: 'postgresql', plural: 'postgresqls', shortNames: ['pg'] },
      versions: [{ name: 'v1', served: true, storage: true, ...(status ? { subresources: { status: {} } } : {}), schema: { openAPIV3Schema: { type: 'object' } } }],
    },
  };
}

test('CRD create registers its type (Established) and deleting it deletes its custom resources', () => {
  const { store, registry, type, events } = setup();
  const crd = store.create(type('apiextensions.k8s.io', 'customresourcedefinitions'), '', crdBody());
  const conds = ((crd.status as JsonObject).conditions as JsonObject[]).map((c) => `${String(c.type)}=${String(c.status)}`);
  assert.deepEqual(conds, ['NamesAccepted=True', 'Established=True']);
  assert.equal(((crd.status as JsonObject).acceptedNames as JsonObject).listKind, 'postgresqlList');
  const pg = type('acid.example.com', 'postgresqls');
  assert.equal(pg.strategicPatch, false);
  const cr = store.create(pg, 'default', { apiVersion: 'acid.example.com/v1', kind: 'postgresql', metadata: { name: 'demo' }, spec: { n: 1 } });
  assert.equal(meta(cr).generation, 1);
  assert.throws(() => store.create(type('apiextensions.k8s.io', 'customresourcedefinitions'), '', { ...crdBody(), metadata: { name: 'wrong.name.io' } }), apiError(422));
  store.delete(type('apiextensions.k8s.io', 'customresourcedefinitions'), '', 'postgresqls.acid.example.com');
  assert.equal(registry.find('acid.example.com', 'v1', 'postgresqls'), undefined);
  assert.ok(events.some((e) => e.type === 'DELETED' && meta(e.object).name === 'demo'));
});

test('generation: bumped by spec changes only; status subresource writes change only status', () => {
  const { store, type } = setup();
  const sts = type('apps', 'statefulsets');
  const body = { metadata: { name: 'pg' }, spec: { replicas: 1, serviceName: 'pg', selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } }, status: { replicas: 5 } };
  const s1 = store.create(sts, 'default', body);
  assert.equal(meta(s1).generation, 1);
  assert.deepEqual(s1.status, { replicas: 0, availableReplicas: 0 }, 'status from the create body is dropped; defaults apply');
  assert.equal((s1.spec as JsonObject).podManagementPolicy, 'OrderedReady');
  const s2 = store.update(sts, 'default', 'pg', { ...s1, metadata: { ...meta(s1), labels: { x: 'y' } } }, { verb: 'update' });
  assert.equal(meta(s2).generation, 1, 'metadata change');
  const s3 = store.update(sts, 'default', 'pg', { ...s2, status: { replicas: 3 } }, { verb: 'update', subresource: 'status' });
  assert.equal(meta(s3).generation, 1, 'status change');
  assert.deepEqual(s3.status, { replicas: 3 });
  const s4 = store.update(sts, 'default', 'pg', { ...s3, spec: { ...(s3.spec as JsonObject), replicas: 3 }, status: { replicas: 99 } }, { verb: 'update' });
  assert.equal(meta(s4).generation, 2);
  assert.deepEqual(s4.status, { replicas: 3 }, 'a main-resource write keeps the stored status');
  assert.throws(() => store.update(sts, 'default', 'pg', { ...s4, spec: { ...(s4.spec as JsonObject), serviceName: 'other' } }, { verb: 'update' }), apiError(422));
});

test('custom resources without a status subresource treat status as content (generation bumps)', () => {
  const { store, type } = setup();
  store.create(type('apiextensions.k8s.io', 'customresourcedefinitions'), '', crdBody(false));
  const pg = type('acid.example.com', 'postgresqls');
  const a = store.create(pg, 'default', { metadata: { name: 'x' }, spec: {}, status: { s: 1 } });
  assert.deepEqual(a.status, { s: 1 });
  const b = store.update(pg, 'default', 'x', { ...a, status: { s: 2 } }, { verb: 'patch' });
  assert.equal(meta(b).generation, 2);
});

test('finalizers: delete marks deletionTimestamp (MODIFIED, generation+1); clearing the last finalizer removes (DELETED at a new RV)', () => {
  const { store, type, events } = setup();
  const cm = type('', 'configmaps');
  store.create(cm, 'default', { metadata: { name: 'f', finalizers: ['example.com/x'] } });
  const r = store.delete(cm, 'default', 'f');
  assert.equal(r.removed, false);
  assert.equal(meta(r.object).deletionTimestamp, '2026-11-25T01:02:03Z');
  assert.equal(meta(r.object).deletionGracePeriodSeconds, 0);
  assert.equal(events.at(-1)!.type, 'MODIFIED');
  assert.equal(store.delete(cm, 'default', 'f').removed, false, 'a second delete is a no-op');
  const cur = store.get(cm, 'default', 'f');
  assert.throws(() => store.update(cm, 'default', 'f', { ...cur, metadata: { ...meta(cur), finalizers: ['example.com/x', 'new'] } }, { verb: 'update' }), apiError(422));
  const lastRv = Number(meta(cur).resourceVersion);
  store.update(cm, 'default', 'f', { ...cur, metadata: { ...meta(cur), finalizers: [] } }, { verb: 'update' });
  assert.throws(() => store.get(cm, 'default', 'f'), apiError(404));
  const del = events.at(-1)!;
  assert.equal(del.type, 'DELETED');
  assert.ok(Number(meta(del.object).resourceVersion) > lastRv);
});

test('delete preconditions (uid, resourceVersion) mismatch → 409', () => {
  const { store, type } = setup();
  const cm = type('', 'configmaps');
  const a = store.create(cm, 'default', { metadata: { name: 'a' } });
  assert.throws(() => store.delete(cm, 'default', 'a', { preconditions: { uid: 'other' } }), apiError(409, 'Conflict'));
  assert.throws(() => store.delete(cm, 'default', 'a', { preconditions: { resourceVersion: '1' } }), apiError(409, 'Conflict'));
  assert.equal(store.delete(cm, 'default', 'a', { preconditions: { uid: String(meta(a).uid) } }).removed, true);
});

test('garbage collection: dependents of a deleted owner go (recursively); Orphan strips the reference; a live second owner keeps them', () => {
  const { store, type } = setup();
  const cm = type('', 'configmaps');
  const sec = type('', 'secrets');
  const ref = (o: JsonObject): JsonObject => ({ apiVersion: 'v1', kind: String(o.kind), name: String(meta(o).name), uid: String(meta(o).uid) });
  const owner = store.create(cm, 'default', { metadata: { name: 'owner' } });
  const other = store.create(cm, 'default', { metadata: { name: 'other' } });
  const child = store.create(sec, 'default', { metadata: { name: 'child', ownerReferences: [ref(owner)] }, stringData: { pw: 'x' } });
  assert.deepEqual(child.data, { pw: 'eA==' }, 'stringData is merged into data');
  assert.equal(child.stringData, undefined);
  store.create(cm, 'default', { metadata: { name: 'grandchild', ownerReferences: [ref(child)] } });
  store.create(cm, 'default', { metadata: { name: 'shared', ownerReferences: [ref(owner), ref(other)] } });
  store.delete(cm, 'default', 'owner');
  assert.throws(() => store.get(sec, 'default', 'child'), apiError(404));
  assert.throws(() => store.get(cm, 'default', 'grandchild'), apiError(404));
  const shared = store.get(cm, 'default', 'shared');
  assert.deepEqual((meta(shared).ownerReferences as JsonObject[]).map((r) => r.name), ['other']);
  const keep = store.create(cm, 'default', { metadata: { name: 'keep', ownerReferences: [ref(other)] } });
  store.delete(cm, 'default', 'other', { propagationPolicy: 'Orphan' });
  assert.equal(meta(store.get(cm, 'default', 'keep')).ownerReferences, undefined);
  assert.ok(keep);
});

test('a terminating namespace refuses new objects and goes once its contents are gone', () => {
  const { store, type } = setup();
  const ns = type('', 'namespaces');
  const cm = type('', 'configmaps');
  store.create(ns, '', { metadata: { name: 'team' } });
  store.create(cm, 'team', { metadata: { name: 'held', finalizers: ['x/y'] } });
  const r = store.delete(ns, '', 'team');
  assert.equal(r.removed, false);
  assert.equal((store.get(ns, '', 'team').status as JsonObject).phase, 'Terminating');
  assert.throws(() => store.create(cm, 'team', { metadata: { name: 'new' } }), apiError(403, 'Forbidden'));
  const held = store.get(cm, 'team', 'held');
  store.update(cm, 'team', 'held', { ...held, metadata: { ...meta(held), finalizers: [] } }, { verb: 'update' });
  assert.throws(() => store.get(ns, '', 'team'), apiError(404));
});

test('events history: eventsSince replays in order; compaction makes older resumes unavailable', () => {
  const { store, type } = setup();
  const cm = type('', 'configmaps');
  const rv0 = store.resourceVersion;
  store.create(cm, 'default', { metadata: { name: 'a' } });
  store.create(cm, 'default', { metadata: { name: 'b' } });
  assert.deepEqual(store.eventsSince(rv0, typeKey(cm))!.map((e) => meta(e.object).name), ['a', 'b']);
  store.compact();
  assert.equal(store.eventsSince(rv0, typeKey(cm)), undefined);
  assert.deepEqual(store.eventsSince(store.resourceVersion, typeKey(cm)), []);
});

test('snapshot/restore keeps objects, CRD types and the resourceVersion counter', () => {
  const { store, type } = setup();
  store.create(type('apiextensions.k8s.io', 'customresourcedefinitions'), '', crdBody());
  store.create(type('acid.example.com', 'postgresqls'), 'default', { metadata: { name: 'demo' }, spec: {} });
  const snap = JSON.parse(JSON.stringify(store.snapshot()));
  const registry = new Registry();
  const again = new Store({ registry });
  again.restore(snap);
  assert.equal(again.resourceVersion, store.resourceVersion);
  const pg = registry.find('acid.example.com', 'v1', 'postgresqls')!;
  assert.equal(meta(again.get(pg, 'default', 'demo')).name, 'demo');
});
