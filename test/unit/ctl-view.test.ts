import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterAsJson } from '../../src/api/cluster-json.js';
import { buildCluster, type RawNode } from '../../src/dcs/codec.js';
import type { Cluster } from '../../src/dcs/types.js';
import { formatOutput, membersOutput, renderHistory, renderMembers, roleTitle, topologySort } from '../../src/ctl/view.js';

const MB = 1024 * 1024;

function member(name: string, port: number, data: Record<string, unknown> = {}): RawNode {
  return {
    key: `members/${name}`,
    value: JSON.stringify({ conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://127.0.0.1:${port + 1000}/patroni`, state: 'running', role: 'replica', timeline: 2, ...data }),
    version: 1,
  };
}

function snapshot(extra: RawNode[] = [], members?: RawNode[]): Cluster {
  return buildCluster([
    { key: 'initialize', value: '7712', version: 1 },
    { key: 'config', value: JSON.stringify({ ttl: 20, loop_wait: 1 }), version: 2 },
    { key: 'leader', value: 'm1', version: 3 },
    { key: 'status', value: JSON.stringify({ optime: 10 * MB }), version: 4 },
    ...(members ?? [
      member('m1', 5432, { role: 'master', xlog_location: 9 * MB }),
      member('m2', 5432, { xlog_location: 10 * MB - MB / 2 }),
      member('m3', 5432, { xlog_location: 7 * MB + MB / 2, tags: { replicatefrom: 'm2', nofailover: true } }),
    ]),
    ...extra,
  ]);
}

const rows = (text: string): string[][] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('| '))
    .map((l) => l.slice(2, -2).split(' | ').map((c) => c.trim()));

test('list: roles as patronictl titles them, lag in MB rounded half to even from the status optime', () => {
  const c = snapshot([{ key: 'sync', value: JSON.stringify({ leader: 'm1', sync_standby: 'm2' }), version: 5 }]);
  const text = renderMembers(clusterAsJson(c, 'demo'), 'demo', 'pretty');
  const [head, ...body] = rows(text);
  assert.deepEqual(head, ['Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB', 'Tags']);
  assert.deepEqual(body[0], ['m1', '127.0.0.1:5432', 'Leader', 'running', '2', '', '']);
  assert.deepEqual(body[1], ['m2', '127.0.0.1:5432', 'Sync Standby', 'running', '2', '0', '']);
  // 2.5 MB behind rounds to 2 (Python's round), tags as YAML over two lines.
  assert.deepEqual(body[2], ['m3', '127.0.0.1:5432', 'Replica', 'running', '2', '2', 'nofailover: true']);
  assert.deepEqual(body[3], ['', '', '', '', '', '', 'replicatefrom: m2']);
  assert.ok(text.startsWith('+ Cluster: demo '), text);
});

test('host:port when two members share a host or one runs on another port; pending restart column', () => {
  const c = snapshot([], [member('m1', 5432, { role: 'master', pending_restart: true }), member('m2', 5433)]);
  const o = membersOutput(clusterAsJson(c, 'demo'), 'demo');
  assert.deepEqual(o.columns, ['Cluster', 'Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB', 'Pending restart']);
  assert.deepEqual(o.rows[0], ['demo', 'm1', '127.0.0.1:5432', 'Leader', 'running', 2, '', '*']);
  assert.deepEqual(o.rows[1], ['demo', 'm2', '127.0.0.1:5433', 'Replica', 'running', 2, 'unknown', '']);
  assert.deepEqual(membersOutput(clusterAsJson(c, 'demo'), 'demo', { extended: true }).columns.slice(-3), ['Pending restart', 'Scheduled restart', 'Tags']);
});

test('maintenance mode and a scheduled switchover are printed under the table (pretty only)', () => {
  const c = buildCluster([
    { key: 'config', value: JSON.stringify({ pause: true }), version: 2 },
    { key: 'leader', value: 'm1', version: 3 },
    { key: 'failover', value: JSON.stringify({ leader: 'm1', member: 'm2', scheduled_at: '2030-01-01T00:00:00+00:00' }), version: 4 },
    member('m1', 5432, { role: 'master' }),
  ]);
  const text = renderMembers(clusterAsJson(c, 'demo'), 'demo', 'pretty');
  assert.ok(text.endsWith(' Maintenance mode: on\n Switchover scheduled at: 2030-01-01T00:00:00+00:00\n                    from: m1\n                      to: m2'), text);
  assert.doesNotMatch(renderMembers(clusterAsJson(c, 'demo'), 'demo', 'json'), /Maintenance/);
});

test('json/yaml/tsv: the Cluster column kept, empty cells left out of json', () => {
  const view = clusterAsJson(snapshot(), 'demo');
  const json = JSON.parse(renderMembers(view, 'demo', 'json')) as Array<Record<string, unknown>>;
  assert.deepEqual(json[0], { Cluster: 'demo', Member: 'm1', Host: '127.0.0.1:5432', Role: 'Leader', State: 'running', TL: 2 });
  assert.deepEqual(json[2]!.Tags, { replicatefrom: 'm2', nofailover: true });
  assert.equal(json[1]!['Lag in MB'], 0);
  assert.match(renderMembers(view, 'demo', 'yaml'), /^- Cluster: demo\n {2}Host: 127.0.0.1:5432\n/);
  const tsv = renderMembers(view, 'demo', 'tsv').split('\n');
  assert.equal(tsv[0], 'Cluster\tMember\tHost\tRole\tState\tTL\tLag in MB\tTags');
  assert.equal(tsv[3], 'demo\tm3\t127.0.0.1:5432\tReplica\trunning\t2\t2\t{nofailover: true, replicatefrom: m2}');
});

test('topology: the leader, then members under the upstream their replicatefrom names', () => {
  const view = clusterAsJson(
    snapshot([], [
      member('m1', 5432, { role: 'master' }),
      member('m2', 5433),
      member('m3', 5434, { tags: { replicatefrom: 'm2' } }),
      member('m4', 5435, { tags: { replicatefrom: 'm3' } }),
      member('m5', 5436, { tags: { replicatefrom: 'm1' } }),
      member('m6', 5437, { tags: { replicatefrom: 'nobody' } }),
    ]),
    'demo',
  );
  assert.deepEqual(
    topologySort(view.members).map((m) => m.name),
    ['m1', '+ m2', '  + m3', '    + m4', '+ m5', '+ m6'],
  );
  const text = renderMembers(view, 'demo', 'topology');
  assert.deepEqual(rows(text).slice(1, 4).map((r) => r[0]), ['m1', '+ m2', '+ m3']);
  assert.match(text, /^\| {3}\+ m3 /m, 'indented two spaces per level');
  assert.match(text, /\{replicatefrom: m2\}/, 'tags in flow style, as patronictl topology prints them');
});

test('topology without a leader: every replica one level down', () => {
  const view = clusterAsJson(snapshot([], [member('m2', 5433), member('m3', 5434)]), 'demo');
  assert.deepEqual(topologySort({ ...view, members: view.members.map((m) => ({ ...m, role: 'replica' as const })) }.members).map((m) => m.name), ['+ m2', '+ m3']);
});

test('history: TL and LSN right-aligned, short entries padded, json keeps every key', () => {
  const h = [
    [1, 67109256, 'no recovery target specified', '2026-11-25T08:42:05.522+00:00', 'm2'],
    [2, 83886240, 'no recovery target specified'],
  ] as const;
  const text = renderHistory(h, 'pretty');
  assert.deepEqual(rows(text)[0], ['TL', 'LSN', 'Reason', 'Timestamp', 'New Leader']);
  assert.match(text, /\| {2}1 \| 67109256 \| no recovery/);
  assert.deepEqual(JSON.parse(renderHistory(h, 'json'))[1], { TL: 2, LSN: 83886240, Reason: 'no recovery target specified', Timestamp: '', 'New Leader': '' });
});

test('roleTitle and formatOutput without a title', () => {
  assert.equal(roleTitle('standby_leader'), 'Standby Leader');
  assert.equal(roleTitle('quorum_standby'), 'Quorum Standby');
  assert.equal(formatOutput({ columns: ['A', 'B'], rows: [[1, '']] }, 'json'), '[{"A": 1, "B": ""}]');
});
