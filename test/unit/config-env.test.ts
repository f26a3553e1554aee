/**
 * PATRONI_* variables, one test per family, through loadConfig (the way the daemon reads them):
 * each variable lands on its Patroni key with its type, and a bad value is an error naming the key.
 * Families: identity, restapi (TLS, auth), ctl, etcd3, PostgreSQL users, bootstrap users,
 * postgresql, kubernetes, log; plus a config made of variables alone and PATRONI_CONFIGURATION.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/util/errors.js';

/** Everything a member needs, as variables only. */
const BASE: NodeJS.ProcessEnv = {
  PATRONI_NAME: 'n1',
  PATRONI_SCOPE: 'pg',
  PATRONI_RESTAPI_LISTEN: '127.0.0.1:8008',
  PATRONI_RESTAPI_CONNECT_ADDRESS: '127.0.0.1:8008',
  PATRONI_POSTGRESQL_CONNECT_ADDRESS: '127.0.0.1:5432',
  PATRONI_ETCD3_HOSTS: '127.0.0.1:2379',
  PATRONI_POSTGRESQL_LISTEN: '127.0.0.1:5432',
  PATRONI_POSTGRESQL_DATA_DIR: '/data',
  PATRONI_SUPERUSER_USERNAME: 'postgres',
  PATRONI_REPLICATION_USERNAME: 'rep',
};

const load = (env: NodeJS.ProcessEnv, text = '') => loadConfig({ text, env: { ...BASE, ...env } });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

test('identity: PATRONI_NAME, PATRONI_SCOPE, PATRONI_NAMESPACE (an empty value is no value)', () => {
  const { config } = load({ PATRONI_NAMESPACE: '/db/' });
  assert.deepEqual([config.name, config.scope, config.namespace], ['n1', 'pg', '/db/']);
  assert.equal(load({ PATRONI_NAMESPACE: '' }).config.namespace, '/service/');
  assert.match(configError(() => load({ PATRONI_NAME: '' })).message, /^name: required/);
});

test('restapi: listen, connect_address, basic auth and every TLS key', () => {
  const { config, warnings } = load({
    PATRONI_RESTAPI_CONNECT_ADDRESS: '10.0.0.1:8008',
    PATRONI_RESTAPI_USERNAME: 'admin',
    PATRONI_RESTAPI_PASSWORD: 's3cret',
    PATRONI_RESTAPI_CERTFILE: '/tls/server.pem',
    PATRONI_RESTAPI_KEYFILE: '/tls/server.key',
    PATRONI_RESTAPI_KEYFILE_PASSWORD: 'kp',
    PATRONI_RESTAPI_CAFILE: '/tls/ca.pem',
    PATRONI_RESTAPI_CIPHERS: 'ECDHE+AESGCM',
    PATRONI_RESTAPI_VERIFY_CLIENT: 'Optional',
  });
  assert.deepEqual(config.restapi, {
    listen: '127.0.0.1:8008',
    connect_address: '10.0.0.1:8008',
    authentication: { username: 'admin', password: 's3cret' },
    certfile: '/tls/server.pem',
    keyfile: '/tls/server.key',
    keyfile_password: 'kp',
    cafile: '/tls/ca.pem',
    ciphers: 'ECDHE+AESGCM',
    verify_client: 'optional',
  });
  assert.deepEqual(warnings, []);
  const e = configError(() => load({ PATRONI_RESTAPI_VERIFY_CLIENT: 'always' }));
  assert.equal(e.path, 'restapi.verify_client');
  assert.match(e.message, /expected none, optional or required, got "always"/);
  assert.equal(configError(() => load({ PATRONI_RESTAPI_LISTEN: 'nowhere' })).path, 'restapi.listen');
  // The same keys from a file; the variables win.
  const fromFile = load({ PATRONI_RESTAPI_VERIFY_CLIENT: 'required' }, 'restapi: {listen: "127.0.0.1:9", verify_client: none, cafile: /f.pem}\n');
  assert.deepEqual([fromFile.config.restapi.listen, fromFile.config.restapi.verify_client, fromFile.config.restapi.cafile], ['127.0.0.1:8008', 'required', '/f.pem']);
});

