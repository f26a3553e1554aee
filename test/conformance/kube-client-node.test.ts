/**
 * @kubernetes/client-node 2.x against the local API server (src/kube/apiserver) over https with a
 * bearer token, as the operator and the daemon's Kubernetes store will use it: typed CRUD round trips
 * with ApiException codes and Status reasons, CustomObjectsApi on a CRD (status subresource, stale
 * replace → 409), KubernetesObjectApi (discovery + strategic merge), Lease leader election by
 * resourceVersion, and an informer (list + watch) that sees adds, updates and deletes in order and
 * recovers when the server expires its watch (in-stream 410 → relist → watch).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiException,
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Lease,
} from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from '../../src/kube/apiserver/index.js';

const NS = 'default';

/** Polls `cond` every 20 ms for at most `ms`; fails with `what()` when it never holds. */
async function until(cond: () => boolean, what: () => string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function apiError(p: Promise<unknown>): Promise<{ code: number; reason: string; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiException, `expected ApiException, got ${String(e)}`);
    const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { reason: string; message: string; kind: string };
    assert.equal(body.kind, 'Status');
    return { code: e.code, reason: body.reason, message: body.message };
  }
  assert.fail('expected the call to fail');
}

describe('@kubernetes/client-node against the local Kubernetes API server', () => {
  let srv: KubeApiServer;
  let kc: KubeConfig;
  let core: CoreV1Api;
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  before(async () => {
    srv = await startKubeApiServer({ recordTranscript: true, context: 'cn-test' });
    kc = new KubeConfig();
    kc.loadFromString(srv.kubeconfig());
    core = kc.makeApiClient(CoreV1Api);
  });

  after(async () => {
    await srv?.close();
  });

  test('ConfigMap round trip: create, read, replace (RV), merge and JSON patch, 409s and 404 as ApiException', async () => {
    const created = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'rt', labels: { a: 'b' } }, data: { k: 'v1' } } });
    assert.match(created.metadata!.resourceVersion!, /^\d+$/);
    assert.equal(created.metadata!.namespace, NS);
    const dup = await apiError(core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'rt' } } }));
    assert.deepEqual([dup.code, dup.reason, dup.message], [409, 'AlreadyExists', 'configmaps "rt" already exists']);
    const read = await core.readNamespacedConfigMap({ name: 'rt', namespace: NS });
    assert.deepEqual(read.data, { k: 'v1' });
    const replaced = await core.replaceNamespacedConfigMap({ name: 'rt', namespace: NS, body: { ...read, data: { k: 'v2' } } });
    assert.ok(Number(replaced.metadata!.resourceVersion) > Number(read.metadata!.resourceVersion));
    const stale = await apiError(core.replaceNamespacedConfigMap({ name: 'rt', namespace: NS, body: { ...read, data: { k: 'v3' } } }));
    assert.deepEqual([stale.code, stale.reason], [409, 'Conflict']);
    const patched = await core.patchNamespacedConfigMap({ name: 'rt', namespace: NS, body: { data: { k: 'v4', extra: 'x' } } }, merge);
    assert.deepEqual(patched.data, { k: 'v4', extra: 'x' });
    // client-node's default PATCH content type is json-patch
    const jp = await core.patchNamespacedConfigMap({ name: 'rt', namespace: NS, body: [{ op: 'remove', path: '/data/extra' }] });
    assert.deepEqual(jp.data, { k: 'v4' });
    const rvPrecondition = await apiError(core.patchNamespacedConfigMap({ name: 'rt', namespace: NS, body: { metadata: { resourceVersion: read.metadata!.resourceVersion }, data: { k: 'v5' } } }, merge));
    assert.equal(rvPrecondition.code, 409, 'metadata.resourceVersion in a patch is a precondition');
    const status = await core.deleteNamespacedConfigMap({ name: 'rt', namespace: NS });
    assert.equal(status.status, 'Success');
    const missing = await apiError(core.readNamespacedConfigMap({ name: 'rt', namespace: NS }));
    assert.deepEqual([missing.code, missing.reason, missing.message], [404, 'NotFound', 'configmaps "rt" not found']);
    const noNs = await apiError(core.createNamespacedConfigMap({ namespace: 'nope', body: { metadata: { name: 'x' } } }));
    assert.deepEqual([noNs.code, noNs.message], [404, 'namespaces "nope" not found']);
  });

  test('Pods, Services, Secrets: status subresource, defaulting, stringData; label selectors on list', async () => {
    await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'demo-0', labels: { app: 'pg', role: 'replica' } }, spec: { containers: [{ name: 'pg', image: 'postgres:15' }] }, status: { podIP: '10.0.0.1' } } });
    await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'demo-1', labels: { app: 'pg' } }, spec: { containers: [{ name: 'pg', image: 'postgres:15' }] } } });
    const p = await core.patchNamespacedPod({ name: 'demo-0', namespace: NS, body: { metadata: { labels: { role: 'primary' } }, status: { podIP: 'ignored' } } }, merge);
    assert.equal(p.status!.podIP, '10.0.0.1', 'main-resource writes ignore status');
    const ps = await core.patchNamespacedPodStatus({ name: 'demo-0', namespace: NS, body: { status: { phase: 'Running' } } }, merge);
    assert.equal(ps.status!.phase, 'Running');
    const names = async (labelSelector: string): Promise<string[]> => (await core.listNamespacedPod({ namespace: NS, labelSelector })).items.map((i) => i.metadata!.name!);
    assert.deepEqual(await names('app=pg,role in (primary,standby)'), ['demo-0']);
    assert.deepEqual(await names('app=pg,!role'), ['demo-1']);
    assert.deepEqual(await names('role notin (primary)'), ['demo-1']);
    assert.deepEqual((await core.listNamespacedPod({ namespace: NS, fieldSelector: 'metadata.name=demo-1' })).items.map((i) => i.metadata!.name), ['demo-1']);
    const svc = await core.createNamespacedService({ namespace: NS, body: { metadata: { name: 'demo' }, spec: { ports: [{ port: 5432 }], selector: { role: 'primary' } } } });
    assert.equal(svc.spec!.type, 'ClusterIP');
    assert.match(svc.spec!.clusterIP!, /^10\.96\./);
    assert.equal(svc.spec!.ports![0]!.protocol, 'TCP');
    const sec = await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'creds' }, stringData: { password: 'pw' } } });
    assert.deepEqual(sec.data, { password: Buffer.from('pw').toString('base64') });
    assert.equal(sec.type, 'Opaque');
    const deletedPod = await core.deleteNamespacedPod({ name: 'demo-1', namespace: NS });
    assert.equal(deletedPod.metadata!.name, 'demo-1', 'pods answer DELETE with the object');
  });

  test('CustomObjectsApi on a CRD: create, get, stale replace 409, json-patch, status merge-patch, list, delete, 404', async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: 'postgresqls.acid.example.com' },
        spec: {
          group: 'acid.example.com',
          scope: 'Namespaced',
          names: { kind: 'postgresql', plural: 'postgresqls', singular: 'postgresql', shortNames: ['pg'] },
          versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } } }],
        },
      },
    });
    const crd = await ext.readCustomResourceDefinition({ name: 'postgresqls.acid.example.com' });
    assert.ok(crd.status!.conditions!.some((c) => c.type === 'Established' && c.status === 'True'));
    const co = kc.makeApiClient(CustomObjectsApi);
    const ref = { group: 'acid.example.com', version: 'v1', namespace: NS, plural: 'postgresqls' };
    const c1 = (await co.createNamespacedCustomObject({ ...ref, body: { apiVersion: 'acid.example.com/v1', kind: 'postgresql', metadata: { name: 'c1', labels: { team: 'a' } }, spec: { numberOfInstances: 2 } } })) as Record<string, any>;
    assert.equal(c1.metadata.generation, 1);
    const c2 = (await co.replaceNamespacedCustomObject({ ...ref, name: 'c1', body: { ...c1, spec: { numberOfInstances: 3 } } })) as Record<string, any>;
    assert.equal(c2.metadata.generation, 2);
    const stale = await apiError(co.replaceNamespacedCustomObject({ ...ref, name: 'c1', body: { ...c1, spec: { numberOfInstances: 4 } } }));
    assert.deepEqual(
      [stale.code, stale.reason, stale.message],
      [409, 'Conflict', 'Operation cannot be fulfilled on postgresqls.acid.example.com "c1": the object has been modified; please apply your changes to the latest version and try again'],
    );
    const jp = (await co.patchNamespacedCustomObject({ ...ref, name: 'c1', body: [{ op: 'replace', path: '/spec/numberOfInstances', value: 5 }] })) as Record<string, any>;
    assert.equal(jp.spec.numberOfInstances, 5);
    const st = (await co.patchNamespacedCustomObjectStatus({ ...ref, name: 'c1', body: { status: { PostgresClusterStatus: 'Running' }, spec: { numberOfInstances: 99 } } }, merge)) as Record<string, any>;
    assert.deepEqual([st.status.PostgresClusterStatus, st.spec.numberOfInstances, st.metadata.generation], ['Running', 5, 3], 'status writes change only status');
    const list = (await co.listNamespacedCustomObject({ ...ref, labelSelector: 'team in (a,b)' })) as Record<string, any>;
    assert.deepEqual(list.items.map((i: Record<string, any>) => i.metadata.name), ['c1']);
    assert.equal(list.kind, 'postgresqlList');
    const smp = await apiError(co.patchNamespacedCustomObject({ ...ref, name: 'c1', body: { spec: {} } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)));
    assert.deepEqual([smp.code, smp.reason], [415, 'UnsupportedMediaType']);
    const missing = await apiError(co.getNamespacedCustomObject({ ...ref, name: 'nope' }));
    assert.deepEqual([missing.code, missing.message], [404, 'postgresqls.acid.example.com "nope" not found']);
  });

  test('owner references: deleting the custom resource collects its StatefulSet and Service', async () => {
    const co = kc.makeApiClient(CustomObjectsApi);
    const owner = (await co.getNamespacedCustomObject({ group: 'acid.example.com', version: 'v1', namespace: NS, plural: 'postgresqls', name: 'c1' })) as Record<string, any>;
    const ownerReferences = [{ apiVersion: 'acid.example.com/v1', kind: 'postgresql', name: 'c1', uid: owner.metadata.uid as string, controller: true }];
    const objs = kc.makeApiClient(KubernetesObjectApi);
    await objs.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'c1', namespace: NS, ownerReferences }, spec: { clusterIP: 'None' } });
    await objs.create({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'c1', namespace: NS, ownerReferences },
      spec: { serviceName: 'c1', selector: { matchLabels: { app: 'c1' } }, template: { metadata: { labels: { app: 'c1' } }, spec: { containers: [{ name: 'pg', image: 'postgres:15', env: [{ name: 'A', value: '1' }] }, { name: 'exp', image: 'e:1' }] } } },
    } as never);
    // KubernetesObjectApi.patch defaults to strategic merge: containers merge by name
    const patched = (await objs.patch({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'c1', namespace: NS }, spec: { template: { spec: { containers: [{ name: 'pg', env: [{ name: 'B', value: '2' }] }] } } } } as never)) as Record<string, any>;
    assert.deepEqual(
      patched.spec.template.spec.containers.map((c: Record<string, any>) => [c.name, (c.env ?? []).map((e: Record<string, string>) => e.name).join()]),
      [['pg', 'A,B'], ['exp', '']],
    );
    await co.deleteNamespacedCustomObject({ group: 'acid.example.com', version: 'v1', namespace: NS, plural: 'postgresqls', name: 'c1' });
    assert.equal((await apiError(core.readNamespacedService({ name: 'c1', namespace: NS }))).code, 404);
    assert.equal((await apiError(objs.read({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'c1', namespace: NS } }))).code, 404);
  });

  test('Lease leader election: two contenders GET + PUT with the RV they read; exactly one wins each round', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const now = new Date();
    await leases.createNamespacedLease({ namespace: NS, body: { metadata: { name: 'op-lock' }, spec: { holderIdentity: 'nobody', leaseDurationSeconds: 15, acquireTime: now, renewTime: now } } });
    for (let round = 0; round < 3; round++) {
      const [a, b] = await Promise.all([leases.readNamespacedLease({ name: 'op-lock', namespace: NS }), leases.readNamespacedLease({ name: 'op-lock', namespace: NS })]);
      const claim = (seen: V1Lease, who: string): Promise<string> =>
        leases
          .replaceNamespacedLease({ name: 'op-lock', namespace: NS, body: { ...seen, spec: { ...seen.spec, holderIdentity: who, renewTime: new Date() } } })
          .then(() => 'won')
          .catch((e: unknown) => (e instanceof ApiException && e.code === 409 ? 'lost' : `error ${String(e)}`));
      const results = await Promise.all([claim(a, 'a'), claim(b, 'b')]);
      assert.deepEqual([...results].sort(), ['lost', 'won'], `round ${round}: ${results.join(',')}`);
      const holder = (await leases.readNamespacedLease({ name: 'op-lock', namespace: NS })).spec!.holderIdentity;
      assert.equal(holder, results[0] === 'won' ? 'a' : 'b');
    }
  });

  test('injected 503 reaches the client as ApiException 503 with Retry-After', async () => {
    srv.faults.failNext(503, { match: { method: 'GET', path: '/configmaps/' }, retryAfterSeconds: 2 });
    try {
      await core.readNamespacedConfigMap({ name: 'whatever', namespace: NS });
      assert.fail('expected 503');
    } catch (e) {
      assert.ok(e instanceof ApiException);
      assert.equal(e.code, 503);
      assert.equal(e.headers['retry-after'], '2');
    }
    assert.equal((await apiError(core.readNamespacedConfigMap({ name: 'whatever', namespace: NS }))).code, 404, 'only the next request failed');
  });

  test('informer: adds, updates and deletes in order (a label change out of the selector is a delete), and recovery after the server expires its watch', async () => {
    const labelSelector = 'app=inf';
    const make = (name: string, v: string, app = 'inf'): V1ConfigMap => ({ metadata: { name, labels: { app } }, data: { v } });
    await core.createNamespacedConfigMap({ namespace: NS, body: make('inf-0', '0') });
    const informer = makeInformer(kc, `/api/v1/namespaces/${NS}/configmaps`, () => core.listNamespacedConfigMap({ namespace: NS, labelSelector }), labelSelector);
    const events: string[] = [];
    const errors: unknown[] = [];
    let connects = 0;
    informer.on('add', (o) => events.push(`add ${o.metadata!.name} ${o.data?.v}`));
    informer.on('update', (o) => events.push(`update ${o.metadata!.name} ${o.data?.v}`));
    informer.on('delete', (o) => events.push(`delete ${o.metadata!.name}`));
    informer.on('connect', () => connects++);
    informer.on('error', (e) => errors.push(e));
    await informer.start();
    try {
      await until(() => events.length === 1 && srv.openWatches() === 1, () => `first list + watch: ${events.join('; ')} watches=${srv.openWatches()}`);
      await core.createNamespacedConfigMap({ namespace: NS, body: make('inf-1', '1') });
      await core.patchNamespacedConfigMap({ name: 'inf-1', namespace: NS, body: { data: { v: '2' } } }, merge);
      await core.deleteNamespacedConfigMap({ name: 'inf-0', namespace: NS });
      await core.createNamespacedConfigMap({ namespace: NS, body: make('other', 'x', 'elsewhere') });
      await core.patchNamespacedConfigMap({ name: 'inf-1', namespace: NS, body: { metadata: { labels: { app: 'moved' } } } }, merge);
      await core.patchNamespacedConfigMap({ name: 'inf-1', namespace: NS, body: { metadata: { labels: { app: 'inf' } }, data: { v: '3' } } }, merge);
      const expected = ['add inf-0 0', 'add inf-1 1', 'update inf-1 2', 'delete inf-0', 'delete inf-1', 'add inf-1 3'];
      await until(() => events.length >= expected.length, () => events.join('; '));
      assert.deepEqual(events, expected);
      assert.deepEqual(informer.list().map((o) => o.metadata!.name), ['inf-1']);

      // The server expires every watch (in-stream ERROR 410) and forgets its history; the next list is
      // held back while an object is created, so only a real relist can show it.
      const before = srv.transcript().length;
      srv.faults.delayNext(300, { match: { method: 'GET', watch: false, path: '/configmaps?labelSelector' } });
      assert.equal(srv.faults.expireWatches(), 1);
      await core.createNamespacedConfigMap({ namespace: NS, body: make('inf-2', 'missed') });
      await until(() => events.length === expected.length + 1 && srv.openWatches() === 1, () => `after expiry: ${events.join('; ')}`);
      assert.equal(events.at(-1), 'add inf-2 missed', 'the relist delivered what the expired watch missed, with no duplicate add of inf-1');
      const after = srv.transcript().slice(before);
      const tail = after.filter((r) => r.kind === 'watch-event' || r.kind === 'request').map((r) => (r.kind === 'request' ? `${r.method} ${r.url.includes('watch=true') ? 'watch' : 'list'}` : `event ${r.type}${r.kind === 'watch-event' && r.code ? ` ${r.code}` : ''}`));
      const i410 = tail.indexOf('event ERROR 410');
      assert.ok(i410 >= 0, tail.join('\n'));
      const next = tail.slice(i410 + 1).filter((x) => x === 'GET list' || x === 'GET watch');
      assert.deepEqual(next.slice(0, 2), ['GET list', 'GET watch'], `informer must relist, then watch again:\n${tail.join('\n')}`);
      assert.ok(connects >= 2);

      await core.patchNamespacedConfigMap({ name: 'inf-2', namespace: NS, body: { data: { v: 'live' } } }, merge);
      await until(() => events.at(-1) === 'update inf-2 live', () => `after recovery: ${events.join('; ')}`);
      assert.deepEqual(errors, []);
    } finally {
      await informer.stop();
    }
    await until(() => srv.openWatches() === 0, () => `watch not closed after informer.stop(): ${srv.openWatches()}`);
  });

  test('transcript invariants: token on every request, RVs of successful writes strictly increase, each watch stream non-decreasing, no unrequested BOOKMARK', () => {
    const t = srv.transcript();
    const reqs = new Map(t.filter((r) => r.kind === 'request').map((r) => [r.id, r]));
    assert.ok([...reqs.values()].every((r) => r.kind === 'request' && r.auth === 'bearer'));
    const writeRvs = t
      .filter((r) => r.kind === 'response' && r.status < 300 && r.resourceVersion && ['POST', 'PUT', 'PATCH'].includes((reqs.get(r.id) as { method: string }).method))
      .map((r) => Number((r as { resourceVersion: string }).resourceVersion));
    // a no-op write keeps its RV, so equal neighbours are allowed
    for (let i = 1; i < writeRvs.length; i++) assert.ok(writeRvs[i]! >= writeRvs[i - 1]!, writeRvs.join(','));
    const perWatch = new Map<number, number[]>();
    for (const r of t) if (r.kind === 'watch-event' && r.resourceVersion && r.type !== 'ERROR') perWatch.set(r.id, [...(perWatch.get(r.id) ?? []), Number(r.resourceVersion)]);
    assert.ok(perWatch.size >= 2);
    for (const [id, rvs] of perWatch) for (let i = 1; i < rvs.length; i++) assert.ok(rvs[i]! >= rvs[i - 1]!, `watch ${id}: ${rvs.join(',')}`);
    for (const r of t) {
      if (r.kind === 'watch-event' && r.type === 'BOOKMARK') assert.match((reqs.get(r.id) as { url: string }).url, /allowWatchBookmarks=true/);
    }
  });
});
