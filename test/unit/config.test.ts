import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { environmentConfig } from '../../src/config/env.js';
import { parseYaml } from '../../src/config/yaml.js';
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

/** The minimal config with one substring replaced (asserting it was there, so a test cannot go stale). */
function minimal(from?: string, to = ''): string {
  if (from === undefined) return MINIMAL;
  assert.ok(MINIMAL.includes(from), `MINIMAL contains ${JSON.stringify(from)}`);
  return MINIMAL.replace(from, to);
}

const load = (text: string, env: NodeJS.ProcessEnv = {}) => loadConfig({ text, env });

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

// --- good files ---------------------------------------------------------------------------------

test('the Patroni example config loads without error or warning', () => {
  const { config, warnings } = loadConfig({ file: EXAMPLE, env: {} });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.unsupported, []);
  assert.equal(config.scope, 'batman');
  assert.equal(config.name, 'postgresql0');
  assert.equal(config.namespace, '/service/');
  assert.deepEqual(config.etcd3, { hosts: ['127.0.0.1:2379'], protocol: undefined, username: undefined, password: undefined });
  assert.equal(config.postgresql.authentication.rewind?.username, 'rewind_user');
  assert.deepEqual(config.bootstrap.initdb, [{ encoding: 'UTF8' }, 'data-checksums']);
  assert.equal(config.bootstrap.dcs.ttl, 30);
  assert.deepEqual(config.bootstrap.pg_hba?.length, 2);
  assert.equal(config.tags.nofailover, false);
});

test('a minimal config gets Patroni defaults', () => {
  const { config, warnings } = load(MINIMAL);
  assert.deepEqual(warnings, []);
  assert.equal(config.namespace, '/service/');
  assert.deepEqual(config.postgresql.create_replica_methods, ['basebackup']);
  assert.equal(config.postgresql.remove_data_directory_on_rewind_failure, false);
  assert.equal(config.postgresql.remove_data_directory_on_diverged_timelines, false);
  assert.equal(config.postgresql.use_pg_rewind, undefined, 'left to the dynamic config');
  assert.deepEqual(config.postgresql.parameters, {});
  assert.deepEqual(config.tags, {});
  assert.deepEqual(config.bootstrap, { dcs: {}, initdb: [] });
  assert.equal(config.kubernetes, undefined);
});

