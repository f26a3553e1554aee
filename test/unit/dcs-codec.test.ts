import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCluster, clusterPrefix, parseFailover, serializeFailover } from '../../src/dcs/codec.js';

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
