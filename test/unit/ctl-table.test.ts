import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prettyTable, renderTable } from '../../src/ctl/table.js';

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

// Expected outputs printed by PrettyTable 3.6 (Debian's python3-prettytable) with patronictl's settings.
test('prettyTable: right-aligned columns align their header too; the title sits in the top border', () => {
  const t = prettyTable(['Member', 'TL', 'Lag in MB'], [['m1', '1', ''], ['member-2', '12', '0']], { title: ' Cluster: demo ', align: { TL: 'r', 'Lag in MB': 'r' } });
  assert.equal(
    t,
    [
      '+ Cluster: demo +-----------+',
      '| Member   | TL | Lag in MB |',
      '+----------+----+-----------+',
      '| m1       |  1 |           |',
      '| member-2 | 12 |         0 |',
      '+----------+----+-----------+',
    ].join('\n'),
  );
  assert.equal(prettyTable(['TL', 'LSN'], [['1000', '123456789']], { align: { TL: 'r', LSN: 'r' } }).split('\n')[1], '|   TL |       LSN |');
});

test('prettyTable: a multi-line cell makes every row framed (hrules=ALL)', () => {
  const t = prettyTable(['Member', 'Tags'], [['m1', 'a: 1\nb: 2'], ['member-2', '']]);
  assert.equal(
    t,
    [
      '+----------+------+',
      '| Member   | Tags |',
      '+----------+------+',
      '| m1       | a: 1 |',
      '|          | b: 2 |',
      '+----------+------+',
      '| member-2 |      |',
      '+----------+------+',
    ].join('\n'),
  );
});

test('prettyTable: no rows, and a title longer than the table is cut', () => {
  assert.equal(prettyTable(['TL', 'LSN'], []), ['+----+-----+', '| TL | LSN |', '+----+-----+', '+----+-----+'].join('\n'));
  assert.equal(prettyTable(['A'], [['x']], { title: ' Cluster: a-very-long-name ' }).split('\n')[0], '+ Cl+');
});
