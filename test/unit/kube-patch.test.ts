/** JSON merge patch, JSON patch and strategic merge patch as apiserver applies them (kube-api-subset.md §3, §5). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatch, mergePatch, parseJsonPatch } from '../../src/kube/apiserver/patch.js';
import { smpSchemaFor, strategicMerge } from '../../src/kube/apiserver/strategic.js';
import { ApiError } from '../../src/kube/apiserver/errors.js';
import type { Json } from '../../src/kube/apiserver/json.js';

test('merge patch (RFC 7386): null deletes, objects merge, lists replace; input untouched', () => {
  const orig = { data: { a: '1', b: '2' }, list: [1, 2], keep: true };
  const out = mergePatch(orig, { data: { a: null, c: '3' }, list: [3] });
  assert.deepEqual(out, { data: { b: '2', c: '3' }, list: [3], keep: true });
  assert.deepEqual(orig, { data: { a: '1', b: '2' }, list: [1, 2], keep: true });
  assert.deepEqual(mergePatch({ a: 1 }, 'x'), 'x');
});

test('JSON patch: add/remove/replace/move/copy/test, array append and ~ escapes', () => {
  const doc = { metadata: { labels: { 'a/b': '1' } }, spec: { list: [1, 2] } };
  const out = jsonPatch(
    doc,
    parseJsonPatch([
      { op: 'add', path: '/metadata/labels/role', value: 'master' },
      { op: 'remove', path: '/metadata/labels/a~1b' },
      { op: 'add', path: '/spec/list/-', value: 3 },
      { op: 'add', path: '/spec/list/0', value: 0 },
      { op: 'replace', path: '/spec/list/1', value: 10 },
      { op: 'copy', from: '/spec/list', path: '/spec/copy' },
      { op: 'move', from: '/spec/copy', path: '/spec/moved' },
      { op: 'test', path: '/metadata/labels/role', value: 'master' },
    ]),
  );
  assert.deepEqual(out, { metadata: { labels: { role: 'master' } }, spec: { list: [0, 10, 2, 3], moved: [0, 10, 2, 3] } });
  assert.deepEqual(doc.spec.list, [1, 2]);
});

test('JSON patch failures: test mismatch and missing paths are 422, a non-array document is 400', () => {
  const is = (code: number) => (e: unknown) => e instanceof ApiError && e.code === code;
  assert.throws(() => jsonPatch({ a: 1 }, parseJsonPatch([{ op: 'test', path: '/a', value: 2 }])), is(422));
  assert.throws(() => jsonPatch({ a: 1 }, parseJsonPatch([{ op: 'remove', path: '/b' }])), is(422));
  assert.throws(() => jsonPatch({ a: 1 }, parseJsonPatch([{ op: 'replace', path: '/x/y', value: 1 }])), is(422));
  assert.throws(() => parseJsonPatch({ op: 'add' } as Json), is(400));
});

const sts = {
  metadata: { name: 'pg', labels: { app: 'pg' }, finalizers: ['a'] },
  spec: {
    replicas: 1,
    template: {
      spec: {
        containers: [
          { name: 'postgres', image: 'postgres:15', env: [{ name: 'A', value: '1' }, { name: 'B', value: 'x' }], ports: [{ containerPort: 5432, protocol: 'TCP' }] },
          { name: 'sidecar', image: 'busybox' },
        ],
        volumes: [{ name: 'data', emptyDir: {} }],
        tolerations: [{ key: 'x' }],
      },
    },
  },
};
const smp = (o: unknown, p: unknown, kind = 'StatefulSet'): Json | undefined => strategicMerge(o as Json, p as Json, smpSchemaFor(kind));

test('SMP merges containers by name and env by name (what kubectl apply sends), other containers kept', () => {
  // Captured from kubectl apply (kube-api-subset.md §3): a plain JSON merge would replace both lists.
  const patch = {
    spec: {
      template: {
        spec: {
          $setElementOrder: undefined,
          '$setElementOrder/containers': [{ name: 'postgres' }, { name: 'sidecar' }],
          containers: [{ '$setElementOrder/env': [{ name: 'A' }, { name: 'B' }], env: [{ name: 'A', value: '2' }], image: 'postgres:16', name: 'postgres' }],
        },
      },
    },
  } as unknown as Json;
  const out = smp(sts, patch) as typeof sts;
  const [pgc, side] = out.spec.template.spec.containers;
  assert.equal(pgc!.image, 'postgres:16');
  assert.deepEqual(pgc!.env, [{ name: 'A', value: '2' }, { name: 'B', value: 'x' }]);
  assert.deepEqual(pgc!.ports, [{ containerPort: 5432, protocol: 'TCP' }]);
  assert.deepEqual(side, { name: 'sidecar', image: 'busybox' });
  assert.equal(sts.spec.template.spec.containers[0]!.image, 'postgres:15', 'input not mutated');
});

test('SMP: new keyed elements append, $patch: delete removes one, $patch: replace replaces the list', () => {
  const added = smp(sts, { spec: { template: { spec: { containers: [{ name: 'exporter', image: 'e' }] } } } }) as typeof sts;
  assert.deepEqual(added.spec.template.spec.containers.map((c) => c.name), ['postgres', 'sidecar', 'exporter']);
  const deleted = smp(sts, { spec: { template: { spec: { containers: [{ name: 'sidecar', $patch: 'delete' }] } } } }) as typeof sts;
  assert.deepEqual(deleted.spec.template.spec.containers.map((c) => c.name), ['postgres']);
  const replaced = smp(sts, { spec: { template: { spec: { containers: [{ $patch: 'replace' }, { name: 'only', image: 'o' }] } } } }) as typeof sts;
  assert.deepEqual(replaced.spec.template.spec.containers, [{ name: 'only', image: 'o' }]);
});

test('SMP: lists without a strategy (tolerations, Endpoints subsets) are replaced whole', () => {
  const out = smp(sts, { spec: { template: { spec: { tolerations: [{ key: 'y' }] } } } }) as typeof sts;
  assert.deepEqual(out.spec.template.spec.tolerations, [{ key: 'y' }]);
  const ep = { subsets: [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 5432 }] }] };
  assert.deepEqual(smp(ep, { subsets: [{ addresses: [{ ip: '10.0.0.2' }], ports: [{ port: 5432, name: 'postgresql' }] }] }, 'Endpoints'), {
    subsets: [{ addresses: [{ ip: '10.0.0.2' }], ports: [{ port: 5432, name: 'postgresql' }] }],
  });
  assert.deepEqual(smp(ep, { subsets: [] }, 'Endpoints'), { subsets: [] });
});

test('SMP on metadata: null deletes a label/annotation (Patroni touch_member), finalizers merge as a set', () => {
  const pod = { metadata: { labels: { role: 'master', app: 'p' }, annotations: { status: '{}' }, finalizers: ['a'] } };
  const out = smp(pod, { metadata: { labels: { role: null }, annotations: { status: '{"state":"running"}' }, finalizers: ['b', 'a'] } }, 'Pod');
  assert.deepEqual(out, { metadata: { labels: { app: 'p' }, annotations: { status: '{"state":"running"}' }, finalizers: ['a', 'b'] } });
  const fewer = smp(pod, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }, 'Pod');
  assert.deepEqual((fewer as typeof pod).metadata.finalizers, []);
});

test('SMP: service ports merge by port, container ports by containerPort; missing merge key is 422', () => {
  const svc = { spec: { ports: [{ port: 5432, name: 'pg' }, { port: 8008, name: 'api' }] } };
  assert.deepEqual(smp(svc, { spec: { ports: [{ port: 8008, targetPort: 8009 }] } }, 'Service'), {
    spec: { ports: [{ port: 5432, name: 'pg' }, { port: 8008, name: 'api', targetPort: 8009 }] },
  });
  assert.throws(() => smp(svc, { spec: { ports: [{ name: 'x' }] } }, 'Service'), (e: unknown) => e instanceof ApiError && e.code === 422);
});

test('SMP $setElementOrder reorders patched items and keeps server-only items by their live position', () => {
  const pod = { spec: { containers: [{ name: 'a' }, { name: 'server-only' }, { name: 'b' }] } };
  const out = smp(pod, { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }], containers: [{ name: 'b', image: 'x' }] } }, 'Pod') as typeof pod;
  // upstream mergeSortedSlice: server-only (live index 1) goes before b (live index 2), whose order with a comes from the patch
  assert.deepEqual(out.spec.containers.map((c) => c.name), ['server-only', 'b', 'a']);
  const tail = smp({ spec: { containers: [{ name: 'a' }, { name: 'b' }, { name: 'x' }] } }, { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }] } }, 'Pod') as typeof pod;
  assert.deepEqual(tail.spec.containers.map((c) => c.name), ['b', 'a', 'x']);
});

test('SMP $retainKeys drops the keys not listed (volume source switch)', () => {
  const pod = { spec: { volumes: [{ name: 'data', emptyDir: {} }] } };
  const out = smp(pod, { spec: { volumes: [{ name: 'data', $retainKeys: ['name', 'hostPath'], hostPath: { path: '/x' } }] } }, 'Pod');
  assert.deepEqual(out, { spec: { volumes: [{ name: 'data', hostPath: { path: '/x' } }] } });
});
