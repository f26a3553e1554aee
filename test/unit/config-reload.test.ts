/** SIGHUP / POST /reload: live settings are applied in place, start-only ones are reported. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyReload } from '../../src/config/reload.js';
import { memberConfig } from '../helpers/ha-fixtures.js';

const copy = () => structuredClone(memberConfig);

test('changed tags and parameters are applied into the running config object', () => {
  const current = copy();
  const tagsBefore = current.tags;
  const next = copy();
  next.tags = { nofailover: true, rack: 'r1' };
  next.postgresql.parameters = { work_mem: '8MB' };
  const r = applyReload(current, next);
  assert.deepEqual(r.applied.sort(), ['postgresql.parameters', 'tags']);
  assert.deepEqual(r.needsRestart, []);
  assert.deepEqual(current.tags, { nofailover: true, rack: 'r1' });
  assert.deepEqual(current.postgresql.parameters, { work_mem: '8MB' });
  assert.notEqual(current.tags, tagsBefore, 'replaced, so readers of config.tags see the new value');
  next.tags.rack = 'r2';
  assert.equal(current.tags.rack, 'r1', 'a copy, not shared with the re-read file');
});

test('identity, addresses and the data dir are reported as needing a restart and left alone', () => {
  const current = copy();
  const next = copy();
  next.name = 'other';
  next.postgresql.data_dir = '/elsewhere';
  next.restapi.listen = '127.0.0.1:9999';
  const r = applyReload(current, next);
  assert.deepEqual(r.applied, []);
  assert.deepEqual(r.needsRestart.sort(), ['name', 'postgresql.data_dir', 'restapi.listen']);
  assert.equal(current.name, memberConfig.name);
  assert.equal(current.postgresql.data_dir, memberConfig.postgresql.data_dir);
});

test('a removed optional setting is removed; nothing changed → nothing applied', () => {
  const current = copy();
  current.restapi.authentication = { username: 'u', password: 'p' };
  const next = copy();
  assert.deepEqual(applyReload(current, next).applied, ['restapi.authentication']);
  assert.equal(current.restapi.authentication, undefined);
  assert.deepEqual(applyReload(current, copy()), { applied: [], needsRestart: [] });
});
