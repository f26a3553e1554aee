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

test('listen errors use the documented wording', () => {
  const noPort = configError(() => loadConfig({ text: MINIMAL.replace('listen: 127.0.0.1:8008,', 'listen: 8008,'), env: {} }));
  assert.equal(noPort.message, 'restapi.listen: expected "host:port", got 8008');
  const badPort = configError(() => loadConfig({ text: MINIMAL.replace('listen: 127.0.0.1:5432', 'listen: "127.0.0.1:0"'), env: {} }));
  assert.match(badPort.message, /^postgresql\.listen: port must be from 1 to 65535, got "127\.0\.0\.1:0"$/);
  const badConnect = configError(() => loadConfig({ text: MINIMAL.replace('connect_address: 127.0.0.1:5432', 'connect_address: "db:99999"'), env: {} }));
  assert.equal(badConnect.path, 'postgresql.connect_address');
});

test('bootstrap.dcs well-known keys are type-checked at load', () => {
  const e = configError(() => loadConfig({ text: `${MINIMAL}bootstrap: {dcs: {ttl: abc, loop_wait: "5", postgresql: {use_slots: maybe}}}\n`, env: {} }));
  assert.equal(e.path, 'bootstrap.dcs.ttl');
  assert.equal(e.message, 'bootstrap.dcs.ttl: expected a number, got "abc"; bootstrap.dcs.postgresql.use_slots: expected a boolean, got "maybe"');
  const ok = loadConfig({ text: `${MINIMAL}bootstrap: {dcs: {ttl: "20", custom_key: {a: 1}}}\n`, env: {} });
  assert.deepEqual(ok.config.bootstrap.dcs, { ttl: '20', custom_key: { a: 1 } }, 'kept as written');
  assert.deepEqual(ok.warnings, []);
});

test('an empty config lists every missing key on one line', () => {
  const e = configError(() => loadConfig({ text: '', env: {} }));
  assert.equal(e.path, 'scope');
  for (const k of ['scope', 'name', 'restapi', 'postgresql', 'etcd3']) assert.match(e.message, new RegExp(`(^|; )${k}: required`));
});

test('wrong types inside sections are named with what was given', () => {
  const e = configError(() =>
    loadConfig({ text: MINIMAL.replace('etcd3: {hosts: 127.0.0.1:2379}', 'etcd3: {hosts: 127.0.0.1:2379, protocol: ftp}').replace('data_dir: /d', 'data_dir: /d\n  parameters: {work_mem: [1]}'), env: {} }),
  );
  assert.equal(e.message, 'etcd3.protocol: expected "http" or "https", got "ftp"; postgresql.parameters.work_mem: expected a string, number or boolean, got [1]');
});

test('a missing replication user is required', () => {
  const e = configError(() => loadConfig({ text: MINIMAL.replace('    replication: {username: rep, password: r}\n', ''), env: {} }));
  assert.equal(e.message, 'postgresql.authentication.replication: required');
});

test('etcd3 host forms normalise to a list of host:port', () => {
  const load = (etcd: string, env: NodeJS.ProcessEnv = {}) =>
    loadConfig({ text: MINIMAL.replace('etcd3: {hosts: 127.0.0.1:2379}', etcd), env }).config.etcd3?.hosts;
  assert.deepEqual(load('etcd3: {hosts: "a:2379, b:2380"}'), ['a:2379', 'b:2380']);
  assert.deepEqual(load('etcd3: {hosts: [a:1, b]}'), ['a:1', 'b:2379']);
  assert.deepEqual(load('etcd3: {host: "c:2379"}'), ['c:2379']);
  assert.deepEqual(load('etcd3: {hosts: x:1}', { PATRONI_ETCD3_HOST: 'e:2379' }), ['x:1', 'e:2379']);
  assert.deepEqual(load('etcd3: {hosts: x:1}', { PATRONI_ETCD3_HOSTS: '- f:1\n- g:2' }), ['f:1', 'g:2']);
  assert.deepEqual(load('etcd3: {hosts: x:1}', { PATRONI_ETCD3_HOSTS: '[f:1, g:2]' }), ['f:1', 'g:2']);
  const e = configError(() => loadConfig({ text: MINIMAL.replace('etcd3: {hosts: 127.0.0.1:2379}', 'etcd3: {protocol: http}'), env: {} }));
  assert.equal(e.path, 'etcd3.hosts');
});

