import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig, fitTtlRule, mergeDynamicPatch, TIMING_FLOORS } from '../../src/config/dynamic.js';
import { DYNAMIC_DEFAULTS } from '../../src/config/types.js';

const timing = (src: Record<string, unknown>) => {
  const { dynamic, warnings } = effectiveDynamicConfig(src, {});
  return { t: [dynamic.ttl, dynamic.loop_wait, dynamic.retry_timeout], warnings };
};

test('defaults are Patroni 3.0 defaults', () => {
  const { dynamic, warnings } = effectiveDynamicConfig(null, {});
  assert.deepEqual(warnings, []);
  const { raw, postgresql, ...scalars } = dynamic;
  assert.deepEqual(scalars, { ...DYNAMIC_DEFAULTS });
  assert.equal(scalars.ttl, 30);
  assert.equal(scalars.maximum_lag_on_failover, 1048576);
  assert.deepEqual(postgresql, { use_pg_rewind: false, use_slots: true, parameters: {} });
  assert.deepEqual(raw, {});
});

test('the stored config wins over bootstrap.dcs once it holds anything', () => {
  const boot = { ttl: 20, loop_wait: 2, retry_timeout: 3, postgresql: { use_pg_rewind: true } };
  assert.equal(effectiveDynamicConfig(null, boot).dynamic.ttl, 20);
  assert.equal(effectiveDynamicConfig(null, boot).dynamic.postgresql.use_pg_rewind, true);
  const stored = effectiveDynamicConfig({ ttl: 40 }, boot).dynamic;
  assert.equal(stored.ttl, 40);
  assert.equal(stored.loop_wait, 10, 'not mixed with bootstrap.dcs: the default');
  assert.equal(stored.postgresql.use_pg_rewind, false);
  assert.deepEqual(stored.raw, { ttl: 40 });
  assert.equal(effectiveDynamicConfig({}, boot).dynamic.ttl, 20, 'an empty stored config counts as none (Patroni)');
});

test('an invalid stored value keeps the default and warns naming the key', () => {
  const { dynamic, warnings } = effectiveDynamicConfig(
    { ttl: 'abc', maximum_lag_on_failover: [1], postgresql: { use_slots: 'maybe' }, synchronous_node_count: 0, pause: 3 },
    {},
  );
  assert.equal(dynamic.ttl, 30);
  assert.equal(dynamic.maximum_lag_on_failover, 1048576);
  assert.equal(dynamic.postgresql.use_slots, true);
  assert.equal(dynamic.synchronous_node_count, 1);
  assert.equal(dynamic.pause, false);
  assert.deepEqual(warnings, [
    'config.ttl: expected a number, got "abc"; using 30',
    'config.maximum_lag_on_failover: expected a number, got [1]; using 1048576',
    'config.synchronous_node_count: must be at least 1, got 0; using 1',
    'config.pause: expected a boolean, got 3; using false',
    'config.postgresql.use_slots: expected a boolean, got "maybe"; using true',
  ]);
});

test('warnings about bootstrap.dcs values name bootstrap.dcs', () => {
  const { warnings } = effectiveDynamicConfig(null, { loop_wait: 'soon' });
  assert.deepEqual(warnings, ['bootstrap.dcs.loop_wait: expected a number, got "soon"; using 10']);
});

test('numbers and booleans given as strings are accepted; numbers are truncated like Python int()', () => {
  const { dynamic, warnings } = effectiveDynamicConfig(
    { ttl: '25', loop_wait: 5.9, retry_timeout: ' 5 ', pause: 'on', check_timeline: 'yes', synchronous_mode: 'true' },
    {},
  );
  assert.deepEqual(warnings, []);
  assert.deepEqual([dynamic.ttl, dynamic.loop_wait, dynamic.retry_timeout], [25, 5, 5]);
  assert.equal(dynamic.pause, true);
  assert.equal(dynamic.check_timeline, true);
  assert.equal(dynamic.synchronous_mode, true);
  assert.equal(effectiveDynamicConfig({ ttl: '25.5' }, {}).dynamic.ttl, 30, 'int("25.5") fails in Python too');
  assert.equal(effectiveDynamicConfig({ synchronous_mode: 'quorum' }, {}).dynamic.synchronous_mode, 'quorum');
});

test('timing floors: ttl 5, loop_wait 1, retry_timeout 1; below is raised with a warning', () => {
  assert.deepEqual(TIMING_FLOORS, { ttl: 5, loop_wait: 1, retry_timeout: 1 });
  assert.deepEqual(timing({ ttl: 5, loop_wait: 1, retry_timeout: 2 }), { t: [5, 1, 2], warnings: [] });
  const low = timing({ ttl: 2, loop_wait: 0, retry_timeout: -3 });
  assert.deepEqual(low.t, [5, 1, 1]);
  assert.deepEqual(low.warnings, [
    'config.ttl: 2 is below the minimum 5; using 5',
    'config.loop_wait: 0 is below the minimum 1; using 1',
    'config.retry_timeout: -3 is below the minimum 1; using 1',
  ]);
});

test('loop_wait + 2*retry_timeout <= ttl: loop_wait is lowered first (Patroni 3.2+)', () => {
  const { t, warnings } = timing({ ttl: 30, loop_wait: 15, retry_timeout: 10 });
  assert.deepEqual(t, [30, 10, 10]);
  assert.deepEqual(warnings, [
    'config.ttl: loop_wait + 2*retry_timeout must not exceed ttl 30 (was loop_wait 15, retry_timeout 10); using loop_wait 10, retry_timeout 10',
  ]);
});

