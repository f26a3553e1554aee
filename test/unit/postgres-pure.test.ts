import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { DaemonConfig } from '../../src/config/types.js';
import { effectiveParameters, pgHbaConf, postgresqlConf, primaryConninfo } from '../../src/postgres/conf.js';
import { parseControlData } from '../../src/postgres/controldata.js';
import { localPosition, needsRewind, parseHistoryFile, parseWaldumpEnd } from '../../src/postgres/instance.js';
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js';

const cfg: DaemonConfig = {
  scope: 'demo',
  name: 'm1',
  namespace: '/service/',
  restapi: { listen: '127.0.0.1:8008', connect_address: '127.0.0.1:8008' },
  bootstrap: { dcs: {}, initdb: [], pg_hba: ['host all all 0.0.0.0/0 md5'] },
  postgresql: {
    listen: '0.0.0.0:5433',
    connect_address: '10.0.0.1:5433',
    data_dir: '/d',
    authentication: { superuser: { username: 'postgres', password: 'x' }, replication: { username: 'rep', password: "it's a secret" } },
    parameters: { work_mem: '8MB', max_connections: 500, log_line_prefix: "%m [%p] '%a' " },
    remove_data_directory_on_rewind_failure: false,
    remove_data_directory_on_diverged_timelines: false,
    create_replica_methods: ['basebackup'],
  },
  tags: {},
  unsupported: [],
};
const dyn = effectiveDynamicConfig(null, { postgresql: { parameters: { work_mem: '4MB', max_connections: 200, wal_level: 'logical' } } }).dynamic;

test('parameters: dynamic, then local; cluster-wide ones only from the dynamic config; forced ones last', () => {
  const p = effectiveParameters(cfg, dyn);
  assert.equal(p.work_mem, '8MB', 'local wins for ordinary parameters');
  assert.equal(p.max_connections, 200, 'max_connections must be the same on every member: dynamic only');
  assert.equal(p.wal_level, 'logical');
  assert.equal(p.listen_addresses, '0.0.0.0');
  assert.equal(p.port, 5433);
  assert.equal(p.hot_standby, 'on');
  assert.equal(p.wal_log_hints, 'on');
  assert.equal(p.max_wal_senders, 10);
  assert.equal(p.cluster_name, 'demo');
  assert.equal(p.hba_file, '/d/pg_hba.conf');
  assert.equal(p.unix_socket_directories, '/', "default socket dir: the data dir's parent");
  assert.equal(effectiveParameters(cfg, dyn, { socketDir: '/tmp' }).unix_socket_directories, '/tmp');
  const own = { ...cfg, postgresql: { ...cfg.postgresql, parameters: { unix_socket_directories: '/run/pg', wal_level: 'minimal', primary_conninfo: 'x' } } };
  const q = effectiveParameters(own, effectiveDynamicConfig(null, {}).dynamic, { socketDir: '/tmp' });
  assert.equal(q.unix_socket_directories, '/run/pg', 'a configured socket dir wins');
  assert.equal(q.wal_level, 'replica');
  assert.equal(q.max_connections, 100);
  assert.equal(q.wal_keep_size, '128MB');
  assert.equal(q.max_replication_slots, 10);
  assert.equal(q.primary_conninfo, undefined, 'standby settings come from the HA state only');
});

test('postgresql.conf quotes values and includes the base file first', () => {
  const text = postgresqlConf(cfg, dyn, { includeBase: true, standby: null });
  const lines = text.split('\n');
  assert.equal(lines[1], "include 'postgresql.base.conf'");
  assert.ok(lines.includes("log_line_prefix = '%m [%p] ''%a'' '"));
  assert.ok(lines.includes('port = 5433'));
  assert.ok(!text.includes('primary_conninfo'));
});

test('standby settings: conninfo with quoting, slot, latest timeline', () => {
  const text = postgresqlConf(cfg, dyn, { includeBase: false, standby: { upstream: { host: '10.0.0.2', port: 5432, slotName: 'm1' }, useSlots: true } });
  assert.ok(text.includes("primary_slot_name = 'm1'"));
  assert.ok(text.includes("recovery_target_timeline = 'latest'"));
  const ci = primaryConninfo(cfg, { host: '10.0.0.2', port: 5432 });
  assert.equal(ci, "host=10.0.0.2 port=5432 user=rep password='it\\'s a secret' application_name=m1 sslmode=prefer gssencmode=prefer channel_binding=prefer");
  const noUp = postgresqlConf(cfg, dyn, { includeBase: false, standby: { upstream: null, useSlots: true } });
  assert.ok(noUp.includes("primary_conninfo = ''"));
  assert.ok(noUp.includes("primary_slot_name = ''"));
});

