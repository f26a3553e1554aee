import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPgVersion, dsnOf, membersLeaderFirst, membersWithRole, nextHourExample, parseDcsUrl, parseRole, parseScheduled, parseYesNo } from '../../src/ctl/args.js';
import { resolveScope } from '../../src/ctl/session.js';
import { buildCluster } from '../../src/dcs/codec.js';
import { ExitError } from '../../src/util/errors.js';

const exitCode = (fn: () => unknown): number => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ExitError) return e.code;
    throw e;
  }
  return 0;
};

test('parseScheduled: now/empty is immediate; a zone is kept as written; none means local time', () => {
  assert.equal(parseScheduled(undefined), null);
  assert.equal(parseScheduled('now'), null);
  assert.equal(parseScheduled(''), null);
  const a = parseScheduled('2026-11-25T12:00+02:00')!;
  assert.equal(a.iso, '2026-11-25T12:00:00+02:00');
  assert.equal(a.date.toISOString(), '2026-11-25T10:00:00.000Z');
  assert.equal(parseScheduled('2026-11-25T12:00:30Z')!.iso, '2026-11-25T12:00:30+00:00');
  assert.equal(parseScheduled('2026-11-25 12:00:00.25-0530')!.iso, '2026-11-25T12:00:00.250000-05:30');
  const local = parseScheduled('2026-11-25T12:00', () => 60)!;
  assert.equal(local.iso, '2026-11-25T12:00:00+01:00');
  assert.equal(local.date.toISOString(), '2026-11-25T11:00:00.000Z');
  for (const bad of ['tomorrow', '2026-13-01T00:00Z', '2026-02-30T00:00Z', '2026-11-25T25:00Z']) {
    assert.equal(exitCode(() => parseScheduled(bad)), 2, bad);
  }
});

test('nextHourExample is an hour ahead, to the minute', () => {
  assert.equal(nextHourExample(new Date(2026, 10, 25, 23, 30, 10)), '2026-11-26T00:30');
});

test('parseYesNo: click.confirm answers', () => {
  assert.equal(parseYesNo('y', false), true);
  assert.equal(parseYesNo(' YES ', false), true);
  assert.equal(parseYesNo('n', true), false);
  assert.equal(parseYesNo('', false), false);
  assert.equal(parseYesNo('', true), true);
  assert.equal(parseYesNo('maybe', false), null);
});

test('checkPgVersion: X.Y from 10 on, or X.Y.Z', () => {
  assert.equal(checkPgVersion('15.3'), '15.3');
  assert.equal(checkPgVersion('9.6.24'), '9.6.24');
  for (const bad of ['10', '9.6', 'a.b.c', '1.2.3.4']) assert.equal(exitCode(() => checkPgVersion(bad)), 2, bad);
});

test('parseDcsUrl: http(s), etcd3:// and bare host:port, credentials, default port', () => {
  assert.deepEqual(parseDcsUrl('http://127.0.0.1:2379'), { hosts: ['127.0.0.1:2379'], protocol: 'http' });
  assert.deepEqual(parseDcsUrl('https://u:p%40ss@etcd:2400'), { hosts: ['etcd:2400'], protocol: 'https', username: 'u', password: 'p@ss' });
  assert.deepEqual(parseDcsUrl('etcd3://a, b:2380'), { hosts: ['a:2379', 'b:2380'], protocol: 'http' });
  assert.equal(exitCode(() => parseDcsUrl('consul://x:8500')), 2);
  assert.equal(exitCode(() => parseDcsUrl(' , ')), 2);
});

test('parseRole accepts patronictl choices only', () => {
  assert.equal(parseRole('standby-leader'), 'standby-leader');
  assert.equal(exitCode(() => parseRole('boss')), 2);
});

const m = (name: string, data: Record<string, unknown>) => ({ key: `members/${name}`, value: JSON.stringify({ conn_url: `postgres://Host-${name}:5433/postgres`, api_url: `http://h:8008/patroni`, state: 'running', ...data }), version: 1 });

test('membersWithRole: the leader for leader roles (primary vs standby leader), the rest for replica, everyone for any', () => {
  const c = buildCluster([{ key: 'leader', value: 'b', version: 1 }, m('a', { role: 'replica' }), m('b', { role: 'master' }), m('c', { role: 'replica' })]);
  const names = (role: Parameters<typeof membersWithRole>[1]) => membersWithRole(c, role).map((x) => x.name);
  assert.deepEqual(names('leader'), ['b']);
  assert.deepEqual(names('primary'), ['b']);
  assert.deepEqual(names('standby-leader'), []);
  assert.deepEqual(names('replica'), ['a', 'c']);
  assert.deepEqual(names('any'), ['a', 'b', 'c']);
  assert.deepEqual(membersLeaderFirst(c).map((x) => x.name), ['b', 'a', 'c']);
  const standby = buildCluster([{ key: 'leader', value: 'b', version: 1 }, m('b', { role: 'standby_leader' })]);
  assert.deepEqual(membersWithRole(standby, 'standby-leader').map((x) => x.name), ['b']);
  assert.deepEqual(membersWithRole(standby, 'master'), []);
});

test('dsnOf: host and port from conn_url (lower-cased host, 5432 by default) or conn_kwargs', () => {
  const c = buildCluster([
    m('a', {}),
    { key: 'members/b', value: JSON.stringify({ conn_url: 'postgres://10.0.0.2/postgres' }), version: 1 },
    { key: 'members/c', value: JSON.stringify({ conn_kwargs: { host: 'x', port: 6000 } }), version: 1 },
    { key: 'members/d', value: '{}', version: 1 },
  ]);
  assert.deepEqual(c.members.map(dsnOf), ['host=host-a port=5433', 'host=10.0.0.2 port=5432', 'host=x port=6000', null]);
});

test('resolveScope: positional cluster names must match the configured scope', () => {
  assert.equal(resolveScope('demo', []), 'demo');
  assert.equal(resolveScope('demo', ['demo']), 'demo');
  assert.equal(resolveScope(null, ['other']), 'other');
  assert.equal(exitCode(() => resolveScope('demo', ['other'])), 1);
  assert.equal(exitCode(() => resolveScope(null, [])), 2);
  assert.equal(exitCode(() => resolveScope(null, ['a', 'b'])), 1);
});
