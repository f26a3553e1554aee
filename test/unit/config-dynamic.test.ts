import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig, mergeDynamicPatch } from '../../src/config/dynamic.js';

test('defaults are Patroni 3.0 defaults', () => {
  const { dynamic, warnings } = effectiveDynamicConfig(null, {});
  assert.deepEqual(warnings, []);
  assert.equal(dynamic.ttl, 30);
  assert.equal(dynamic.loop_wait, 10);
  assert.equal(dynamic.retry_timeout, 10);
  assert.equal(dynamic.maximum_lag_on_failover, 1048576);
  assert.equal(dynamic.postgresql.use_slots, true);
  assert.equal(dynamic.postgresql.use_pg_rewind, false);
  assert.equal(dynamic.pause, false);
});

test('the stored config wins over bootstrap.dcs once it exists', () => {
  const boot = { ttl: 20, loop_wait: 2, retry_timeout: 3 };
  assert.equal(effectiveDynamicConfig(null, boot).dynamic.ttl, 20);
  assert.equal(effectiveDynamicConfig({ ttl: 40 }, boot).dynamic.ttl, 40);
  assert.equal(effectiveDynamicConfig({ ttl: 40 }, boot).dynamic.loop_wait, 10, 'not mixed with bootstrap.dcs');
});

test('an invalid stored value keeps the default and warns naming the key', () => {
  const { dynamic, warnings } = effectiveDynamicConfig({ ttl: 'abc', postgresql: { use_slots: 'maybe' } }, {});
  assert.equal(dynamic.ttl, 30);
  assert.equal(dynamic.postgresql.use_slots, true);
  assert.ok(warnings.some((w) => w.startsWith('config.ttl:')));
  assert.ok(warnings.some((w) => w.startsWith('config.postgresql.use_slots:')));
});

test('numbers and booleans given as strings are accepted', () => {
  const { dynamic, warnings } = effectiveDynamicConfig({ ttl: '25', loop_wait: '5', retry_timeout: '5', pause: 'on' }, {});
  assert.deepEqual(warnings, []);
  assert.equal(dynamic.ttl, 25);
  assert.equal(dynamic.pause, true);
});

test('ttl down to 5 is accepted; below is raised to the floor', () => {
  assert.equal(effectiveDynamicConfig({ ttl: 5, loop_wait: 1, retry_timeout: 2 }, {}).dynamic.ttl, 5);
  const low = effectiveDynamicConfig({ ttl: 2, loop_wait: 1, retry_timeout: 1 }, {});
  assert.equal(low.dynamic.ttl, 5);
  assert.ok(low.warnings.some((w) => w.includes('minimum')));
});

test('loop_wait + 2*retry_timeout <= ttl is enforced by lowering retry_timeout', () => {
  const { dynamic, warnings } = effectiveDynamicConfig({ ttl: 10, loop_wait: 2, retry_timeout: 10 }, {});
  assert.ok(dynamic.loop_wait + 2 * dynamic.retry_timeout <= dynamic.ttl);
  assert.equal(dynamic.loop_wait, 2);
  assert.equal(dynamic.retry_timeout, 4);
  assert.equal(warnings.length, 1);
});

test('unknown keys survive in raw', () => {
  const { dynamic } = effectiveDynamicConfig({ ttl: 30, slots: { s1: { type: 'physical' } } }, {});
  assert.deepEqual(dynamic.raw.slots, { s1: { type: 'physical' } });
});

test('parameters: scalars kept, others warned about', () => {
  const { dynamic, warnings } = effectiveDynamicConfig({ postgresql: { parameters: { work_mem: '8MB', max_connections: 50, bad: { x: 1 } } } }, {});
  assert.deepEqual(dynamic.postgresql.parameters, { work_mem: '8MB', max_connections: 50 });
  assert.ok(warnings.some((w) => w.includes('parameters.bad')));
});

test('mergeDynamicPatch merges recursively and null deletes', () => {
  const cur = { ttl: 30, postgresql: { parameters: { a: 1, b: 2 }, use_slots: true } };
  const out = mergeDynamicPatch(cur, { ttl: 20, postgresql: { parameters: { a: null, c: 3 } } });
  assert.deepEqual(out, { ttl: 20, postgresql: { parameters: { b: 2, c: 3 }, use_slots: true } });
  assert.deepEqual(cur.postgresql.parameters, { a: 1, b: 2 }, 'the input is not mutated');
});

test('loop_wait is lowered too when retry_timeout alone cannot fit', () => {
  const { dynamic, warnings } = effectiveDynamicConfig({ ttl: 5, loop_wait: 10, retry_timeout: 10 }, {});
  assert.equal(dynamic.ttl, 5);
  assert.equal(dynamic.retry_timeout, 1);
  assert.equal(dynamic.loop_wait, 3);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /loop_wait \+ 2\*retry_timeout/);
});

test('a valid timing is left alone', () => {
  const { dynamic, warnings } = effectiveDynamicConfig(null, { ttl: 20, loop_wait: 4, retry_timeout: 8 });
  assert.deepEqual([dynamic.ttl, dynamic.loop_wait, dynamic.retry_timeout], [20, 4, 8]);
  assert.deepEqual(warnings, []);
});

test('master_* timeouts are read when primary_* are absent', () => {
  assert.equal(effectiveDynamicConfig({ master_start_timeout: 60 }, {}).dynamic.primary_start_timeout, 60);
  assert.equal(effectiveDynamicConfig({ master_start_timeout: 60, primary_start_timeout: 10 }, {}).dynamic.primary_start_timeout, 10);
  assert.deepEqual(effectiveDynamicConfig({ master_start_timeout: 60 }, {}).dynamic.raw, { master_start_timeout: 60 }, 'raw as stored');
});

test('malformed postgresql sections never crash', () => {
  const a = effectiveDynamicConfig({ postgresql: 'nope' }, {});
  assert.equal(a.dynamic.postgresql.use_slots, true);
  assert.ok(a.warnings.some((w) => w.startsWith('config.postgresql:')));
  const b = effectiveDynamicConfig({ postgresql: { parameters: [1, 2] }, synchronous_mode: 'quorum', pause: 3 }, {});
  assert.deepEqual(b.dynamic.postgresql.parameters, {});
  assert.equal(b.dynamic.synchronous_mode, 'quorum');
  assert.equal(b.dynamic.pause, false);
  assert.ok(b.warnings.some((w) => w.startsWith('config.postgresql.parameters:')));
  assert.ok(b.warnings.some((w) => w.startsWith('config.pause:')));
});

test('mergeDynamicPatch replaces lists and scalars-with-objects, deletes top-level keys', () => {
  const out = mergeDynamicPatch({ ttl: 30, pause: true, postgresql: { pg_hba: ['a', 'b'] }, x: 1 }, { pause: null, postgresql: { pg_hba: ['c'] }, x: { y: 2 } });
  assert.deepEqual(out, { ttl: 30, postgresql: { pg_hba: ['c'] }, x: { y: 2 } });
});