test('when loop_wait at its floor is not enough, retry_timeout is lowered too', () => {
  assert.deepEqual(timing({ ttl: 10, loop_wait: 2, retry_timeout: 10 }).t, [10, 1, 4]);
  assert.deepEqual(timing({ ttl: 5, loop_wait: 10, retry_timeout: 10 }).t, [5, 1, 2]);
  assert.deepEqual(timing({ ttl: 20 }).t, [20, 1, 9], 'defaults for the others');
});

test('fitTtlRule always yields values that satisfy the rule and respect the floors', () => {
  for (let ttl = TIMING_FLOORS.ttl; ttl <= 40; ttl++) {
    for (const loop_wait of [1, 2, 5, 10, 30]) {
      for (const retry_timeout of [1, 3, 10, 25]) {
        const f = fitTtlRule({ ttl, loop_wait, retry_timeout });
        const where = JSON.stringify({ ttl, loop_wait, retry_timeout, f });
        assert.ok(f.loop_wait + 2 * f.retry_timeout <= f.ttl, where);
        assert.ok(f.loop_wait >= 1 && f.retry_timeout >= 1 && f.ttl === ttl, where);
        assert.ok(f.loop_wait <= loop_wait && f.retry_timeout <= retry_timeout, `never raised: ${where}`);
        if (loop_wait + 2 * retry_timeout <= ttl) assert.deepEqual(f, { ttl, loop_wait, retry_timeout }, where);
      }
    }
  }
});

test('a valid timing is left alone', () => {
  const { dynamic, warnings } = effectiveDynamicConfig(null, { ttl: 20, loop_wait: 4, retry_timeout: 8 });
  assert.deepEqual([dynamic.ttl, dynamic.loop_wait, dynamic.retry_timeout], [20, 4, 8]);
  assert.deepEqual(warnings, []);
});

test('unknown keys survive in raw; raw is a copy', () => {
  const stored = { ttl: 30, slots: { s1: { type: 'physical' } } };
  const { dynamic } = effectiveDynamicConfig(stored, {});
  assert.deepEqual(dynamic.raw.slots, { s1: { type: 'physical' } });
  (dynamic.raw.slots as Record<string, unknown>).s2 = {};
  assert.deepEqual(Object.keys(stored.slots), ['s1']);
});

test('master_* timeouts are read when primary_* are absent; raw stays as stored', () => {
  assert.equal(effectiveDynamicConfig({ master_start_timeout: 60 }, {}).dynamic.primary_start_timeout, 60);
  assert.equal(effectiveDynamicConfig({ master_stop_timeout: '7' }, {}).dynamic.primary_stop_timeout, 7);
  assert.equal(effectiveDynamicConfig({ master_start_timeout: 60, primary_start_timeout: 10 }, {}).dynamic.primary_start_timeout, 10);
  assert.deepEqual(effectiveDynamicConfig({ master_start_timeout: 60 }, {}).dynamic.raw, { master_start_timeout: 60 });
});

test('parameters: scalars kept, null skipped, others warned about', () => {
  const { dynamic, warnings } = effectiveDynamicConfig(
    { postgresql: { parameters: { work_mem: '8MB', max_connections: 50, fsync: true, gone: null, bad: { x: 1 } }, pg_hba: ['local all all trust'] } },
    {},
  );
  assert.deepEqual(dynamic.postgresql.parameters, { work_mem: '8MB', max_connections: 50, fsync: true });
  assert.deepEqual(dynamic.postgresql.pg_hba, ['local all all trust']);
  assert.deepEqual(warnings, ['config.postgresql.parameters.bad: expected a string, number or boolean, got {"x":1}; using null']);
});

test('malformed sections never crash', () => {
  for (const stored of [
    { postgresql: 'nope' },
    { postgresql: { parameters: [1, 2], pg_hba: 'x' } },
    { postgresql: null, ttl: null },
    { ttl: { a: 1 }, loop_wait: true, retry_timeout: [] },
  ]) {
    const { dynamic, warnings } = effectiveDynamicConfig(stored as Record<string, unknown>, {});
    assert.equal(dynamic.postgresql.use_slots, true);
    assert.deepEqual(dynamic.postgresql.parameters, {});
    assert.equal(dynamic.postgresql.pg_hba, undefined);
    assert.ok(dynamic.loop_wait + 2 * dynamic.retry_timeout <= dynamic.ttl);
    for (const w of warnings) assert.match(w, /^config\.(postgresql|ttl|loop_wait|retry_timeout)/);
  }
  assert.deepEqual(effectiveDynamicConfig({ postgresql: null, ttl: null }, {}).warnings, [], 'null means absent');
});

test('mergeDynamicPatch merges recursively and null deletes', () => {
  const cur = { ttl: 30, postgresql: { parameters: { a: 1, b: 2 }, use_slots: true } };
  const out = mergeDynamicPatch(cur, { ttl: 20, postgresql: { parameters: { a: null, c: 3 } } });
  assert.deepEqual(out, { ttl: 20, postgresql: { parameters: { b: 2, c: 3 }, use_slots: true } });
  assert.deepEqual(cur, { ttl: 30, postgresql: { parameters: { a: 1, b: 2 }, use_slots: true } }, 'the input is not mutated');
});

test('mergeDynamicPatch replaces lists and scalars, a mapping replaces a scalar, deletes top-level keys', () => {
  const patch = { pause: null, postgresql: { pg_hba: ['c'] }, x: { y: 2 }, missing: null };
  const out = mergeDynamicPatch({ ttl: 30, pause: true, postgresql: { pg_hba: ['a', 'b'] }, x: 1 }, patch);
  assert.deepEqual(out, { ttl: 30, postgresql: { pg_hba: ['c'] }, x: { y: 2 } });
  (out.x as Record<string, unknown>).y = 3;
  assert.deepEqual(patch.x, { y: 2 }, 'the patch is not shared with the result');
});
