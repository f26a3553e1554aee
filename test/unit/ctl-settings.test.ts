import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSettings, settingsFromRaw } from '../../src/ctl/settings.js';
import { ConfigError } from '../../src/util/errors.js';

test('a patronictl-style config: scope, etcd3 through the daemon reader, ctl over restapi settings', () => {
  const s = settingsFromRaw(
    {
      scope: 'demo',
      etcd3: { hosts: ['10.0.0.1', '10.0.0.2:2400'] },
      restapi: { authentication: { username: 'api', password: 'x' }, cafile: '/ca.pem', certfile: '/server.pem' },
      ctl: { authentication: { username: 'ctl', password: 1234 }, insecure: 'on', keyfile: '/k.pem' },
    },
    null,
    {},
  );
  assert.equal(s.scope, 'demo');
  assert.equal(s.namespace, '/service/');
  assert.deepEqual(s.etcd?.hosts, ['10.0.0.1:2379', '10.0.0.2:2400']);
  assert.deepEqual(s.http, { insecure: true, auth: { username: 'ctl', password: '1234' }, cacert: '/ca.pem', certfile: '/server.pem', keyfile: '/k.pem' });
});

test('options win: --dcs-url, --scope, --namespace, --insecure', () => {
  const s = settingsFromRaw({ scope: 'a', namespace: '/x/', etcd3: { host: 'e:1' } }, null, { dcsUrl: 'http://f:2', scope: 'b', namespace: '/y/', insecure: true });
  assert.equal(s.scope, 'b');
  assert.equal(s.namespace, '/y/');
  assert.deepEqual(s.etcd, { hosts: ['f:2'], protocol: 'http' });
  assert.equal(s.http.insecure, true);
  assert.equal(settingsFromRaw({}, null, {}).etcd, null);
  assert.throws(() => settingsFromRaw({ etcd: { host: 'x' } }, null, {}), ConfigError);
  assert.throws(() => settingsFromRaw({ etcd3: { hosts: ['bad host'] } }, null, {}), ConfigError);
});

test('resolveSettings: a full daemon config through loadConfig, PATRONI_* variables applied', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctl-settings-'));
  try {
    const file = join(dir, 'pg.yml');
    writeFileSync(
      file,
      [
        'scope: demo',
        'name: m1',
        'restapi: {listen: 127.0.0.1:8008, authentication: {username: u, password: p}}',
        'etcd3: {hosts: [127.0.0.1:2379]}',
        'postgresql: {listen: 127.0.0.1:5432, data_dir: /tmp/x, authentication: {superuser: {username: postgres}, replication: {username: rep}}}',
      ].join('\n'),
    );
    const s = resolveSettings({ configFile: file }, { PATRONI_SCOPE: 'other', PATRONI_CTL_INSECURE: 'true' });
    assert.equal(s.scope, 'other');
    assert.deepEqual(s.etcd?.hosts, ['127.0.0.1:2379']);
    assert.deepEqual(s.http.auth, { username: 'u', password: 'p' });
    assert.equal(s.http.insecure, true);
    assert.throws(() => resolveSettings({ configFile: join(dir, 'missing.yml') }, {}), ConfigError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
