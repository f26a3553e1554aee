import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterAsJson } from '../../src/api/cluster-json.js';
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