test('a directory of YAML files is merged in name order, later files winning', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-config-'));
  try {
    writeFileSync(join(dir, '10-base.yml'), MINIMAL);
    writeFileSync(join(dir, '20-override.yaml'), 'name: m2\npostgresql: {data_dir: /other}\ntags: {nosync: true}\n');
    writeFileSync(join(dir, 'README.txt'), 'not yaml: [');
    const { config } = loadConfig({ file: dir, env: {} });
    assert.equal(config.name, 'm2');
    assert.equal(config.postgresql.data_dir, '/other');
    assert.equal(config.postgresql.authentication.superuser.username, 'postgres', 'merged, not replaced');
    assert.equal(config.tags.nosync, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// --- bad input ----------------------------------------------------------------------------------

test('a missing required key is named', () => {
  const e = configError(() => load(minimal('  data_dir: /d\n')));
  assert.equal(e.path, 'postgresql.data_dir');
  assert.equal(e.message, 'postgresql.data_dir: required');
  const r = configError(() => load(minimal('    replication: {username: rep, password: r}\n')));
  assert.equal(r.message, 'postgresql.authentication.replication: required');
  const u = configError(() => load(minimal('{username: rep, password: r}', '{password: r}')));
  assert.equal(u.message, 'postgresql.authentication.replication.username: required');
});

test('a wrong type is named with what was given', () => {
  const e = configError(() => load(minimal('name: m1', 'name: [a, b]')));
  assert.equal(e.path, 'name');
  assert.equal(e.message, 'name: expected a string, got ["a","b"]');
  const s = configError(() => load(minimal('  data_dir: /d', '  data_dir: /d\n  pg_hba: host all all 0.0.0.0/0 md5')));
  assert.equal(s.message, 'postgresql.pg_hba: expected a list of strings, got "host all all 0.0.0.0/0 md5"');
  const empty = configError(() => load(minimal('data_dir: /d', 'data_dir: ""')));
  assert.equal(empty.message, 'postgresql.data_dir: must not be empty');
});

test('wrong types inside sections are named with what was given', () => {
  const text = minimal('etcd3: {hosts: 127.0.0.1:2379}', 'etcd3: {hosts: 127.0.0.1:2379, protocol: ftp}').replace(
    'data_dir: /d',
    'data_dir: /d\n  parameters: {work_mem: [1]}',
  );
  const e = configError(() => load(text));
  assert.equal(
    e.message,
    'etcd3.protocol: expected "http" or "https", got "ftp"; postgresql.parameters.work_mem: expected a string, number or boolean, got [1]',
  );
});

test('listen must be host:port with a port from 1 to 65535', () => {
  const noPort = configError(() => load(minimal('listen: 127.0.0.1:8008,', 'listen: 8008,')));
  assert.equal(noPort.path, 'restapi.listen');
  assert.equal(noPort.message, 'restapi.listen: expected "host:port", got 8008');
  const zero = configError(() => load(minimal('listen: 127.0.0.1:5432', 'listen: "127.0.0.1:0"')));
  assert.equal(zero.message, 'postgresql.listen: port must be from 1 to 65535, got "127.0.0.1:0"');
  const high = configError(() => load(minimal('listen: 127.0.0.1:5432', 'listen: 127.0.0.1:70000')));
  assert.equal(high.path, 'postgresql.listen');
  const connect = configError(() => load(minimal('connect_address: 127.0.0.1:5432', 'connect_address: "db:99999"')));
  assert.equal(connect.path, 'postgresql.connect_address');
  const wild = configError(() => load(minimal('connect_address: 127.0.0.1:5432', 'connect_address: "*:5432"')));
  assert.equal(wild.message, 'postgresql.connect_address: must be an address others can connect to, not the wildcard "*" (that is for listen)');
  const anyV4 = configError(() => load(minimal('connect_address: 127.0.0.1:8008', 'connect_address: 0.0.0.0:8008')));
  assert.equal(anyV4.path, 'restapi.connect_address');
  const word = configError(() => load(minimal('listen: 127.0.0.1:8008,', 'listen: "localhost:http",')));
  assert.equal(word.message, 'restapi.listen: expected "host:port", got "localhost:http"');
  const list = configError(() => load(minimal('listen: 127.0.0.1:8008,', 'listen: [a],')));
  assert.equal(list.message, 'restapi.listen: expected "host:port", got ["a"]');
});

test('postgresql.listen may name several hosts; restapi.listen only one; * must stand alone', () => {
  const { config, warnings } = load(minimal('listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432', 'listen: "10.0.0.5,127.0.0.1:5433"'));
  assert.equal(config.postgresql.listen, '10.0.0.5,127.0.0.1:5433');
  assert.equal(config.postgresql.connect_address, '10.0.0.5:5433', 'the first host');
  assert.ok(warnings.includes('postgresql.connect_address: not set, using 10.0.0.5:5433 from listen'));
  assert.equal(configError(() => load(minimal('listen: 127.0.0.1:8008,', 'listen: "a,b:8008",'))).path, 'restapi.listen');
  assert.equal(configError(() => load(minimal('listen: 127.0.0.1:5432', 'listen: "*,a:5432"'))).path, 'postgresql.listen');
  assert.equal(load(minimal('listen: 127.0.0.1:5432', 'listen: "*:5432"')).config.postgresql.listen, '*:5432');
});

test('connect_address defaults from a concrete listen host (with a warning), never from a wildcard', () => {
  const { config, warnings } = load(minimal('listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008', 'listen: "[::1]:8008"'));
  assert.equal(config.restapi.connect_address, '[::1]:8008');
  assert.deepEqual(warnings, ['restapi.connect_address: not set, using [::1]:8008 from listen']);
  for (const wildcard of ['0.0.0.0:8008', '"*:8008"', '"[::]:8008"']) {
    const e = configError(() => load(minimal('listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008', `listen: ${wildcard}`)));
    assert.equal(e.path, 'restapi.connect_address', wildcard);
    assert.match(e.message, /required when listen is/);
  }
});

test('several errors are reported together on one line, the first one as path', () => {
  const bad = minimal('name: m1', 'name: 3').replace('  data_dir: /d\n', '').replace('listen: 127.0.0.1:8008,', 'listen: x,');
  const e = configError(() => load(bad));
  assert.equal(e.path, 'name');
  assert.equal(
    e.message,
    'name: expected a string, got 3; restapi.listen: expected "host:port", got "x"; postgresql.data_dir: required',
  );
});

test('an empty config lists every missing key on one line', () => {
  const e = configError(() => load(''));
  assert.equal(e.path, 'scope');
  for (const k of ['scope', 'name', 'restapi', 'postgresql', 'etcd3']) assert.match(e.message, new RegExp(`(^|; )${k}: required`));
});

test('an etcd v2 section is refused with a hint, from the file or from PATRONI_ETCD_*', () => {
  const e = configError(() => load(minimal('etcd3:', 'etcd:')));
  assert.equal(e.path, 'etcd');
  assert.match(e.message, /^etcd: pgwarden speaks etcd v3 only: rename the section to `etcd3:`/);
  const fromEnv = configError(() => load(MINIMAL, { PATRONI_ETCD_HOSTS: 'h:2379' }));
  assert.equal(fromEnv.path, 'etcd');
  assert.match(fromEnv.message, /PATRONI_ETCD3_/);
});

test('a store section is required; an unsupported store is named', () => {
  const none = configError(() => load(minimal('etcd3: {hosts: 127.0.0.1:2379}\n')));
  assert.equal(none.path, 'etcd3');
  assert.match(none.message, /^etcd3: required: a store section/);
  const consul = configError(() => load(minimal('etcd3: {hosts: 127.0.0.1:2379}', 'consul: {host: c:8500}')));
  assert.match(consul.message, /consul is not supported/);
});

test('bootstrap.dcs keys the daemon reads are type-checked at load', () => {
  const e = configError(() => load(`${MINIMAL}bootstrap: {dcs: {ttl: abc, loop_wait: "5", postgresql: {use_slots: maybe}}}\n`));
  assert.equal(e.path, 'bootstrap.dcs.ttl');
  assert.equal(e.message, 'bootstrap.dcs.ttl: expected a number, got "abc"; bootstrap.dcs.postgresql.use_slots: expected a boolean, got "maybe"');
  const params = configError(() => load(`${MINIMAL}bootstrap: {dcs: {postgresql: {parameters: {work_mem: {a: 1}}}}}\n`));
  assert.equal(params.path, 'bootstrap.dcs.postgresql.parameters.work_mem');
});

test('bootstrap.dcs is kept as written; unknown keys in it are warned about; timing is checked', () => {
  const ok = load(`${MINIMAL}bootstrap: {dcs: {ttl: "40", loop_wait: 5, retry_timeout: 5, standby_cluster: {host: x}, not_a_patroni_key: {host: x}}}\n`);
  assert.deepEqual(ok.config.bootstrap.dcs, { ttl: '40', loop_wait: 5, retry_timeout: 5, standby_cluster: { host: 'x' }, not_a_patroni_key: { host: 'x' } });
  assert.deepEqual(ok.warnings, ['bootstrap.dcs.not_a_patroni_key: not supported yet, kept in the stored config but ignored']);
  assert.deepEqual(ok.config.unsupported, ['bootstrap.dcs.not_a_patroni_key']);
  const tight = load(`${MINIMAL}bootstrap: {dcs: {ttl: 20}}\n`);
  assert.deepEqual(tight.warnings, [
    'bootstrap.dcs.ttl: loop_wait + 2*retry_timeout must not exceed ttl 20 (was loop_wait 10, retry_timeout 10); using loop_wait 1, retry_timeout 9',
  ]);
});

// --- unknown keys -------------------------------------------------------------------------------

test('keys not supported yet are warnings naming the full key path, not errors', () => {
  const text = `${MINIMAL}watchdog: {mode: automatic, quirk: 1}\nconsul: {host: x}\nctl: {insecure: true, quirk: 1}\nlog: {level: INFO, format: x}\n`
    .replace('  data_dir: /d', '  data_dir: /d\n  recovery_conf: {restore_command: x}')
    .replace('restapi: {', 'restapi: {allowlist: [a], ');
  const { warnings, config } = load(text);
  assert.deepEqual(config.unsupported, ['restapi.allowlist', 'postgresql.recovery_conf', 'watchdog.quirk', 'consul', 'ctl.quirk', 'log.format']);
  assert.ok(warnings.includes('postgresql.recovery_conf: not supported yet, ignored'));
  assert.ok(warnings.includes('watchdog.quirk: not supported yet, ignored'));
  assert.equal(warnings.length, 6);
});

test('callbacks and pre_promote are read; a callback that is not a string is an error naming it', () => {
  const { config } = load(minimal('data_dir: /d', "data_dir: /d\n  callbacks: {on_start: /bin/true, on_role_change: 'notify --x \"a b\"'}\n  pre_promote: /usr/bin/fence"));
  assert.deepEqual(config.postgresql.callbacks, { on_start: '/bin/true', on_role_change: 'notify --x "a b"' });
  assert.equal(config.postgresql.pre_promote, '/usr/bin/fence');
  assert.throws(() => load(minimal('data_dir: /d', 'data_dir: /d\n  callbacks: {on_stop: [a]}')), /postgresql\.callbacks\.on_stop/);
});

test('unknown keys deep inside known sections are named; open sections accept anything', () => {
  const text = MINIMAL.replace('{username: rep, password: r}', '{username: rep, password: r, sslmode: require, color: blue}').replace(
    'etcd3: {hosts: 127.0.0.1:2379}',
    'etcd3: {hosts: 127.0.0.1:2379, ca_bundle: /ca.pem}',
  );
  const { config } = load(`${text}tags: {zone: a}\nbootstrap: {dcs: {postgresql: {parameters: {anything: 1}}}, something: else}\n`);
  assert.deepEqual(config.unsupported, ['etcd3.ca_bundle', 'postgresql.authentication.replication.color', 'bootstrap.something']);
  assert.equal(config.postgresql.authentication.replication.sslmode, 'require');
  assert.equal(config.postgresql.authentication.replication.color, undefined, 'dropped, as Patroni drops it');
  assert.equal(config.tags.zone, 'a', 'extra tags are kept');
});

test('cluster-wide parameters in the local postgresql.parameters are warned about (Patroni ignores them)', () => {
  const { config, warnings } = load(minimal('data_dir: /d', 'data_dir: /d\n  parameters: {max_connections: 10, port: 1, work_mem: 4MB}'));
  assert.deepEqual(config.postgresql.parameters, { max_connections: 10, port: 1, work_mem: '4MB' });
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /^postgresql\.parameters\.max_connections: ignored here, .*bootstrap\.dcs/);
  assert.match(warnings[1]!, /^postgresql\.parameters\.port: ignored here, it comes from postgresql\.listen/);
});

// --- values as Patroni reads them ---------------------------------------------------------------

test('YAML is read as YAML 1.1, like PyYAML: on/yes are booleans, 0750 is octal, y stays a string', () => {
  assert.deepEqual(parseYaml('a: on\nb: yes\nc: Off\nd: 0750\ne: y\nf: "on"\ng: 1e3\nh: 1:30'), {
    a: true,
    b: true,
    c: false,
    d: 0o750,
    e: 'y',
    f: 'on',
    g: '1e3',
    h: 90,
  });
  const { config } = load(minimal('data_dir: /d', 'data_dir: /d\n  parameters: {unix_socket_permissions: 0750}'));
  assert.equal(config.postgresql.parameters.unix_socket_permissions, 0o750);
});

test('boolean options accept Patroni spellings and refuse others', () => {
  const { config } = load(minimal('data_dir: /d', 'data_dir: /d\n  remove_data_directory_on_rewind_failure: "yes"\n  use_pg_rewind: "off"'));
  assert.equal(config.postgresql.remove_data_directory_on_rewind_failure, true);
  assert.equal(config.postgresql.use_pg_rewind, false);
  const tags = load(`${MINIMAL}tags: {nofailover: on, noloadbalance: "false", clonefrom: 1, custom: 1}\n`).config.tags;
  assert.deepEqual(tags, { nofailover: true, noloadbalance: false, clonefrom: true, custom: 1 });
  const e = configError(() => load(`${MINIMAL}tags: {nosync: sometimes}\n`));
  assert.equal(e.message, 'tags.nosync: expected a boolean, got "sometimes"');
});

test('passwords written as numbers become strings; create_replica_methods may be a string', () => {
  const text = minimal('{username: rep, password: r}', '{username: rep, password: 1234}').replace(
    'data_dir: /d',
    'data_dir: /d\n  create_replica_methods: "wal_e, basebackup"',
  );
  const { config } = load(text);
  assert.equal(config.postgresql.authentication.replication.password, '1234');
  assert.deepEqual(config.postgresql.create_replica_methods, ['wal_e', 'basebackup']);
});

test('etcd3 host forms normalise to a list of host:port, with Patroni precedence url > hosts > host', () => {
  const etcd = (section: string, env: NodeJS.ProcessEnv = {}) =>
    loadConfig({ text: minimal('etcd3: {hosts: 127.0.0.1:2379}', section), env }).config.etcd3;
  assert.deepEqual(etcd('etcd3: {hosts: "a:2379, b:2380"}')?.hosts, ['a:2379', 'b:2380']);
  assert.deepEqual(etcd('etcd3: {hosts: [a:1, b]}')?.hosts, ['a:1', 'b:2379'], 'etcd port by default');
  assert.deepEqual(etcd('etcd3: {hosts: [a, "b:1"], port: 2380}')?.hosts, ['a:2380', 'b:1'], '`port` is the default port');
  assert.deepEqual(etcd('etcd3: {host: "c:2379"}')?.hosts, ['c:2379']);
  assert.deepEqual(etcd('etcd3: {host: "[::1]"}')?.hosts, ['[::1]:2379'], 'IPv6 bracketed');
  assert.deepEqual(etcd('etcd3: {hosts: ["::1:2380"]}')?.hosts, ['[::1]:2380'], 'the last colon separates the port');
  assert.deepEqual(etcd('etcd3: {url: "https://u:p%40w@e:2390"}'), { hosts: ['e:2390'], protocol: 'https', username: 'u', password: 'p@w' });
  const both = loadConfig({ text: minimal('etcd3: {hosts: 127.0.0.1:2379}', 'etcd3: {hosts: x:1, host: y:2}'), env: {} });
  assert.deepEqual(both.config.etcd3?.hosts, ['x:1']);
  assert.deepEqual(both.warnings, ['etcd3.host: ignored because etcd3.hosts is set (Patroni gives hosts precedence)']);
});

test('bad etcd3 hosts are named by position', () => {
  const e = configError(() => load(minimal('etcd3: {hosts: 127.0.0.1:2379}', 'etcd3: {hosts: ["a:1", "b:99999", "c d", "::1"]}')));
  assert.equal(
    e.message,
    'etcd3.hosts.1: port must be from 1 to 65535, got "b:99999"; etcd3.hosts.2: expected "host:port", got "c d"; etcd3.hosts.3: expected "host:port", got "::1"',
  );
  const none = configError(() => load(minimal('etcd3: {hosts: 127.0.0.1:2379}', 'etcd3: {protocol: http}')));
  assert.equal(none.path, 'etcd3.hosts');
  const url = configError(() => load(minimal('etcd3: {hosts: 127.0.0.1:2379}', 'etcd3: {url: "ftp://x"}')));
  assert.equal(url.path, 'etcd3.url');
});

test('a kubernetes section is a store section; its known keys are checked like Patroni does', () => {
  const { config, warnings } = load(
    minimal('etcd3: {hosts: 127.0.0.1:2379}', 'kubernetes: {namespace: db, labels: {app: pg}, use_endpoints: "on", pod_ip: 10.0.0.7, future_key: 1}'),
  );
  assert.equal(config.etcd3, undefined);
  assert.deepEqual(config.kubernetes, { namespace: 'db', labels: { app: 'pg' }, use_endpoints: true, pod_ip: '10.0.0.7', future_key: 1 });
  assert.deepEqual(warnings, []);
  const e = configError(() =>
    load(minimal('etcd3: {hosts: 127.0.0.1:2379}', 'kubernetes: {pod_ip: 10.0.0, ports: [{name: pg, port: 0}]}')),
  );
  assert.equal(
    e.message,
    'kubernetes.labels: required; kubernetes.pod_ip: expected an IPv4 or IPv6 address, got "10.0.0"; kubernetes.ports.0.port: port must be from 1 to 65535, got 0',
  );
});

// --- sources ------------------------------------------------------------------------------------

test('invalid YAML, a non-mapping document and a missing file are clear errors', () => {
  assert.match(configError(() => load('scope: [unclosed')).message, /^config is not valid YAML: /);
  assert.match(configError(() => load('- a\n- b')).message, /must be a YAML mapping/);
  const missing = configError(() => loadConfig({ file: '/nonexistent/pgwarden.yml', env: {} }));
  assert.match(missing.message, /^cannot read config file \/nonexistent\/pgwarden\.yml: /);
});

// --- environment --------------------------------------------------------------------------------

test('PATRONI_* variables override the file, merging into its sections', () => {
  const { config } = load(MINIMAL, {
    PATRONI_NAME: 'm9',
    PATRONI_POSTGRESQL_DATA_DIR: '/other',
    PATRONI_REPLICATION_PASSWORD: 'new',
    PATRONI_ETCD3_HOSTS: 'h1:2379,h2:2379',
    PATRONI_RESTAPI_LISTEN: '127.0.0.1:9008',
    PATRONI_SCOPE: '',
  });
  assert.equal(config.name, 'm9');
  assert.equal(config.scope, 's', 'an empty variable is ignored, as Patroni does');
  assert.equal(config.postgresql.data_dir, '/other');
  assert.equal(config.postgresql.authentication.replication.password, 'new');
  assert.equal(config.postgresql.authentication.replication.username, 'rep', 'kept from the file');
  assert.deepEqual(config.etcd3?.hosts, ['h1:2379', 'h2:2379']);
  assert.equal(config.restapi.listen, '127.0.0.1:9008');
  assert.equal(config.restapi.connect_address, '127.0.0.1:8008');
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
  assert.equal(config.postgresql.connect_address, '127.0.0.1:5432');
  assert.deepEqual(warnings, [
    'restapi.connect_address: not set, using 127.0.0.1:8008 from listen',
    'postgresql.connect_address: not set, using 127.0.0.1:5432 from listen',
  ]);
  assert.deepEqual(config.bootstrap.users, { admin: { password: 'z', options: ['createdb', 'createrole'] } });
});

test('PATRONI_ETCD3_HOSTS takes every list form Patroni takes', () => {
  const hosts = (v: string) => load(MINIMAL, { PATRONI_ETCD3_HOSTS: v }).config.etcd3?.hosts;
  assert.deepEqual(hosts('f:1,g:2'), ['f:1', 'g:2']);
  assert.deepEqual(hosts('f:1, g:2'), ['f:1', 'g:2']);
  assert.deepEqual(hosts('[f:1, g:2]'), ['f:1', 'g:2']);
  assert.deepEqual(hosts('["f:1","g:2"]'), ['f:1', 'g:2']);
  assert.deepEqual(hosts('- f:1\n- g:2'), ['f:1', 'g:2']);
  assert.deepEqual(hosts('f'), ['f:2379']);
  assert.deepEqual(load(MINIMAL, { PATRONI_ETCD3_URL: 'http://u:2381' }).config.etcd3?.hosts, ['u:2381']);
});

test('auth variables go to their sections, other *_PASSWORD variables become bootstrap users', () => {
  const { config, warnings } = load(MINIMAL, {
    PATRONI_RESTAPI_USERNAME: 'api',
    PATRONI_RESTAPI_PASSWORD: 'apipw',
    PATRONI_REWIND_USERNAME: 'rw',
    PATRONI_REWIND_PASSWORD: 'rwpw',
    PATRONI_SUPERUSER_PASSWORD: 'su',
    PATRONI_SUPERUSER_SSLMODE: 'verify-full',
    PATRONI_ETCD3_USERNAME: 'eu',
    PATRONI_ETCD3_PASSWORD: 'epw',
    PATRONI_ETCD3_PROTOCOL: 'https',
    PATRONI_RESTAPI_KEYFILE_PASSWORD: 'kp',
    PATRONI_app_PASSWORD: 'apppw',
    PATRONI_app_user_PASSWORD: 'pw2',
    PATRONI_empty_PASSWORD: '',
    PATRONI_NAMESPACE: '/pg/',
  });
  assert.deepEqual(config.restapi.authentication, { username: 'api', password: 'apipw' });
  assert.deepEqual(config.postgresql.authentication.rewind, { username: 'rw', password: 'rwpw' });
  assert.deepEqual(config.postgresql.authentication.superuser, { username: 'postgres', password: 'su', sslmode: 'verify-full' });
  assert.deepEqual(config.etcd3, { hosts: ['127.0.0.1:2379'], protocol: 'https', username: 'eu', password: 'epw' });
  assert.deepEqual(config.bootstrap.users, { app: { password: 'apppw' }, app_user: { password: 'pw2' } });
  assert.equal(config.namespace, '/pg/');
  assert.equal(config.restapi.keyfile_password, 'kp', 'consumed, not taken for a user');
  assert.deepEqual(warnings, []);
});

test('PATRONI_KUBERNETES_* fill the kubernetes section with typed values', () => {
  const { config, warnings } = load(minimal('etcd3: {hosts: 127.0.0.1:2379}', 'kubernetes: {namespace: default}'), {
    PATRONI_KUBERNETES_LABELS: '{app: pg, team: db}',
    PATRONI_KUBERNETES_USE_ENDPOINTS: 'true',
    PATRONI_KUBERNETES_POD_IP: '10.1.2.3',
    PATRONI_KUBERNETES_PORTS: '[{"name": "postgresql", "port": 5432}]',
  });
  assert.deepEqual(config.kubernetes, {
    namespace: 'default',
    labels: { app: 'pg', team: 'db' },
    use_endpoints: true,
    pod_ip: '10.1.2.3',
    ports: [{ name: 'postgresql', port: 5432 }],
  });
  assert.deepEqual(warnings, []);
});

test('variables that are not ours do not create sections or users', () => {
  const env = {
    PATRONI_SERVICE_HOST: '10.0.0.1', // injected by Kubernetes for a Service named "patroni"
    PATRONI_PORT: 'tcp://10.0.0.1:8008',
    PATRONI_ETCD3_PORT: 'tcp://10.0.0.2:2379', // not an integer: dropped, as Patroni drops it
    HOME: '/root',
  };
  const { config, warnings } = load(MINIMAL, env);
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.etcd3?.hosts, ['127.0.0.1:2379']);
  assert.equal(config.bootstrap.users, undefined);
});

test('PATRONI_CONFIGURATION holds the whole config when there is no file, taken as it is', () => {
  const { config } = loadConfig({ env: { PATRONI_CONFIGURATION: MINIMAL, PATRONI_NAME: 'ignored' } });
  assert.equal(config.name, 'm1');
  const withFile = loadConfig({ text: MINIMAL.replace('name: m1', 'name: f1'), env: { PATRONI_CONFIGURATION: MINIMAL } });
  assert.equal(withFile.config.name, 'f1', 'a file wins');
});

test('environmentConfig maps sections, typed values and legacy log names like Patroni', () => {
  const out = environmentConfig({
    PATRONI_LOGLEVEL: 'DEBUG',
    PATRONI_LOG_FILE_NUM: '4',
    PATRONI_RESTAPI_ALLOWLIST: '127.0.0.1, 10.0.0.0/8',
    PATRONI_RESTAPI_ALLOWLIST_INCLUDE_MEMBERS: 'on',
    PATRONI_CTL_INSECURE: 'maybe',
    PATRONI_ZOOKEEPER_HOSTS: "['z1:2181']",
  });
  assert.deepEqual(out, {
    log: { level: 'DEBUG', file_num: 4 },
    restapi: { allowlist: ['127.0.0.1', '10.0.0.0/8'], allowlist_include_members: true },
    ctl: {},
    zookeeper: { hosts: ['z1:2181'] },
  });
  assert.deepEqual(environmentConfig({ PATRONI_ETCD3_PASSWORD: 'x' }), { bootstrap: { users: { ETCD3: { password: 'x' } } } }, 'no etcd3 section anywhere');
  assert.deepEqual(environmentConfig({ PATRONI_ETCD3_PASSWORD: 'x' }, { etcd3: {} }), { etcd3: { password: 'x' } });
});

test('custom replica methods: postgresql.<method> sections are read for the methods named, not warned about', () => {
  const { config, warnings } = load(minimal('data_dir: /d', 'data_dir: /d\n  create_replica_methods: [pgbackrest, basebackup]\n  pgbackrest: {command: /usr/bin/pgbackrest --stanza=main restore, keep_data: true, no_leader: true}\n  stray: {x: 1}'));
  assert.deepEqual(config.postgresql.create_replica_methods, ['pgbackrest', 'basebackup']);
  assert.deepEqual(config.postgresql.replica_methods, { pgbackrest: { command: '/usr/bin/pgbackrest --stanza=main restore', keep_data: true, no_leader: true } });
  assert.ok(!warnings.some((w) => w.startsWith('postgresql.pgbackrest')));
  assert.ok(warnings.includes('postgresql.stray: not supported yet, ignored'), 'a section no method names is still reported');
  assert.throws(() => load(minimal('data_dir: /d', 'data_dir: /d\n  create_replica_methods: [wal_e]\n  wal_e: restore')), /postgresql\.wal_e: expected a mapping/);
});

test('bootstrap.method names a section with its command; a missing command is an error naming it', () => {
  const { config, warnings } = load(`${MINIMAL}bootstrap:\n  method: restore\n  restore: {command: /usr/bin/restore --from s3, recovery_conf: {restore_command: cp /a/%f %p, recovery_target_action: promote}}\n`);
  assert.equal(config.bootstrap.method, 'restore');
  assert.deepEqual(config.bootstrap.method_config, {
    command: '/usr/bin/restore --from s3',
    no_params: false,
    keep_existing_recovery_conf: false,
    recovery_conf: { restore_command: 'cp /a/%f %p', recovery_target_action: 'promote' },
  });
  assert.ok(!warnings.some((w) => w.startsWith('bootstrap.restore')));
  assert.throws(() => load(`${MINIMAL}bootstrap: {method: restore, restore: {keep_existing_recovery_conf: true}}\n`), /bootstrap\.restore\.command: required/);
  assert.throws(() => load(`${MINIMAL}bootstrap: {method: restore}\n`), /bootstrap\.restore: bootstrap\.method is "restore"/);
  assert.equal(load(`${MINIMAL}bootstrap: {method: initdb}\n`).config.bootstrap.method_config, undefined, 'initdb is the default method');
});
