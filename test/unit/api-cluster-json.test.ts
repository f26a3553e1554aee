import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterAsJson, trustedCluster } from '../../src/api/cluster-json.js';
import { cluster, member } from '../helpers/ha-fixtures.js';

test('roles, host/port and lag as Patroni computes them', () => {
  const c = cluster({
    members: [member('m1', { role: 'master', xlog_location: 1000, timeline: 2 }), member('m2', { xlog_location: 400 }), member('m3', { xlog_location: undefined })],
    sync: { leader: 'm1', sync_standby: ['m2'], version: 1 },
  });
  const j = clusterAsJson(c, 'demo');
  assert.equal(j.scope, 'demo');
  const [m1, m2, m3] = j.members;
  assert.deepEqual(m1, { name: 'm1', role: 'leader', state: 'running', api_url: 'http://127.0.0.1:8001/patroni', host: '127.0.0.1', port: 5001, timeline: 2 });
  assert.equal(m2!.role, 'sync_standby');
  assert.equal(m2!.lag, 600);
  assert.equal(m3!.role, 'replica');
  assert.equal(m3!.lag, 'unknown');
});

test('the published optime wins over the leader member position; lag is never negative', () => {
  const c = cluster({ status: { optime: 5000 }, members: [member('m1', { role: 'master', xlog_location: 1000 }), member('m2', { xlog_location: 4000 }), member('m3', { xlog_location: 6000 })] });
  const j = clusterAsJson(c, 'demo');
  assert.equal(j.members[1]!.lag, 1000);
  assert.equal(j.members[2]!.lag, 0);
});

test('pause and scheduled switchover are reported', () => {
  const c = cluster({ config: { value: { pause: true }, version: 1 }, failover: { leader: 'm1', member: 'm2', scheduled_at: '2030-01-01T00:00:00+00:00', version: 1 } });
  const j = clusterAsJson(c, 'demo');
  assert.equal(j.pause, true);
  assert.deepEqual(j.scheduled_switchover, { at: '2030-01-01T00:00:00+00:00', from: 'm1', to: 'm2' });
});

test('no leader: nobody is leader', () => {
  const j = clusterAsJson(cluster({ leader: null }), 'demo');
  assert.ok(j.members.every((m) => m.role === 'replica'));
});

test('members sorted by name; optional fields copied as published; the leader has no lag', () => {
  const c = cluster({
    members: [
      member('m3', { xlog_location: 90, pending_restart: true, tags: { nofailover: true }, scheduled_restart: { schedule: '2030-01-01T00:00:00+00:00' } }),
      member('m1', { role: 'master', xlog_location: 100, timeline: 3 }),
      member('m2', { xlog_location: 100, timeline: undefined }),
    ],
  });
  const j = clusterAsJson(c, 'demo');
  assert.deepEqual(j.members.map((m) => m.name), ['m1', 'm2', 'm3']);
  assert.equal(j.members[0]!.lag, undefined);
  assert.equal(j.members[0]!.timeline, 3);
  assert.equal('timeline' in j.members[1]!, false);
  assert.equal(j.members[1]!.lag, 0);
  assert.deepEqual(j.members[2], {
    name: 'm3',
    role: 'replica',
    state: 'running',
    api_url: 'http://127.0.0.1:8003/patroni',
    host: '127.0.0.1',
    port: 5003,
    timeline: 1,
    pending_restart: true,
    scheduled_restart: { schedule: '2030-01-01T00:00:00+00:00' },
    tags: { nofailover: true },
    lag: 10,
  });
});

test('host and port: default port 5432, IPv6 without brackets, conn_kwargs win, no host without a usable conn_url', () => {
  const c = cluster({
    members: [
      member('a', { conn_url: 'postgres://DB.Example.COM/postgres' }),
      member('b', { conn_url: 'postgres://[::1]:6000/postgres' }),
      member('c', { conn_url: '', conn_kwargs: { host: '10.0.0.3', port: '5433', dbname: 'postgres' } }),
      member('d', { conn_url: 'not a url' }),
      member('e', { conn_url: '' }),
    ],
  });
  const [a, b, cc, d, e] = clusterAsJson(c, 'demo').members;
  assert.deepEqual([a!.host, a!.port], ['db.example.com', 5432]);
  assert.deepEqual([b!.host, b!.port], ['::1', 6000]);
  assert.deepEqual([cc!.host, cc!.port], ['10.0.0.3', 5433]);
  assert.equal('host' in d!, false);
  assert.equal('port' in d!, false);
  assert.equal('host' in e!, false);
});

test('without any known cluster LSN every published position has lag 0, as Patroni (last_lsn or 0)', () => {
  const c = cluster({ leader: null, members: [member('m1', { xlog_location: 100 }), member('m2', { xlog_location: undefined })] });
  const [m1, m2] = clusterAsJson(c, 'demo').members;
  assert.equal(m1!.lag, 0);
  assert.equal(m2!.lag, 'unknown');
});

test('standby cluster: the lock holder is standby_leader (stored standby_cluster config, or the caller says so)', () => {
  const stored = cluster({ config: { value: { standby_cluster: { host: '10.0.0.9', port: 5432 } }, version: 1 } });
  assert.equal(clusterAsJson(stored, 'demo').members[0]!.role, 'standby_leader');
  assert.equal(clusterAsJson(cluster({ config: { value: { standby_cluster: {} }, version: 1 } }), 'demo').members[0]!.role, 'leader', 'an empty section is no standby cluster');
  assert.equal(clusterAsJson(cluster(), 'demo', { standbyCluster: true }).members[0]!.role, 'standby_leader');
});

test('pause is Patroni-boolean; a scheduled switchover names only what is known; an unscheduled one is not shown', () => {
  assert.equal(clusterAsJson(cluster({ config: { value: { pause: 'on' }, version: 1 } }), 'demo').pause, true);
  assert.equal(clusterAsJson(cluster({ config: { value: { pause: 'off' }, version: 1 } }), 'demo').pause, undefined);
  const onlyFrom = clusterAsJson(cluster({ failover: { leader: 'm1', scheduled_at: '2030-01-01T00:00:00+00:00', version: 1 } }), 'demo');
  assert.deepEqual(onlyFrom.scheduled_switchover, { at: '2030-01-01T00:00:00+00:00', from: 'm1' });
  assert.equal(clusterAsJson(cluster({ failover: { leader: 'm1', member: 'm2', version: 1 } }), 'demo').scheduled_switchover, undefined);
});

test('the cached store view is trusted for ttl seconds after the last successful read, then not', () => {
  const c = cluster();
  assert.equal(trustedCluster(c, 1000, 1030, 30), c);
  assert.equal(trustedCluster(c, 1000, 1031, 30), null);
  assert.equal(trustedCluster(c, null, 1000, 30), null, 'never read');
  assert.equal(trustedCluster(null, 1000, 1000, 30), null);
});

test('quorum mode: quorum members are quorum_standby', () => {
  const c = cluster({ config: { value: { synchronous_mode: 'quorum' }, version: 1 }, sync: { leader: 'm1', sync_standby: ['m2', 'm3'], quorum: 1, version: 1 } });
  assert.deepEqual(clusterAsJson(c, 'demo').members.map((m) => m.role), ['leader', 'quorum_standby', 'quorum_standby']);
});
