import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpYaml, pyJson, pyList, pyRound, pyStr, timestamp } from '../../src/ctl/format.js';

test('dumpYaml writes what PyYAML safe_dump writes (sorted keys, unindented lists, YAML 1.1 quoting)', () => {
  const data = {
    ttl: 10,
    postgresql: {
      parameters: { wal_log_hints: 'on', max_connections: 100, unix_socket_permissions: '0750', x: '1', e: '', n: null, f: 1.5, s: 'a b: c', t: 'yes', y: 'y', el: [], em: {} },
      pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 md5'],
    },
    tags: [{ b: 'x', a: 1 }],
  };
  // /usr/bin/python3 -c "import yaml; print(yaml.safe_dump(d, default_flow_style=False, allow_unicode=True, width=200), end='')"
  const expected = [
    'postgresql:',
    '  parameters:',
    "    e: ''",
    '    el: []',
    '    em: {}',
    '    f: 1.5',
    '    max_connections: 100',
    '    n: null',
    "    s: 'a b: c'",
    "    t: 'yes'",
    "    unix_socket_permissions: '0750'",
    "    wal_log_hints: 'on'",
    "    x: '1'",
    '    y: y',
    '  pg_hba:',
    '  - local all all trust',
    '  - host all all 127.0.0.1/32 md5',
    'tags:',
    '- a: 1',
    '  b: x',
    'ttl: 10',
    '',
  ].join('\n');
  assert.equal(dumpYaml(data), expected);
  assert.equal(dumpYaml({ replicatefrom: 'm1', nofailover: true }, true), '{nofailover: true, replicatefrom: m1}\n');
  assert.equal(dumpYaml({}), '{}\n');
});

test('pyJson is json.dumps: spaced separators, ASCII escapes, undefined left out', () => {
  assert.equal(pyJson([{ a: 1, b: 'é', c: null, d: undefined, e: [true, 'x'] }]), '[{"a": 1, "b": "\\u00e9", "c": null, "e": [true, "x"]}]');
  assert.equal(pyJson([]), '[]');
});

test('pyStr, pyRound (half to even), pyList', () => {
  assert.equal(pyStr(null), 'None');
  assert.equal(pyStr(true), 'True');
  assert.equal(pyStr(12), '12');
  assert.deepEqual([0.5, 1.5, 2.5, 2.4, 2.6, 0].map(pyRound), [0, 2, 2, 2, 3, 0]);
  assert.equal(pyList(['member-2', 'member-3']), "['member-2', 'member-3']");
});

test('timestamp: local time, 5 fraction digits at precision 6, none at 0', () => {
  const d = new Date(2026, 10, 25, 9, 5, 7, 123);
  assert.equal(timestamp(d), '2026-11-25 09:05:07.12300');
  assert.equal(timestamp(d, 0), '2026-11-25 09:05:07');
});
