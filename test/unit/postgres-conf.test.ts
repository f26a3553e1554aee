/** conf.ts and options.ts: what PostgreSQL's config files say, from the daemon config (pure). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { DaemonConfig } from '../../src/config/types.js';
import {
  conninfoValue,
  effectiveParameters,
  listenParts,
  pgHbaConf,
  postgresqlConf,
  primaryConninfo,
  quoteValue,
  sanitizeAutoConf,
  sizeInMB,
  standbyParameters,
} from '../../src/postgres/conf.js';
import { BASEBACKUP_NOT_ALLOWED, INITDB_NOT_ALLOWED, fastSyncArgs, toolArgs } from '../../src/postgres/options.js';

const cfg: DaemonConfig = {
  scope: 'demo',
  name: 'm1',
  namespace: '/service/',
  restapi: { listen: '127.0.0.1:8008', connect_address: '127.0.0.1:8008' },
  bootstrap: { dcs: {}, initdb: [], pg_hba: ['host all all 0.0.0.0/0 md5'] },
  postgresql: {
    listen: '0.0.0.0:5433',
    connect_address: '10.0.0.1:5433',
    data_dir: '/d/data',
    authentication: { superuser: { username: 'postgres', password: 'x' }, replication: { username: 'rep', password: "it's a secret" } },
    parameters: { work_mem: '8MB', max_connections: 500, wal_keep_size: '1GB', port: 1, log_line_prefix: "%m [%p] '%a' " },
    remove_data_directory_on_rewind_failure: false,
    remove_data_directory_on_diverged_timelines: false,
    create_replica_methods: ['basebackup'],
  },
  tags: {},
  unsupported: [],
};
const dynamicWith = (parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  effectiveDynamicConfig(null, { postgresql: { parameters, ...extra } }).dynamic;
const dyn = dynamicWith({ work_mem: '4MB', max_connections: 200, wal_level: 'logical' });

test('parameters: dynamic, then local, except the cluster-wide ones, which only the dynamic config sets', () => {
  const p = effectiveParameters(cfg, dyn);
  assert.equal(p.work_mem, '8MB', 'local wins for ordinary parameters');
  assert.equal(p.max_connections, 200, 'max_connections must be the same on every member: dynamic only');
  assert.equal(p.wal_keep_size, '128MB', 'a local wal_keep_size is ignored like in Patroni');
  assert.equal(p.wal_level, 'logical');
  assert.equal(p.log_line_prefix, "%m [%p] '%a' ");
});

test('parameters: forced values win over everything', () => {
  const p = effectiveParameters(cfg, dynamicWith({ hot_standby: 'off', wal_log_hints: 'off', listen_addresses: '*', port: 7, cluster_name: 'x' }));
  assert.equal(p.listen_addresses, '0.0.0.0');
  assert.equal(p.port, 5433, 'the port comes from postgresql.listen, not from parameters');
  assert.equal(p.cluster_name, 'demo');
  assert.equal(p.hot_standby, 'on');
  assert.equal(p.wal_log_hints, 'on', 'pg_rewind needs it');
  assert.equal(p.hba_file, '/d/data/pg_hba.conf');
  assert.equal(p.ident_file, '/d/data/pg_ident.conf');
});

test("parameters: Patroni's defaults, and invalid dynamic values of cluster-wide settings fall back to them", () => {
  const none = effectiveParameters(cfg, dynamicWith({}));
  assert.deepEqual(
    [none.max_connections, none.max_wal_senders, none.max_replication_slots, none.max_worker_processes, none.wal_keep_size],
    [100, 10, 10, 8, '128MB'],
  );
  assert.deepEqual([none.max_prepared_transactions, none.max_locks_per_transaction, none.track_commit_timestamp, none.wal_level], [0, 64, 'off', 'replica']);
  const bad = effectiveParameters(cfg, dynamicWith({ max_connections: 10, max_wal_senders: 'many', wal_level: 'minimal', wal_keep_size: '8MB', track_commit_timestamp: 'maybe' }));
  assert.equal(bad.max_connections, 100, 'below the minimum of 25');
  assert.equal(bad.max_wal_senders, 10);
  assert.equal(bad.wal_level, 'replica', 'minimal cannot replicate');
  assert.equal(bad.wal_keep_size, '128MB');
  assert.equal(bad.track_commit_timestamp, 'off');
  const ok = effectiveParameters(cfg, dynamicWith({ max_connections: '150', wal_level: 'hot_standby', wal_keep_size: '1GB', track_commit_timestamp: 'on' }));
  assert.deepEqual([ok.max_connections, ok.wal_level, ok.wal_keep_size, ok.track_commit_timestamp], ['150', 'replica', '1GB', 'on']);
});

test('parameters: wal_keep_segments becomes wal_keep_size (PostgreSQL 13+), names are case-insensitive', () => {
  const p = effectiveParameters(cfg, dynamicWith({ wal_keep_segments: 20, Work_Mem: '2MB' }));
  assert.equal(p.wal_keep_size, '320MB');
  assert.equal(p.wal_keep_segments, undefined);
  assert.equal(p.work_mem, '8MB', 'the local work_mem still wins over the dynamic Work_Mem');
  assert.equal(effectiveParameters(cfg, dynamicWith({ wal_keep_segments: 20, wal_keep_size: '64MB' })).wal_keep_size, '64MB');
});

test('parameters: socket directory, hba file and the settings only we write', () => {
  assert.equal(effectiveParameters(cfg, dyn).unix_socket_directories, '/d', "default socket dir: the data dir's parent");
  assert.equal(effectiveParameters(cfg, dyn, { socketDir: '/tmp' }).unix_socket_directories, '/tmp');
  const own = {
    ...cfg,
    postgresql: {
      ...cfg.postgresql,
      parameters: { unix_socket_directories: '/run/pg', hba_file: 'custom_hba.conf', primary_conninfo: 'x', recovery_target_timeline: '3', restore_command: 'cp a b' },
    },
  };
  const q = effectiveParameters(own, dynamicWith({}), { socketDir: '/tmp' });
  assert.equal(q.unix_socket_directories, '/run/pg', 'a configured socket dir wins');
  assert.equal(q.hba_file, '/d/data/custom_hba.conf', 'relative to the data dir');
  assert.equal(q.primary_conninfo, undefined, 'standby settings come from the HA state only');
  assert.equal(q.recovery_target_timeline, undefined);
  assert.equal(q.restore_command, 'cp a b', 'archive recovery settings are the user’s');
});

test('postgresql.conf: the base file first, values quoted', () => {
  const text = postgresqlConf(cfg, dyn, { includeBase: true, standby: null });
  const lines = text.split('\n');
  assert.equal(lines[1], "include 'postgresql.base.conf'");
  assert.ok(lines.includes("log_line_prefix = '%m [%p] ''%a'' '"));
  assert.ok(lines.includes('port = 5433'));
  assert.ok(lines.includes("hot_standby = 'on'"));
  assert.ok(!text.includes('primary_conninfo'));
  assert.ok(!postgresqlConf(cfg, dyn, { includeBase: false, standby: null }).includes('include'));
  assert.equal(quoteValue('a\\b'), "'a\\\\b'");
  assert.equal(quoteValue(true), 'on');
  assert.equal(quoteValue(3), '3');
});

test('standby settings: conninfo, our slot, latest timeline, empty recovery targets', () => {
  const up = { host: '10.0.0.2', port: 5432 };
  const sp = standbyParameters(cfg, { upstream: up, useSlots: true });
  assert.equal(sp.primary_slot_name, 'm1', "default: the slot named after us");
  assert.equal(sp.recovery_target_timeline, 'latest');
  assert.equal(sp.recovery_target, '');
  assert.equal(sp.recovery_target_lsn, '');
  assert.equal(standbyParameters(cfg, { upstream: { ...up, slotName: 'other' }, useSlots: true }).primary_slot_name, 'other');
  assert.equal(standbyParameters(cfg, { upstream: up, useSlots: false }).primary_slot_name, '');
  const none = standbyParameters(cfg, { upstream: null, useSlots: true });
  assert.deepEqual([none.primary_conninfo, none.primary_slot_name], ['', '']);
  const text = postgresqlConf(cfg, dyn, { includeBase: false, standby: { upstream: up, useSlots: true } });
  assert.ok(text.includes("primary_slot_name = 'm1'"));
  assert.ok(text.includes("primary_conninfo = 'host=10.0.0.2 port=5432 user=rep password=''it\\\\''s a secret'' application_name=m1"));
});

test('primary_conninfo: libpq quoting of passwords, application_name, prefer modes', () => {
  assert.equal(
    primaryConninfo(cfg, { host: '10.0.0.2', port: 5432 }),
    "host=10.0.0.2 port=5432 user=rep password='it\\'s a secret' application_name=m1 sslmode=prefer gssencmode=prefer channel_binding=prefer",
  );
  assert.equal(conninfoValue('plain'), 'plain');
  assert.equal(conninfoValue(''), "''");
  assert.equal(conninfoValue('a=b'), "'a=b'");
  assert.equal(conninfoValue('back\\slash'), "'back\\\\slash'");
  const ssl = { ...cfg, postgresql: { ...cfg.postgresql, authentication: { ...cfg.postgresql.authentication, replication: { username: 'rep', sslmode: 'verify-full', sslrootcert: '/ca.pem' } } } };
  assert.equal(
    primaryConninfo(ssl, { host: 'h', port: 1 }),
    'host=h port=1 user=rep application_name=m1 sslmode=verify-full sslrootcert=/ca.pem gssencmode=prefer channel_binding=prefer',
    'no password: none written; TLS settings of the replication credentials carried over',
  );
});

test('postgresql.auto.conf loses recovery settings only', () => {
  const auto = "# Do not edit this file manually!\nwork_mem = '5MB'\nprimary_conninfo = 'host=x'\nPrimary_Slot_Name='s'\n";
  assert.equal(sanitizeAutoConf(auto), "# Do not edit this file manually!\nwork_mem = '5MB'\n");
  assert.equal(sanitizeAutoConf("work_mem = '5MB'\n"), null, 'unchanged: nothing to write');
});

test('pg_hba: postgresql.pg_hba, then dynamic, then bootstrap, then a safe default', () => {
  assert.match(pgHbaConf(cfg, dyn), /^host all all 0\.0\.0\.0\/0 md5$/m);
  assert.match(pgHbaConf({ ...cfg, postgresql: { ...cfg.postgresql, pg_hba: ['local all all peer'] } }, dyn), /^local all all peer$/m);
  const dynHba = dynamicWith({}, { pg_hba: ['host all all 10.0.0.0/8 scram-sha-256'] });
  assert.match(pgHbaConf(cfg, dynHba), /^host all all 10\.0\.0\.0\/8 scram-sha-256$/m);
  assert.doesNotMatch(pgHbaConf(cfg, dynHba), /md5/);
  const bare = { ...cfg, bootstrap: { dcs: {}, initdb: [] } };
  const def = pgHbaConf(
    { ...bare, postgresql: { ...bare.postgresql, authentication: { ...bare.postgresql.authentication, rewind: { username: 'rewind-user' } } } },
    dynamicWith({}),
  );
  const lines = def.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(lines, [
    'local all all trust',
    'host replication rep all scram-sha-256',
    'host all postgres all scram-sha-256',
    'host all "rewind-user" all scram-sha-256',
    'host all all 127.0.0.1/32 scram-sha-256',
    'host all all ::1/128 scram-sha-256',
  ]);
  assert.ok(!lines.some((l) => l.startsWith('host') && l.includes('trust')), 'no trust over TCP');
});

test('listen addresses and sizes', () => {
  assert.deepEqual(listenParts('0.0.0.0:5433'), { addresses: '0.0.0.0', port: 5433 });
  assert.deepEqual(listenParts('127.0.0.1,10.0.0.1:6000'), { addresses: '127.0.0.1,10.0.0.1', port: 6000 });
  assert.deepEqual(listenParts('[::1]:5433'), { addresses: '::1', port: 5433 });
  assert.deepEqual(listenParts('*'), { addresses: '*', port: 5432 });
  assert.equal(sizeInMB('1GB'), 1024);
  assert.equal(sizeInMB('16384kB'), 16);
  assert.equal(sizeInMB(64), 64);
  assert.equal(sizeInMB('lots'), null);
});

test('initdb/basebackup options: flags and single-key maps; ours are refused', () => {
  assert.deepEqual(toolArgs('bootstrap.initdb', ['data-checksums', { encoding: 'UTF8' }, { locale: 'C' }], INITDB_NOT_ALLOWED), [
    '--data-checksums',
    '--encoding=UTF8',
    '--locale=C',
  ]);
  assert.deepEqual(toolArgs('postgresql.basebackup', { 'max-rate': '100M', checkpoint: 'fast' }, BASEBACKUP_NOT_ALLOWED), ['--max-rate=100M', '--checkpoint=fast']);
  assert.deepEqual(toolArgs('postgresql.basebackup', undefined, BASEBACKUP_NOT_ALLOWED), []);
  assert.throws(() => toolArgs('bootstrap.initdb', [{ pgdata: '/x' }], INITDB_NOT_ALLOWED), /bootstrap\.initdb: option 'pgdata' is not allowed/);
  assert.throws(() => toolArgs('bootstrap.initdb', ['pwfile'], INITDB_NOT_ALLOWED), /not allowed/);
  assert.throws(() => toolArgs('postgresql.basebackup', ['wal-method'], BASEBACKUP_NOT_ALLOWED), /not allowed/);
  assert.throws(() => toolArgs('bootstrap.initdb', [{ a: 'b', c: 'd' }], INITDB_NOT_ALLOWED), /exactly one key/);
});

test('initdb/basebackup durability: --no-sync, then one syncfs of our own; a sync option of the user wins', () => {
  assert.deepEqual(fastSyncArgs([]), { args: ['--no-sync'], syncAfter: true });
  assert.deepEqual(fastSyncArgs(['--data-checksums']), { args: ['--no-sync'], syncAfter: true });
  assert.deepEqual(fastSyncArgs(['--sync-method=fsync']), { args: [], syncAfter: false });
  assert.deepEqual(fastSyncArgs(['--no-sync']), { args: [], syncAfter: false });
  assert.deepEqual(fastSyncArgs(['-N']), { args: [], syncAfter: false });
  assert.deepEqual(fastSyncArgs(['--no-sync-x']), { args: ['--no-sync'], syncAfter: true });
});
