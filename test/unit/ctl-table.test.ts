import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable } from '../../src/ctl/table.js';

test('renderTable pads columns to the widest cell and draws borders', () => {
  const t = renderTable(['Member', 'Role'], [['m1', 'Leader'], ['member-22', null]], 'Cluster: demo');
  const lines = t.split('\n');
  assert.equal(lines.length, 6);
  assert.equal(lines[1], '| Member    | Role   |');
  assert.equal(lines[3], '| m1        | Leader |');
  assert.equal(lines[4], '| member-22 |        |');
  assert.ok(lines[0]!.includes(' Cluster: demo '));
  assert.equal(new Set(lines.map((l) => l.length)).size, 1, 'all lines have the same width');
});