test('ctl: insecure (Patroni booleans), cacert, certfile, keyfile, keyfile_password, credentials', () => {
  const { config, warnings } = load({
    PATRONI_CTL_INSECURE: 'on',
    PATRONI_CTL_CACERT: '/tls/ca.pem',
    PATRONI_CTL_CERTFILE: '/tls/client.pem',
    PATRONI_CTL_KEYFILE: '/tls/client.key',
    PATRONI_CTL_KEYFILE_PASSWORD: 'ckp',
    PATRONI_CTL_USERNAME: 'ctl',
    PATRONI_CTL_PASSWORD: 'ctlpw',
  });
  assert.deepEqual(config.ctl, {
    insecure: true,
    cacert: '/tls/ca.pem',
    certfile: '/tls/client.pem',
    keyfile: '/tls/client.key',
    keyfile_password: 'ckp',
    authentication: { username: 'ctl', password: 'ctlpw' },
  });
  assert.deepEqual(warnings, []);
  assert.equal(config.bootstrap.users, undefined, 'PATRONI_CTL_PASSWORD is not a bootstrap user');
  // A value that is no boolean is dropped, as Patroni drops it.
  assert.equal(load({ PATRONI_CTL_INSECURE: 'maybe' }).config.ctl?.insecure, undefined);
});

test('etcd3: HOST, HOSTS (every list form), PORT, URL, PROTOCOL, USERNAME, PASSWORD, CACERT, CERT, KEY', () => {
  const etcd = (env: NodeJS.ProcessEnv) => load({ PATRONI_ETCD3_HOSTS: undefined, ...env }).config.etcd3;
  assert.deepEqual(etcd({ PATRONI_ETCD3_HOST: 'e1:2381' })?.hosts, ['e1:2381']);
  assert.deepEqual(etcd({ PATRONI_ETCD3_HOST: 'e1', PATRONI_ETCD3_PORT: '2390' })?.hosts, ['e1:2390']);
  for (const v of ['e1:2379,e2:2379', "['e1:2379', 'e2:2379']", '- e1:2379\n- e2:2379']) assert.deepEqual(etcd({ PATRONI_ETCD3_HOSTS: v })?.hosts, ['e1:2379', 'e2:2379'], v);
  assert.deepEqual(JSON.parse(JSON.stringify(etcd({ PATRONI_ETCD3_URL: 'https://e9:2400' }))), { hosts: ['e9:2400'], protocol: 'https' });
  assert.deepEqual(etcd({ PATRONI_ETCD3_HOST: 'e1:2379', PATRONI_ETCD3_PROTOCOL: 'https', PATRONI_ETCD3_USERNAME: 'u', PATRONI_ETCD3_PASSWORD: 'p' }), {
    hosts: ['e1:2379'], protocol: 'https', username: 'u', password: 'p',
  });
  const tls = load({ PATRONI_ETCD3_CACERT: '/ca.pem', PATRONI_ETCD3_CERT: '/c.pem', PATRONI_ETCD3_KEY: '/k.pem' });
  assert.deepEqual(tls.warnings, []);
  assert.deepEqual([tls.config.etcd3?.cacert, tls.config.etcd3?.cert, tls.config.etcd3?.key], ['/ca.pem', '/c.pem', '/k.pem']);
  assert.equal(configError(() => load({ PATRONI_ETCD3_PROTOCOL: 'grpc' })).path, 'etcd3.protocol');
  assert.equal(configError(() => load({ PATRONI_ETCD3_HOSTS: 'e1:99999' })).path, 'etcd3.hosts.0');
});

