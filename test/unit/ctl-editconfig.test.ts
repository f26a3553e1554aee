import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyConfigChanges, deepEqual, mergePatch, patchConfig, pgPairs, yamlMapping } from '../../src/ctl/editconfig.js';
import { ExitError } from '../../src/util/errors.js';

const base = { ttl: 30, loop_wait: 10, postgresql: { use_pg_rewind: true, parameters: { max_connections: 100 } } };

test('--set: dotted paths, YAML 1.1 values, empty deletes and drops emptied mappings', () => {
  assert.deepEqual(applyConfigChanges(base, ['loop_wait=5', 'synchronous_mode=on', 'postgresql.parameters.max_connections=']), {
    ttl: 30,
    loop_wait: 5,
    synchronous_mode: true,
    postgresql: { use_pg_rewind: true },
  });
  assert.deepEqual(base.postgresql.parameters, { max_connections: 100 }, 'the input is not changed');
  assert.deepEqual(applyConfigChanges({}, ['a.b.c=[1, 2]']), { a: { b: { c: [1, 2] } } });
});

test('--pg: a GUC name with dots stays one key', () => {
  assert.deepEqual(pgPairs(['  auto_explain.log_min_duration=1s']), ['postgresql.parameters.auto_explain.log_min_duration=1s']);
  const out = applyConfigChanges(base, pgPairs(['auto_explain.log_min_duration=1s']));
  assert.deepEqual(out.postgresql, { use_pg_rewind: true, parameters: { max_connections: 100, 'auto_explain.log_min_duration': '1s' } });
});

test('a pair without = is a usage error', () => {
  assert.throws(() => applyConfigChanges(base, ['loop_wait']), (e: unknown) => e instanceof ExitError && e.code === 2 && /Invalid parameter setting loop_wait/.test(e.message));
});

test('patchConfig (--apply): mappings merge, null deletes, the rest replaces', () => {
  assert.deepEqual(patchConfig(base, { ttl: null, postgresql: { parameters: { work_mem: '8MB' } }, pause: true }), {
    loop_wait: 10,
    postgresql: { use_pg_rewind: true, parameters: { max_connections: 100, work_mem: '8MB' } },
    pause: true,
  });
});

test('mergePatch: the smallest merge patch from before to after', () => {
  const after = { loop_wait: 5, postgresql: { use_pg_rewind: true, parameters: { work_mem: '8MB' } }, tags: ['a'] };
  const patch = mergePatch(base, after);
  assert.deepEqual(patch, { ttl: null, loop_wait: 5, postgresql: { parameters: { max_connections: null, work_mem: '8MB' } }, tags: ['a'] });
  assert.deepEqual(patchConfig(base, patch), after, 'applying it gives the edited config');
  assert.deepEqual(mergePatch(base, structuredClone(base)), {});
  assert.ok(deepEqual(base, structuredClone(base)));
  assert.ok(!deepEqual({ a: [1] }, { a: [1, 2] }));
});

test('yamlMapping: empty is {}, a non-mapping or bad YAML is a usage error', () => {
  assert.deepEqual(yamlMapping('', 'f'), {});
  assert.deepEqual(yamlMapping('ttl: 20\npause: yes\n', 'f'), { ttl: 20, pause: true });
  for (const bad of ['- a', 'a: [']) assert.throws(() => yamlMapping(bad, 'f'), (e: unknown) => e instanceof ExitError && e.code === 2);
});
