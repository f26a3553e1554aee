import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCluster, clusterPrefix, parseFailover, parseMember, parseSync, serializeFailover, serializeStatus, serializeSync } from '../../src/dcs/codec.js';

test('key prefix normalises slashes like Patroni', () => {
  assert.equal(clusterPrefix('/service/', 'batman'), '/service/batman/');
  assert.equal(clusterPrefix('service', 'batman'), '/service/batman/');
  assert.equal(clusterPrefix('/', 'batman'), '/batman/');
});

test('a snapshot is built from Patroni-format values, leniently', () => {
  const c = buildCluster([
    { key: 'initialize', value: '7311', version: 1 },
    { key: 'config', value: '{"ttl": 30}', version: 2 },
    { key: 'leader', value: 'pg1', version: 3, lease: '77' },
    { key: 'members/pg2', value: '{"conn_url":"postgres://h2:5432/postgres","api_url":"http://h2:8008/patroni","state":"running","role":"replica","xlog_location":5}', version: 4 },
    { key: 'members/pg1', value: 'not json at all', version: 5 },
    { key: 'failover', value: '{"leader":"pg1","member":"pg2","scheduled_at":"2030-01-01T00:00:00+00:00"}', version: 6 },
    { key: 'sync', value: '{"leader":"pg1","sync_standby":"pg2,pg3"}', version: 7 },
    { key: 'history', value: '[[1, 100, "no recovery target specified", "2026-01-01T00:00:00+00:00", "pg1"]]', version: 8 },
    { key: 'status', value: '{"optime": 999, "slots": {"pg2": 5}}', version: 9 },
    { key: 'config', value: '{broken', version: 10 },
  ]);
  assert.equal(c.initialize, '7311');
  assert.deepEqual(c.leader, { name: 'pg1', version: 3, session: '77' });
  assert.deepEqual(c.members.map((m) => m.name), ['pg1', 'pg2']);
  assert.equal(c.members[1]!.data.xlog_location, 5);
  assert.equal(c.members[0]!.data.state, '', 'unparseable member data does not throw');
  assert.equal(c.failover?.member, 'pg2');
  assert.deepEqual(c.sync?.sync_standby, ['pg2', 'pg3']);
  assert.equal(c.history[0]![0], 1);
  assert.deepEqual(c.status, { optime: 999, slots: { pg2: 5 } });
  assert.deepEqual(c.config, { value: {}, version: 10 }, 'a broken config reads as empty, not as an error');
});

test('failover: JSON and the old leader:member form', () => {
  assert.deepEqual(parseFailover({ key: 'failover', value: 'a:b', version: 1 }), { leader: 'a', member: 'b', version: 1 });
  assert.equal(serializeFailover({ member: 'b' }), '{"member":"b"}');
});

test('key prefix: exactly Patroni\'s re.sub("/+", "/", "/".join(["", namespace, scope])) + "/"', () => {
  assert.equal(clusterPrefix('//service//', 'batman'), '/service/batman/');
  assert.equal(clusterPrefix('', 'batman'), '/batman/');
  assert.equal(clusterPrefix('/ns/deep/', '/batman'), '/ns/deep/batman/');
});

test('status: the status key wins over the legacy optime/leader key, in any order; garbage is no optime', () => {
  const legacy = { key: 'optime/leader', value: '100', version: 1 };
  const status = { key: 'status', value: '{"optime":"200","slots":{"a":"5","b":"x"}}', version: 2 };
  assert.deepEqual(buildCluster([legacy, status]).status, { optime: 200, slots: { a: 5 } });
  assert.deepEqual(buildCluster([status, legacy]).status, { optime: 200, slots: { a: 5 } });
  assert.deepEqual(buildCluster([legacy]).status, { optime: 100 });
  assert.deepEqual(buildCluster([{ key: 'status', value: '12', version: 3 }, legacy]).status, {}, 'a present but bad status hides the legacy key, as in Patroni');
  assert.equal(serializeStatus({}), null, 'no optime: nothing to write');
  assert.equal(serializeStatus({ optime: 5, slots: {} }), '{"optime":5}');
  assert.equal(serializeStatus({ optime: 5, slots: { s: 4 } }), '{"optime":5,"slots":{"s":4}}');
});

test('failover, sync, members, leader: the lenient corners', () => {
  assert.equal(parseFailover({ key: 'failover', value: '{}', version: 1 }), null, 'an empty request is no request (Patroni: falsy Failover)');
  assert.equal(parseFailover({ key: 'failover', value: '', version: 1 }), null);
  assert.deepEqual(parseFailover({ key: 'failover', value: ' a : b ', version: 1 }), { leader: 'a', member: 'b', version: 1 });
  assert.deepEqual(parseFailover({ key: 'failover', value: ':b', version: 1 }), { leader: undefined, member: 'b', version: 1 });
  assert.deepEqual(parseSync({ key: 'sync', value: '{"leader":"a","sync_standby":null}', version: 4 }), { leader: 'a', sync_standby: [], version: 4 });
  assert.equal(serializeSync({ leader: 'a', sync_standby: '' }), '{"leader":"a","sync_standby":null}');
  const m = parseMember('g', { key: 'members/g', value: 'postgres://u:p@h:5432/postgres?application_name=http%3A%2F%2Fh%3A8008%2Fpatroni', version: 1 });
  assert.deepEqual([m.data.conn_url, m.data.api_url], ['postgres://u:p@h:5432/postgres', 'http://h:8008/patroni']);
  assert.equal(parseMember('x', { key: 'members/x', value: '[1,2]', version: 1 }).data.conn_url, '', 'JSON that is not an object: an empty member');
  const c = buildCluster([
    { key: 'leader', value: '', version: 1 },
    { key: 'members/a/b', value: '{}', version: 2 },
    { key: 'members/', value: '{}', version: 3 },
  ]);
  assert.equal(c.leader, null, 'an empty leader value is no leader');
  assert.deepEqual(c.members, [], 'nested and nameless member keys are not members');
});