test('PostgreSQL users: PATRONI_SUPERUSER_*, PATRONI_REPLICATION_*, PATRONI_REWIND_* with their libpq keys', () => {
  const { config } = load({
    PATRONI_SUPERUSER_PASSWORD: 'su',
    PATRONI_SUPERUSER_SSLMODE: 'verify-full',
    PATRONI_SUPERUSER_SSLROOTCERT: '/ca.pem',
    PATRONI_REPLICATION_PASSWORD: 'rp',
    PATRONI_REPLICATION_CHANNEL_BINDING: 'require',
    PATRONI_REWIND_USERNAME: 'rewinder',
    PATRONI_REWIND_PASSWORD: 'rw',
    PATRONI_REWIND_SSLCERT: '/c.pem',
    PATRONI_REWIND_SSLKEY: '/k.pem',
    PATRONI_REWIND_SSLPASSWORD: 'kp',
  });
  assert.deepEqual(config.postgresql.authentication, {
    superuser: { username: 'postgres', password: 'su', sslmode: 'verify-full', sslrootcert: '/ca.pem' },
    replication: { username: 'rep', password: 'rp', channel_binding: 'require' },
    rewind: { username: 'rewinder', password: 'rw', sslcert: '/c.pem', sslkey: '/k.pem', sslpassword: 'kp' },
  });
  assert.equal(config.bootstrap.users, undefined, 'none of them is a bootstrap user');
  assert.equal(configError(() => load({ PATRONI_REPLICATION_USERNAME: undefined })).path, 'postgresql.authentication.replication');
});

test('bootstrap users: PATRONI_<user>_PASSWORD and _OPTIONS, the name keeping its case', () => {
  const { config } = load({
    PATRONI_admin_PASSWORD: 'a',
    PATRONI_admin_OPTIONS: 'createrole,createdb',
    PATRONI_App_Owner_PASSWORD: 'b',
    PATRONI_App_Owner_OPTIONS: '[login]',
    PATRONI_nobody_PASSWORD: '',
  });
  assert.deepEqual(config.bootstrap.users, { admin: { password: 'a', options: ['createrole', 'createdb'] }, App_Owner: { password: 'b', options: ['login'] } });
});

test('postgresql: listen, connect_address, data_dir, bin_dir, config_dir, pgpass; proxy_address is named as unsupported', () => {
  const { config, warnings } = load({
    PATRONI_POSTGRESQL_LISTEN: '127.0.0.1,127.0.0.2:5433',
    PATRONI_POSTGRESQL_CONNECT_ADDRESS: '127.0.0.2:5433',
    PATRONI_POSTGRESQL_BIN_DIR: '/opt/postgresql/bin',
    PATRONI_POSTGRESQL_CONFIG_DIR: '/etc/pg',
    PATRONI_POSTGRESQL_PGPASS: '/tmp/pgpass0',
    PATRONI_POSTGRESQL_PROXY_ADDRESS: '127.0.0.1:6432',
  });
  const p = config.postgresql;
  assert.deepEqual([p.listen, p.connect_address, p.data_dir, p.bin_dir, p.config_dir, p.pgpass], [
    '127.0.0.1,127.0.0.2:5433', '127.0.0.2:5433', '/data', '/opt/postgresql/bin', '/etc/pg', '/tmp/pgpass0',
  ]);
  assert.deepEqual(warnings, ['postgresql.proxy_address: not supported yet, ignored']);
  assert.equal(configError(() => load({ PATRONI_POSTGRESQL_CONNECT_ADDRESS: 'db.example' })).path, 'postgresql.connect_address');
});