test('auth variables go to their sections, other *_PASSWORD become bootstrap users', () => {
  const { config } = loadConfig({
    text: MINIMAL,
    env: {
      PATRONI_RESTAPI_USERNAME: 'api',
      PATRONI_RESTAPI_PASSWORD: 'apipw',
      PATRONI_REWIND_USERNAME: 'rw',
      PATRONI_REWIND_PASSWORD: 'rwpw',
      PATRONI_ETCD3_USERNAME: 'eu',
      PATRONI_ETCD3_PASSWORD: 'epw',
      PATRONI_ETCD3_PROTOCOL: 'https',
      PATRONI_SUPERUSER_PASSWORD: 'su',
      PATRONI_app_PASSWORD: 'apppw',
      PATRONI_NAMESPACE: '/pg/',
      PATRONI_SCOPE: 'other',
    },
  });
  assert.deepEqual(config.restapi.authentication, { username: 'api', password: 'apipw' });
  assert.deepEqual(config.postgresql.authentication.rewind, { username: 'rw', password: 'rwpw' });
  assert.deepEqual(config.postgresql.authentication.superuser, { username: 'postgres', password: 'su' });
  assert.equal(config.etcd3?.username, 'eu');
  assert.equal(config.etcd3?.password, 'epw');
  assert.equal(config.etcd3?.protocol, 'https');
  assert.deepEqual(config.bootstrap.users, { app: { password: 'apppw' } });
  assert.equal(config.namespace, '/pg/');
  assert.equal(config.scope, 'other');
});

test('a kubernetes section is a store section; PATRONI_KUBERNETES_* fill it', () => {
  const { config, warnings } = loadConfig({
    text: MINIMAL.replace('etcd3: {hosts: 127.0.0.1:2379}', 'kubernetes: {namespace: default}'),
    env: { PATRONI_KUBERNETES_LABELS: '{app: pg}', PATRONI_KUBERNETES_USE_ENDPOINTS: 'true' },
  });
  assert.equal(config.etcd3, undefined);
  assert.deepEqual(config.kubernetes, { namespace: 'default', labels: { app: 'pg' }, use_endpoints: true });
  assert.deepEqual(warnings, []);
});

test('postgresql.listen may name several hosts; connect_address defaults to the first', () => {
  const { config, warnings } = loadConfig({ text: MINIMAL.replace('listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432', 'listen: "10.0.0.5,127.0.0.1:5433"'), env: {} });
  assert.equal(config.postgresql.listen, '10.0.0.5,127.0.0.1:5433');
  assert.equal(config.postgresql.connect_address, '10.0.0.5:5433');
  assert.ok(warnings.includes('postgresql.connect_address: not set, using 10.0.0.5:5433 from listen'));
  const e = configError(() => loadConfig({ text: MINIMAL.replace('listen: 127.0.0.1:8008,', 'listen: "a,b:8008",'), env: {} }));
  assert.equal(e.path, 'restapi.listen', 'restapi.listen takes one host');
});

test('Patroni keys not implemented yet are named with their full path', () => {
  const text = `${MINIMAL}consul: {host: x}\nctl: {insecure: true}\nlog: {level: INFO}\n`.replace('restapi: {', 'restapi: {allowlist: [a], ');
  const { warnings, config } = loadConfig({ text, env: {} });
  assert.deepEqual(config.unsupported.sort(), ['consul', 'ctl', 'log', 'restapi.allowlist']);
  assert.ok(warnings.includes('restapi.allowlist: not supported yet, ignored'));
});

test('boolean options accept Patroni spellings and refuse others', () => {
  const { config } = loadConfig({ text: MINIMAL.replace('data_dir: /d', 'data_dir: /d\n  remove_data_directory_on_rewind_failure: "yes"\n  use_pg_rewind: "off"'), env: {} });
  assert.equal(config.postgresql.remove_data_directory_on_rewind_failure, true);
  assert.equal(config.postgresql.use_pg_rewind, false);
  const e = configError(() => loadConfig({ text: `${MINIMAL}tags: {nosync: sometimes}\n`, env: {} }));
  assert.equal(e.message, 'tags.nosync: expected a boolean, got "sometimes"');
});