test('pg_hba: postgresql.pg_hba, then dynamic, then bootstrap, then a safe default', () => {
  assert.match(pgHbaConf(cfg, dyn), /host all all 0\.0\.0\.0\/0 md5/);
  assert.match(pgHbaConf({ ...cfg, postgresql: { ...cfg.postgresql, pg_hba: ['local all all peer'] } }, dyn), /^local all all peer$/m);
  const dynHba = effectiveDynamicConfig({ postgresql: { pg_hba: ['host all all 10.0.0.0/8 scram-sha-256'] } }, {}).dynamic;
  assert.match(pgHbaConf(cfg, dynHba), /10\.0\.0\.0\/8/);
  const def = pgHbaConf({ ...cfg, bootstrap: { dcs: {}, initdb: [] } }, dyn);
  assert.match(def, /^host replication rep all scram-sha-256$/m);
});

test('LSNs round-trip', () => {
  assert.equal(parseLsn('0/3000060'), 0x3000060);
  assert.equal(parseLsn('16/B374D848'), 0x16b374d848);
  assert.equal(formatLsn(0x16b374d848), '16/B374D848');
  assert.equal(parseLsn('garbage'), null);
  assert.equal(parseLsn(null), null);
});

const CONTROLDATA = `pg_control version number:            1300
Database system identifier:           7311111111111111111
Database cluster state:               shut down
Latest checkpoint location:           0/5000028
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's TimeLineID:       1
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
`;

test('pg_controldata output is parsed', () => {
  const cd = parseControlData(CONTROLDATA);
  assert.equal(cd.state, 'shut down');
  assert.equal(cd.sysid, '7311111111111111111');
  assert.equal(cd.timeline, 1);
  assert.equal(cd.checkpointLsn, 0x5000028);
  assert.equal(cd.minRecoveryLsn, 0);
});

test('rewind decision from pg_control and the leader history file', () => {
  const cd = parseControlData(CONTROLDATA);
  const history = '1\t0/50000A0\tno recovery target specified\n';
  assert.deepEqual(parseHistoryFile(history), [[1, 0x50000a0, 'no recovery target specified']]);
  assert.equal(needsRewind(cd, 1, ''), false, 'same timeline');
  assert.equal(needsRewind(cd, 2, history, 0x50000a0), false, 'shut down exactly at the switch point');
  assert.equal(needsRewind(cd, 2, history, null), true, 'checkpoint end unknown: rewind to be safe');
  assert.equal(needsRewind(cd, 2, history, 0x5000090), true, 'switch point after our end');
  const replica = { ...cd, state: 'shut down in recovery' as const, minRecoveryLsn: 0x5000000, minRecoveryTimeline: 1 };
  assert.deepEqual(localPosition(replica), { inRecovery: true, timeline: 1, lsn: 0x5000000 });
  assert.equal(needsRewind(replica, 2, history), false, 'replica behind the switch point');
  assert.equal(needsRewind({ ...replica, minRecoveryLsn: 0x6000000 }, 2, history), true, 'replica replayed past it');
  assert.equal(needsRewind({ ...cd, state: 'in production' }, 1, ''), false, 'crashed on the same timeline');
  assert.equal(needsRewind({ ...cd, checkpointLsn: 0x6000000 }, 2, history), true, 'wrote past the switch point');
  assert.equal(needsRewind({ ...cd, state: 'in production' }, 2, history), true, 'crashed: assume diverged');
  assert.equal(needsRewind({ ...cd, timeline: 3 }, 2, history), true, 'ahead of the leader timeline');
  assert.equal(needsRewind(cd, 3, '2\t0/7000000\tx\n'), true, 'our timeline is not in the history');
});

test('pg_waldump: the end of the shutdown checkpoint record', () => {
  const out = 'rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/05000028, prev 0/04000060, desc: CHECKPOINT_SHUTDOWN redo 0/5000028\n';
  const err15 = 'pg_waldump: error: error in WAL record at 0/5000028: invalid record length at 0/50000A0: wanted 24, got 0\n';
  const err16 = 'pg_waldump: error: error in WAL record at 0/5000028: invalid record length at 0/50000A0: expected at least 24, got 0\n';
  assert.equal(parseWaldumpEnd(out, err15, 0x5000028), 0x50000a0);
  assert.equal(parseWaldumpEnd(out, err16, 0x5000028), 0x50000a0);
  assert.equal(parseWaldumpEnd(out + out, err15, 0x5000028), null, 'more records follow: not the end of WAL');
  assert.equal(parseWaldumpEnd(out, err15, 0x6000028), null);
  assert.equal(parseWaldumpEnd('', 'pg_waldump: error: could not find file', 0x5000028), null);
});