test('kubernetes: every PATRONI_KUBERNETES_* key Patroni maps, typed', () => {
  const { config, warnings } = load({
    PATRONI_ETCD3_HOSTS: undefined,
    PATRONI_KUBERNETES_NAMESPACE: 'db',
    PATRONI_KUBERNETES_LABELS: 'application: patroni, cluster-name: pg',
    PATRONI_KUBERNETES_USE_ENDPOINTS: 'yes',
    PATRONI_KUBERNETES_POD_IP: '10.2.3.4',
    PATRONI_KUBERNETES_PORTS: '[{"name": "postgresql", "port": 5432}]',
    PATRONI_KUBERNETES_SCOPE_LABEL: 'cluster',
    PATRONI_KUBERNETES_ROLE_LABEL: 'spilo-role',
    PATRONI_KUBERNETES_LEADER_LABEL_VALUE: 'master',
    PATRONI_KUBERNETES_FOLLOWER_LABEL_VALUE: 'replica',
    PATRONI_KUBERNETES_STANDBY_LEADER_LABEL_VALUE: 'master',
    PATRONI_KUBERNETES_BYPASS_API_SERVICE: 'off',
    PATRONI_KUBERNETES_CONTEXT: 'kind-pg',
    PATRONI_KUBERNETES_RETRIABLE_HTTP_CODES: '401,503',
    PATRONI_KUBERNETES_CACERT: '/var/run/ca.crt',
  });
  assert.deepEqual(config.etcd3, undefined);
  assert.deepEqual(config.kubernetes, {
    namespace: 'db',
    labels: { application: 'patroni', 'cluster-name': 'pg' },
    use_endpoints: true,
    pod_ip: '10.2.3.4',
    ports: [{ name: 'postgresql', port: 5432 }],
    scope_label: 'cluster',
    role_label: 'spilo-role',
    leader_label_value: 'master',
    follower_label_value: 'replica',
    standby_leader_label_value: 'master',
    bypass_api_service: false,
    context: 'kind-pg',
    retriable_http_codes: [401, 503],
    cacert: '/var/run/ca.crt',
  });
  assert.deepEqual(warnings, []);
  const bad = configError(() => load({ PATRONI_ETCD3_HOSTS: undefined, PATRONI_KUBERNETES_LABELS: '{a: b}', PATRONI_KUBERNETES_POD_IP: 'pod-1' }));
  assert.equal(bad.path, 'kubernetes.pod_ip');
  assert.equal(configError(() => load({ PATRONI_ETCD3_HOSTS: undefined, PATRONI_KUBERNETES_NAMESPACE: 'db' })).path, 'kubernetes.labels');
});

test('log: PATRONI_LOG_LEVEL (and the old PATRONI_LOGLEVEL) in any case; other log keys are named as unsupported', () => {
  assert.equal(load({ PATRONI_LOG_LEVEL: 'debug' }).config.log?.level, 'DEBUG');
  assert.equal(load({ PATRONI_LOGLEVEL: 'WARNING' }).config.log?.level, 'WARNING');
  assert.equal(load({ PATRONI_LOGLEVEL: 'WARNING', PATRONI_LOG_LEVEL: 'ERROR' }).config.log?.level, 'ERROR', 'the new name wins');
  assert.deepEqual(load({ PATRONI_LOG_FORMAT: '%(message)s', PATRONI_LOG_DIR: '/var/log/x' }).warnings, [
    'log.format: not supported yet, ignored',
    'log.dir: not supported yet, ignored',
  ]);
  assert.equal(configError(() => load({ PATRONI_LOG_LEVEL: 'LOUD' })).path, 'log.level');
});

test('a config of variables alone, or an empty file / {} with the variables, is a whole config', () => {
  for (const text of ['', '{}', '# nothing here\n']) {
    const { config, warnings } = load({ PATRONI_RESTAPI_CONNECT_ADDRESS: undefined, PATRONI_POSTGRESQL_CONNECT_ADDRESS: undefined }, text);
    assert.equal(config.name, 'n1');
    assert.equal(config.restapi.connect_address, '127.0.0.1:8008');
    assert.deepEqual(warnings, ['restapi.connect_address: not set, using 127.0.0.1:8008 from listen', 'postgresql.connect_address: not set, using 127.0.0.1:5432 from listen']);
  }
  assert.equal(loadConfig({ env: BASE }).config.scope, 'pg', 'no file at all');
});

test('PATRONI_CONFIGURATION: a YAML document instead of a file; invalid YAML names the variable', () => {
  const yaml = 'scope: y\nname: y1\nrestapi: {listen: "127.0.0.1:8008"}\netcd3: {host: "127.0.0.1:2379"}\npostgresql:\n  listen: "127.0.0.1:5432"\n  data_dir: /y\n  authentication: {superuser: {username: postgres}, replication: {username: rep}}\n';
  assert.equal(loadConfig({ env: { PATRONI_CONFIGURATION: yaml } }).config.name, 'y1');
  assert.match(configError(() => loadConfig({ env: { PATRONI_CONFIGURATION: 'scope: [' } })).message, /PATRONI_CONFIGURATION is not valid YAML/);
  assert.match(configError(() => loadConfig({ env: { PATRONI_CONFIGURATION: '- a list' } })).message, /PATRONI_CONFIGURATION must be a YAML mapping/);
});
