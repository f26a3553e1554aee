import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/util/errors.js';

const EXAMPLE = fileURLToPath(new URL('../../docs/examples/patroni-etcd3.yml', import.meta.url));

const MINIMAL = `
scope: s
name: m1
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
etcd3: {hosts: 127.0.0.1:2379}
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /d
  authentication:
    superuser: {username: postgres, password: p}
    replication: {username: rep, password: r}
`;

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'the message is one line');
    return e;
  }
  assert.fail('expected an error');
}

test('the Patroni example config loads without error or warning', () => {
  const { config, warnings } = loadConfig({ file: EXAMPLE, env: {} });
  assert.deepEqual(warnings, []);
  assert.equal(config.scope, 'batman');
  assert.deepEqual(config.etcd3?.hosts, ['127.0.0.1:2379']);
  assert.equal(config.postgresql.authentication.rewind?.username, 'rewind_user');
  assert.deepEqual(config.bootstrap.initdb, [{ encoding: 'UTF8' }, 'data-checksums']);
  assert.equal(config.tags.nofailover, false);
  assert.equal(config.namespace, '/service/');
});

test('a minimal config gets Patroni defaults', () => {
  const { config } = loadConfig({ text: MINIMAL, env: {} });
  assert.deepEqual(config.postgresql.create_replica_methods, ['basebackup']);
  assert.equal(config.postgresql.remove_data_directory_on_rewind_failure, false);
  assert.deepEqual(config.postgresql.parameters, {});
  assert.deepEqual(config.tags, {});
  assert.deepEqual(config.bootstrap.dcs, {});
});

test('a missing required key is named', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('  data_dir: /d\n', ''), env: {} }));
  assert.equal(e.path, 'postgresql.data_dir');
  assert.match(e.message, /^postgresql\.data_dir: required$/);
});

test('a wrong type is named with what was given', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('name: m1', 'name: [a, b]'), env: {} }));
  assert.equal(e.path, 'name');
  assert.match(e.message, /expected a string/);
});

test('a listen address without a port is refused', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('listen: 127.0.0.1:8008,', 'listen: 8008,'), env: {} }));
  assert.equal(e.path, 'restapi.listen');
  assert.match(e.message, /host:port/);
});

test('a port out of range is refused', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('listen: 127.0.0.1:5432', 'listen: 127.0.0.1:70000'), env: {} }));
  assert.equal(e.path, 'postgresql.listen');
});

test('several errors are reported together on one line', () => {
  const bad = MINIMAL.replace('name: m1', 'name: 3').replace('  data_dir: /d\n', '');
  const e = configError(() => loadConfig({ text: bad, env: {} }));
  assert.match(e.message, /name: .*; .*postgresql\.data_dir: required/);
});

test('an etcd v2 section is refused with a hint', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('etcd3:', 'etcd:'), env: {} }));
  assert.equal(e.path, 'etcd');
  assert.match(e.message, /etcd3/);
});

test('no store section is an error', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('etcd3: {hosts: 127.0.0.1:2379}\n', ''), env: {} }));
  assert.equal(e.path, 'etcd3');
});

test('keys not supported yet are warnings naming the key, not errors', () => {
  const { warnings, config } = loadConfig({ text: `${MINIMAL}watchdog: {mode: automatic}\n`.replace('  data_dir: /d', '  data_dir: /d\n  callbacks: {on_start: /bin/true}'), env: {} });
  assert.ok(warnings.some((w) => w.startsWith('watchdog: not supported yet')));
  assert.ok(warnings.some((w) => w.startsWith('postgresql.callbacks: not supported yet')));
  assert.deepEqual(config.unsupported.sort(), ['postgresql.callbacks', 'watchdog']);
});

test('invalid YAML is a clear error', () => {
  const e = configError(() => loadConfig({ text: 'scope: [unclosed', env: {} }));
  assert.match(e.message, /not valid YAML/);
});

test('a missing file is a clear error', () => {
  const e = configError(() => loadConfig({ file: '/nonexistent/pgwarden.yml', env: {} }));
  assert.match(e.message, /cannot read config file \/nonexistent\/pgwarden.yml/);
});

test('PATRONI_* variables override the file', () => {
  const { config } = loadConfig({
    text: MINIMAL,
    env: { PATRONI_NAME: 'm9', PATRONI_POSTGRESQL_DATA_DIR: '/other', PATRONI_REPLICATION_PASSWORD: 'new', PATRONI_ETCD3_HOSTS: 'h1:2379,h2:2379' },
  });
  assert.equal(config.name, 'm9');
  assert.equal(config.postgresql.data_dir, '/other');
  assert.equal(config.postgresql.authentication.replication.password, 'new');
  assert.equal(config.postgresql.authentication.replication.username, 'rep');
  assert.deepEqual(config.etcd3?.hosts, ['h1:2379', 'h2:2379']);
});

test('a config from environment variables alone starts a member', () => {
  const { config, warnings } = loadConfig({
    env: {
      PATRONI_NAME: 'n1',
      PATRONI_SCOPE: 's',
      PATRONI_RESTAPI_LISTEN: '127.0.0.1:8008',
      PATRONI_ETCD3_HOSTS: "['h1:2379', 'h2:2379']",
      PATRONI_POSTGRESQL_LISTEN: '127.0.0.1:5432',
      PATRONI_POSTGRESQL_DATA_DIR: '/d',
      PATRONI_SUPERUSER_USERNAME: 'postgres',
      PATRONI_SUPERUSER_PASSWORD: 'x',
      PATRONI_REPLICATION_USERNAME: 'rep',
      PATRONI_REPLICATION_PASSWORD: 'y',
      PATRONI_admin_PASSWORD: 'z',
      PATRONI_admin_OPTIONS: 'createdb,createrole',
    },
  });
  assert.equal(config.name, 'n1');
  assert.deepEqual(config.etcd3?.hosts, ['h1:2379', 'h2:2379']);
  assert.equal(config.restapi.connect_address, '127.0.0.1:8008', 'connect_address defaults from listen');
  assert.ok(warnings.some((w) => w.startsWith('restapi.connect_address')));
  assert.deepEqual(config.bootstrap.users, { admin: { password: 'z', options: ['createdb', 'createrole'] } });
});

test('connect_address cannot default from a wildcard listen address', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008', 'listen: 0.0.0.0:8008'), env: {} }));
  assert.equal(e.path, 'restapi.connect_address');
});

test('Patroni-style boolean strings are accepted for tags', () => {
  const { config } = loadConfig({ text: `${MINIMAL}tags: {nofailover: "on", noloadbalance: "false", custom: 1}\n`, env: {} });
  assert.equal(config.tags.nofailover, true);
  assert.equal(config.tags.noloadbalance, false);
  assert.equal(config.tags.custom, 1);
});
