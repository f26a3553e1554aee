/**
 * Real `kubectl` (v1.32, /usr/bin/kubectl) against the local API server (src/kube/apiserver): discovery,
 * client-side apply of a CRD and then of a custom resource, get / get -o yaml / get -w, the three patch
 * types, label, annotate, replace with a stale resourceVersion (409), delete with a finalizer released
 * by a second process, owner-reference GC, and token auth over TLS. Each step checks kubectl's real
 * output, so a semantic break in the server (e.g. no 409 on a stale resourceVersion, a JSON merge
 * where a strategic merge is due, no watch events) fails here.
 *
 * kubectl validates manifests against OpenAPI, which the server does not serve: `--validate=false`
 * (kube-api-subset.md §3). `kubectl create configmap …` generators send protobuf and get 415: manifests
 * go through `create -f` / `apply -f`. KUBECACHEDIR and HOME point into a temp dir.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startKubeApiServer, type KubeApiServer } from '../../src/kube/apiserver/index.js';

const KUBECTL = '/usr/bin/kubectl';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: postgresqls.acid.example.com
spec:
  group: acid.example.com
  names: {kind: postgresql, listKind: postgresqlList, plural: postgresqls, singular: postgresql, shortNames: [pg]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`;

const CR = (instances: number): string => `apiVersion: acid.example.com/v1
kind: postgresql
metadata: {name: demo, labels: {team: acid}}
spec: {teamId: acid, numberOfInstances: ${instances}, postgresql: {version: "15"}}
`;

const STS = (image: string, a: string): string => `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg}
spec:
  serviceName: pg
  selector: {matchLabels: {app: pg}}
  template:
    metadata: {labels: {app: pg}}
    spec:
      containers:
      - name: postgres
        image: ${image}
        env: [{name: A, value: "${a}"}, {name: B, value: "b"}]
        ports: [{containerPort: 5432, name: pg}]
      - name: exporter
        image: exporter:1
`;

describe('kubectl against the local Kubernetes API server', () => {
  let srv: KubeApiServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const children = new Set<ChildProcess>();

  /** Runs kubectl (never rejects; a hung kubectl is killed after `timeoutMs`). */
  function kubectl(args: string[], opts: { input?: string; timeoutMs?: number; kubeconfig?: string } = {}): Promise<Run> {
    return new Promise((resolve) => {
      const child = spawn(KUBECTL, ['--kubeconfig', opts.kubeconfig ?? join(dir, 'kubeconfig'), ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        children.delete(child);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(opts.input ?? '');
    });
  }

  const show = (r: Run): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await kubectl(args, input === undefined ? {} : { input });
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}\n${show(r)}`);
    return r.stdout;
  };
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgwarden-kubectl-'));
    srv = await startKubeApiServer({ kubeconfigPath: join(dir, 'kubeconfig'), recordTranscript: true, context: 'pgwarden-test' });
    env = { ...process.env, HOME: dir, KUBECACHEDIR: join(dir, 'cache'), KUBECONFIG: join(dir, 'kubeconfig') };
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await srv?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('discovery: version, api-resources (legacy discovery fallback), an empty namespace', async () => {
    assert.match(await ok(['version']), /Server Version: v1\.32\.4-pgwarden/);
    const res = await ok(['api-resources', '--no-headers']);
    for (const [name, short, gv, namespaced, kind] of [
      ['pods', 'po', 'v1', 'true', 'Pod'],
      ['endpoints', 'ep', 'v1', 'true', 'Endpoints'],
      ['statefulsets', 'sts', 'apps/v1', 'true', 'StatefulSet'],
      ['leases', '', 'coordination.k8s.io/v1', 'true', 'Lease'],
      ['customresourcedefinitions', 'crd,crds', 'apiextensions.k8s.io/v1', 'false', 'CustomResourceDefinition'],
    ]) {
      const line = res.split('\n').find((l) => l.startsWith(`${name} `));
      assert.ok(line, `${name} in\n${res}`);
      assert.deepEqual(line.split(/\s+/).filter(Boolean), [name, short, gv, namespaced, kind].filter(Boolean));
    }
    const r = await kubectl(['get', 'pods']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stderr.trim(), 'No resources found in default namespace.');
  });

  test('apply -f of a CRD, wait for Established, then apply -f of a custom resource; get and get -o yaml', async () => {
    assert.equal((await ok(['apply', '--validate=false', '-f', file('crd.yaml', CRD)])).trim(), 'customresourcedefinition.apiextensions.k8s.io/postgresqls.acid.example.com created');
    assert.equal((await ok(['wait', '--for=condition=established', '--timeout=10s', 'crd/postgresqls.acid.example.com'])).trim(), 'customresourcedefinition.apiextensions.k8s.io/postgresqls.acid.example.com condition met');
    assert.equal((await ok(['apply', '--validate=false', '-f', file('cr.yaml', CR(2))])).trim(), 'postgresql.acid.example.com/demo created');
    assert.equal((await ok(['apply', '--validate=false', '-f', file('cr.yaml', CR(2))])).trim(), 'postgresql.acid.example.com/demo unchanged');
    assert.equal((await ok(['apply', '--validate=false', '-f', file('cr.yaml', CR(3))])).trim(), 'postgresql.acid.example.com/demo configured');
    const table = (await ok(['get', 'postgresqls'])).trim().split('\n');
    assert.match(table[0]!, /^NAME\s+AGE$/);
    assert.match(table[1]!, /^demo\s+\d+s$/);
    const y = parse(await ok(['get', 'pg', 'demo', '-o', 'yaml'])) as Record<string, any>;
    assert.equal(y.apiVersion, 'acid.example.com/v1');
    assert.equal(y.kind, 'postgresql');
    assert.deepEqual(y.spec, { teamId: 'acid', numberOfInstances: 3, postgresql: { version: '15' } });
    assert.equal(y.metadata.generation, 2);
    assert.match(y.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(y.metadata.resourceVersion, /^\d+$/);
    assert.match(y.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(y.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
  });

  test('apply of a changed StatefulSet merges containers and env by name (strategic merge, not JSON merge)', async () => {
    await ok(['apply', '--validate=false', '-f', file('sts.yaml', STS('postgres:15', '1'))]);
    assert.equal((await ok(['apply', '--validate=false', '-f', file('sts.yaml', STS('postgres:16', '2'))])).trim(), 'statefulset.apps/pg configured');
    const sts = JSON.parse(await ok(['get', 'sts', 'pg', '-o', 'json'])) as Record<string, any>;
    const containers = sts.spec.template.spec.containers as Record<string, any>[];
    assert.deepEqual(
      containers.map((c) => [c.name, c.image, c.env ?? null, c.ports ?? null]),
      [
        ['postgres', 'postgres:16', [{ name: 'A', value: '2' }, { name: 'B', value: 'b' }], [{ containerPort: 5432, name: 'pg', protocol: 'TCP' }]],
        ['exporter', 'exporter:1', null, null],
      ],
    );
    assert.equal(sts.metadata.generation, 2);
    assert.equal(sts.spec.podManagementPolicy, 'OrderedReady', 'defaulted');
  });

  test('patch --type merge | json | strategic, and the default (strategic) on a custom resource is 415', async () => {
    assert.equal((await ok(['patch', 'pg', 'demo', '--type', 'merge', '-p', '{"spec":{"numberOfInstances":4}}'])).trim(), 'postgresql.acid.example.com/demo patched');
    assert.equal((await ok(['patch', 'pg', 'demo', '--type', 'merge', '-p', '{"spec":{"numberOfInstances":4}}'])).trim(), 'postgresql.acid.example.com/demo patched (no change)');
    await ok(['patch', 'pg', 'demo', '--type', 'json', '-p', '[{"op":"replace","path":"/spec/teamId","value":"beta"},{"op":"add","path":"/spec/enableLogicalBackup","value":true}]']);
    assert.equal(await ok(['get', 'pg', 'demo', '-o', 'jsonpath={.spec.numberOfInstances} {.spec.teamId} {.spec.enableLogicalBackup}']), '4 beta true');
    const failedTest = await kubectl(['patch', 'pg', 'demo', '--type', 'json', '-p', '[{"op":"test","path":"/spec/teamId","value":"nope"}]']);
    assert.notEqual(failedTest.code, 0, show(failedTest));
    const smpCr = await kubectl(['patch', 'pg', 'demo', '-p', '{"spec":{"numberOfInstances":5}}']);
    assert.notEqual(smpCr.code, 0, show(smpCr));
    assert.match(smpCr.stderr, /application\/strategic-merge-patch\+json is not supported by acid\.example\.com\/v1, Kind=postgresql/);
    assert.equal(
      (await ok(['patch', 'sts', 'pg', '--type', 'strategic', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"exporter","image":"exporter:2"}]}}}}'])).trim(),
      'statefulset.apps/pg patched',
    );
    assert.equal(await ok(['get', 'sts', 'pg', '-o', 'jsonpath={.spec.template.spec.containers[*].image}']), 'postgres:16 exporter:2');
    await ok(['patch', 'pg', 'demo', '--subresource=status', '--type', 'merge', '-p', '{"status":{"PostgresClusterStatus":"Running"}}']);
    assert.equal(await ok(['get', 'pg', 'demo', '-o', 'jsonpath={.status.PostgresClusterStatus} {.metadata.generation}']), 'Running 4', 'status writes leave generation alone');
  });

  test('label and annotate (with --overwrite); get -l selects by label', async () => {
    assert.equal((await ok(['label', 'pg', 'demo', 'env=prod'])).trim(), 'postgresql.acid.example.com/demo labeled');
    const again = await kubectl(['label', 'pg', 'demo', 'env=dev']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /'env' already has a value \(prod\), and --overwrite is false/);
    await ok(['label', 'pg', 'demo', 'env=dev', '--overwrite']);
    assert.equal((await ok(['annotate', 'pg', 'demo', 'owner=dba'])).trim(), 'postgresql.acid.example.com/demo annotated');
    assert.equal(await ok(['get', 'pg', 'demo', '-o', 'jsonpath={.metadata.labels.env} {.metadata.annotations.owner}']), 'dev dba');
    assert.match(await ok(['get', 'pg', '-l', 'env in (dev,qa),team', '-o', 'name']), /^postgresql\.acid\.example\.com\/demo\n$/);
    const none = await kubectl(['get', 'pg', '-l', 'env!=dev']);
    assert.equal(none.stderr.trim(), 'No resources found in default namespace.');
    await ok(['label', 'pg', 'demo', 'env-']);
    assert.equal(await ok(['get', 'pg', 'demo', '-o', 'jsonpath={.metadata.labels}']), '{"team":"acid"}');
  });

  test('get -w prints the current list, then each change as it happens', async () => {
    const child = spawn(KUBECTL, ['get', 'configmaps', '-w', '--output-watch-events', '-l', 'watch=yes'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const waitFor = async (re: RegExp): Promise<void> => {
      const deadline = Date.now() + 15_000;
      while (!re.test(out)) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${re} in:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      // the list is empty, so kubectl prints nothing until the first event: wait for its watch to be open
      const deadline = Date.now() + 15_000;
      while (srv.openWatches() === 0) {
        assert.ok(Date.now() < deadline, `kubectl get -w never opened a watch:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await ok(['create', '--validate=false', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w1', labels: { watch: 'yes' } }, data: { v: '1' } }));
      await waitFor(/ADDED\s+w1/);
      await ok(['patch', 'cm', 'w1', '--type', 'merge', '-p', '{"data":{"v":"2"}}']);
      await waitFor(/MODIFIED\s+w1/);
      await ok(['label', 'cm', 'w1', 'watch=no', '--overwrite']);
      await waitFor(/DELETED\s+w1/);
    } finally {
      child.kill('SIGKILL');
    }
    const events = out
      .split('\n')
      .map((l) => /^(ADDED|MODIFIED|DELETED)\s+(\S+)/.exec(l))
      .filter((m) => m)
      .map((m) => `${m![1]} ${m![2]}`);
    // the label change moved w1 out of the selector: the watch reports it DELETED (upstream cacher rule)
    assert.deepEqual(events, ['ADDED w1', 'MODIFIED w1', 'DELETED w1'], out);
  });

  test('replace with a stale resourceVersion fails with 409 Conflict; with the current one it succeeds', async () => {
    const stale = await ok(['get', 'cm', 'w1', '-o', 'yaml']);
    await ok(['annotate', 'cm', 'w1', 'bump=1']);
    const r = await kubectl(['replace', '--validate=false', '-f', file('stale.yaml', stale)]);
    assert.equal(r.code, 1, show(r));
    assert.equal(
      r.stderr.trim(),
      `Error from server (Conflict): error when replacing "${join(dir, 'stale.yaml')}": Operation cannot be fulfilled on configmaps "w1": the object has been modified; please apply your changes to the latest version and try again`,
    );
    const fresh = await ok(['get', 'cm', 'w1', '-o', 'yaml']);
    assert.equal((await ok(['replace', '--validate=false', '-f', file('fresh.yaml', fresh.replace('v: "2"', 'v: "3"'))])).trim(), 'configmap/w1 replaced');
    assert.equal(await ok(['get', 'cm', 'w1', '-o', 'jsonpath={.data.v}']), '3');
    const dup = await kubectl(['create', '--validate=false', '-f', file('fresh.yaml', fresh)]);
    assert.match(dup.stderr, /Error from server \(AlreadyExists\): error when creating ".*": configmaps "w1" already exists/);
  });

  test('delete waits for finalizers, released by a second kubectl; NotFound afterwards', async () => {
    await ok(['create', '--validate=false', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fin', finalizers: ['example.com/hold'] } }));
    const deleting = kubectl(['delete', 'cm', 'fin', '--timeout=20s']);
    const deadline = Date.now() + 15_000;
    while (!(await ok(['get', 'cm', 'fin', '-o', 'jsonpath={.metadata.deletionTimestamp}'])).match(/Z$/)) {
      assert.ok(Date.now() < deadline, 'deletionTimestamp never set');
      await new Promise((r) => setTimeout(r, 100));
    }
    await ok(['patch', 'cm', 'fin', '--type', 'json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
    const d = await deleting;
    assert.equal(d.code, 0, show(d));
    assert.equal(d.stdout.trim(), 'configmap "fin" deleted');
    const gone = await kubectl(['get', 'cm', 'fin']);
    assert.equal(gone.stderr.trim(), 'Error from server (NotFound): configmaps "fin" not found');
  });

  test('deleting the custom resource garbage-collects the objects it owns', async () => {
    const uid = await ok(['get', 'pg', 'demo', '-o', 'jsonpath={.metadata.uid}']);
    const owned = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'demo-creds', ownerReferences: [{ apiVersion: 'acid.example.com/v1', kind: 'postgresql', name: 'demo', uid }] }, stringData: { password: 'pw' } };
    await ok(['create', '--validate=false', '-f', '-'], JSON.stringify(owned));
    assert.equal(await ok(['get', 'secret', 'demo-creds', '-o', 'jsonpath={.data.password}']), Buffer.from('pw').toString('base64'));
    assert.equal((await ok(['delete', 'pg', 'demo'])).trim(), 'postgresql.acid.example.com "demo" deleted');
    const gone = await kubectl(['get', 'secret', 'demo-creds']);
    assert.equal(gone.stderr.trim(), 'Error from server (NotFound): secrets "demo-creds" not found');
  });

  test('a wrong token is 401 Unauthorized', async () => {
    const bad = join(dir, 'bad-kubeconfig');
    writeFileSync(bad, srv.kubeconfig('pgwarden-test').replace(srv.token, 'not-the-token'));
    const r = await kubectl(['get', 'pods'], { kubeconfig: bad });
    assert.equal(r.code, 1, show(r));
    assert.equal(r.stderr.trim(), 'error: You must be logged in to the server (Unauthorized)');
  });

  test('transcript: kubectl sent its bearer token over TLS; write resourceVersions strictly increase', () => {
    const t = srv.transcript();
    const requests = t.filter((r) => r.kind === 'request');
    assert.ok(requests.length > 50);
    const unauth = requests.filter((r) => r.kind === 'request' && r.auth !== 'bearer' && !r.url.startsWith('/version'));
    assert.deepEqual(unauth, []);
    const methods = new Map(requests.map((r) => [r.id, r.kind === 'request' ? r.method : '']));
    const writes = t
      .filter((r) => r.kind === 'response' && r.status < 300 && ['POST', 'PUT', 'PATCH'].includes(methods.get(r.id) ?? '') && r.resourceVersion)
      .map((r) => Number((r as { resourceVersion: string }).resourceVersion));
    for (let i = 1; i < writes.length; i++) assert.ok(writes[i]! >= writes[i - 1]!, `write RVs out of order: ${writes.join(',')}`);
    const urls = new Map(requests.map((r) => [r.id, r.kind === 'request' ? r.url : '']));
    const watchEvents = t.filter((r) => r.kind === 'watch-event');
    assert.ok(watchEvents.some((r) => r.kind === 'watch-event' && r.type === 'DELETED'), 'watch events reached kubectl');
    for (const r of watchEvents) if (r.kind === 'watch-event' && r.type === 'BOOKMARK') assert.match(urls.get(r.id) ?? '', /allowWatchBookmarks=true/);
  });
});
