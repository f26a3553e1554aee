/** Kinds, discovery documents and URL routing of the local API server. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiGroupListDoc, apiResourceListDoc, compareKubeVersions } from '../../src/kube/apiserver/discovery.js';
import type { JsonObject } from '../../src/kube/apiserver/json.js';
import { Registry } from '../../src/kube/apiserver/registry.js';
import { parseRoute } from '../../src/kube/apiserver/routes.js';

const crd = {
  metadata: { name: 'postgresqls.acid.example.com' },
  spec: {
    group: 'acid.example.com',
    scope: 'Namespaced',
    names: { kind: 'postgresql', plural: 'postgresqls', shortNames: ['pg'] },
    versions: [
      { name: 'v1beta1', served: true, storage: false },
      { name: 'v1', served: true, storage: true, subresources: { status: {} } },
    ],
  },
};

test('every kind of the issue is served with its group, scope and subresources', () => {
  const r = new Registry();
  const want: [string, string, boolean][] = [
    ['', 'pods', true], ['', 'services', true], ['', 'endpoints', true], ['', 'configmaps', true], ['', 'secrets', true],
    ['', 'serviceaccounts', true], ['', 'persistentvolumeclaims', true], ['', 'events', true], ['', 'namespaces', false],
    ['apps', 'statefulsets', true], ['policy', 'poddisruptionbudgets', true], ['rbac.authorization.k8s.io', 'roles', true],
    ['rbac.authorization.k8s.io', 'rolebindings', true], ['coordination.k8s.io', 'leases', true],
    ['apiextensions.k8s.io', 'customresourcedefinitions', false],
  ];
  for (const [g, p, namespaced] of want) assert.equal(r.find(g, 'v1', p)?.namespaced, namespaced, `${g}/${p}`);
  const core = apiResourceListDoc(r, '', 'v1')!;
  const names = (core.resources as JsonObject[]).map((x) => x.name);
  assert.ok(names.includes('pods/status') && names.includes('services/status') && !names.includes('configmaps/status'));
  const apps = apiResourceListDoc(r, 'apps', 'v1')!;
  const scale = (apps.resources as JsonObject[]).find((x) => x.name === 'statefulsets/scale')!;
  assert.equal(scale.kind, 'Scale');
});

test('a CRD adds its group to /apis and its resources (with shortNames and status) to /apis/<g>/<v>; preferred version is the GA one', () => {
  const r = new Registry();
  assert.equal(apiResourceListDoc(r, 'acid.example.com', 'v1'), undefined);
  r.registerCrd(crd as unknown as JsonObject);
  const groups = (apiGroupListDoc(r).groups as JsonObject[]).find((g) => g.name === 'acid.example.com')!;
  assert.deepEqual(groups.preferredVersion, { groupVersion: 'acid.example.com/v1', version: 'v1' });
  assert.deepEqual((groups.versions as JsonObject[]).map((v) => v.version), ['v1', 'v1beta1']);
  const list = apiResourceListDoc(r, 'acid.example.com', 'v1beta1')!;
  const main = (list.resources as JsonObject[])[0]!;
  assert.deepEqual([main.name, main.singularName, main.kind, main.namespaced, main.shortNames], ['postgresqls', 'postgresql', 'postgresql', true, ['pg']]);
  assert.equal((list.resources as JsonObject[])[1]!.name, 'postgresqls/status');
  r.unregisterCrd('postgresqls.acid.example.com');
  assert.equal(apiResourceListDoc(r, 'acid.example.com', 'v1'), undefined);
});

test('kube-aware version order', () => {
  assert.deepEqual(['v1alpha1', 'v1', 'v2beta1', 'v1beta2', 'v2', 'foo'].sort(compareKubeVersions), ['v2', 'v1', 'v2beta1', 'v1beta2', 'v1alpha1', 'foo']);
});

test('routes: namespaced, cluster-wide, cluster-scoped, subresources, /watch/ prefix, unknown paths', () => {
  const r = new Registry();
  const route = (p: string) => {
    const x = parseRoute(p, r);
    return x.kind === 'resource' ? { plural: x.type.plural, ns: x.namespace, name: x.name, sub: x.subresource, watch: x.watchPath } : x.kind;
  };
  assert.deepEqual(route('/api/v1/namespaces/default/configmaps'), { plural: 'configmaps', ns: 'default', name: undefined, sub: undefined, watch: false });
  assert.deepEqual(route('/api/v1/namespaces/default/pods/demo-0/status'), { plural: 'pods', ns: 'default', name: 'demo-0', sub: 'status', watch: false });
  assert.deepEqual(route('/api/v1/pods'), { plural: 'pods', ns: undefined, name: undefined, sub: undefined, watch: false });
  assert.deepEqual(route('/api/v1/namespaces/team'), { plural: 'namespaces', ns: '', name: 'team', sub: undefined, watch: false });
  assert.deepEqual(route('/api/v1/namespaces/team/status'), { plural: 'namespaces', ns: '', name: 'team', sub: 'status', watch: false });
  assert.deepEqual(route('/api/v1/watch/namespaces/default/pods'), { plural: 'pods', ns: 'default', name: undefined, sub: undefined, watch: true });
  assert.deepEqual(route('/apis/apps/v1/namespaces/default/statefulsets/pg/scale'), { plural: 'statefulsets', ns: 'default', name: 'pg', sub: 'scale', watch: false });
  assert.equal(route('/api/v1/namespaces/default/configmaps/x/status'), 'notFound');
  assert.equal(route('/api/v1/pods/x'), 'notFound');
  assert.equal(route('/apis/acid.example.com/v1/namespaces/default/postgresqls'), 'notFound');
  assert.equal(route('/openapi/v3'), 'notFound');
  assert.equal(route('/version'), 'version');
  assert.equal(route('/apis/apps/v1'), 'groupVersion');
});
