/** lsn.ts, controldata.ts, rewind.ts: parsing PostgreSQL's outputs and the rewind decision (pure). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseControlData } from '../../src/postgres/controldata.js';
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js';
import { historyFilePath, localPosition, needsRewind, parseHistoryFile, parseWaldumpEnd } from '../../src/postgres/rewind.js';

test('LSNs: parse and format round-trip, up to 2^53', () => {
  assert.equal(parseLsn('0/3000060'), 0x3000060);
  assert.equal(parseLsn('16/B374D848'), 0x16b374d848);
  assert.equal(parseLsn(' 0/0 '), 0);
  assert.equal(formatLsn(0x16b374d848), '16/B374D848');
  assert.equal(formatLsn(0), '0/0');
  assert.equal(formatLsn(0x3000060), '0/3000060');
  for (const n of [1, 0xffffffff, 0x100000000, 0x1fffff_ffffffff]) assert.equal(parseLsn(formatLsn(n)), n);
  assert.equal(parseLsn('garbage'), null);
  assert.equal(parseLsn('1/2/3'), null);
  assert.equal(parseLsn(null), null);
  assert.equal(parseLsn(''), null);
});

// Real output of PostgreSQL 15's pg_controldata (LC_ALL=C), shortened in the middle.
const CONTROLDATA = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7711990853209711040
Database cluster state:               shut down
pg_control last modified:             Wed Nov 25 06:23:15 2026
Latest checkpoint location:           0/5000028
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's REDO WAL file:    000000010000000000000005
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
Latest checkpoint's NextXID:          0:724
Latest checkpoint's oldestCommitTsXid:0
Time of latest checkpoint:            Wed Nov 25 06:23:15 2026
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
wal_log_hints setting:                on
Data page checksum version:           1
`;

test('pg_controldata output is parsed', () => {
  const cd = parseControlData(CONTROLDATA);
  assert.deepEqual(cd, {
    state: 'shut down',
    sysid: '7711990853209711040',
    timeline: 1,
    checkpointLsn: 0x5000028,
    redoLsn: 0x5000028,
    minRecoveryLsn: 0,
    minRecoveryTimeline: 0,
  });
  const replica = parseControlData(
    CONTROLDATA.replace('shut down', 'shut down in recovery').replace('location:     0/0', 'location:     0/6000100').replace("timeline:   0", 'timeline:   2'),
  );
  assert.equal(replica.state, 'shut down in recovery');
  assert.equal(replica.minRecoveryLsn, 0x6000100);
  assert.equal(replica.minRecoveryTimeline, 2);
  assert.deepEqual(parseControlData(''), { state: null, sysid: null, timeline: null, checkpointLsn: null, redoLsn: null, minRecoveryLsn: null, minRecoveryTimeline: null });
});

test('timeline history files', () => {
  const text = '1\t0/50000A0\tno recovery target specified\n\n2\t0/7000000\tbefore 2000-01-01 00:00:00+00\n';
  assert.deepEqual(parseHistoryFile(text), [
    [1, 0x50000a0, 'no recovery target specified'],
    [2, 0x7000000, 'before 2000-01-01 00:00:00+00'],
  ]);
  assert.deepEqual(parseHistoryFile(''), []);
  assert.equal(historyFilePath(2), 'pg_wal/00000002.history');
  assert.equal(historyFilePath(26), 'pg_wal/0000001A.history');
});

test('local position: replica from its minimum recovery point, primary from its shutdown checkpoint, crashed: none', () => {
  const cd = parseControlData(CONTROLDATA);
  assert.deepEqual(localPosition(cd), { inRecovery: false, timeline: 1, lsn: 0x5000028 });
  const replica = { ...cd, state: 'shut down in recovery' as const, minRecoveryLsn: 0x5000000, minRecoveryTimeline: 1 };
  assert.deepEqual(localPosition(replica), { inRecovery: true, timeline: 1, lsn: 0x5000000 });
  assert.deepEqual(localPosition({ ...replica, minRecoveryLsn: 0 }), { inRecovery: false, timeline: 1, lsn: 0x5000028 }, 'no recovery point: was a primary');
  assert.equal(localPosition({ ...cd, state: 'in production' }), null);
  assert.equal(localPosition({ ...cd, state: 'in crash recovery' }), null);
});

test('rewind decision (Patroni _check_timeline_and_lsn)', () => {
  const cd = parseControlData(CONTROLDATA);
  const history = '1\t0/50000A0\tno recovery target specified\n';
  assert.equal(needsRewind(cd, 1, ''), false, 'same timeline');
  assert.equal(needsRewind(cd, 2, history, 0x50000a0), false, 'shut down exactly at the switch point');
  assert.equal(needsRewind(cd, 2, history, null), true, 'checkpoint end unknown: rewind to be safe');
  assert.equal(needsRewind(cd, 2, history, 0x5000090), true, 'our checkpoint ends before the switch point: the old timeline went on without us');
  assert.equal(needsRewind({ ...cd, checkpointLsn: 0x6000000 }, 2, history), true, 'wrote past the switch point');
  const replica = { ...cd, state: 'shut down in recovery' as const, minRecoveryLsn: 0x5000000, minRecoveryTimeline: 1 };
  assert.equal(needsRewind(replica, 2, history), false, 'replica behind the switch point');
  assert.equal(needsRewind({ ...replica, minRecoveryLsn: 0x50000a0 }, 2, history), false, 'replica exactly at the switch point');
  assert.equal(needsRewind({ ...replica, minRecoveryLsn: 0x6000000 }, 2, history), true, 'replica replayed past it');
  assert.equal(needsRewind({ ...cd, state: 'in production' }, 1, ''), false, 'crashed on the same timeline');
  assert.equal(needsRewind({ ...cd, state: 'in production' }, 2, history), true, 'crashed on an older timeline: assume diverged');
  assert.equal(needsRewind({ ...cd, timeline: 3 }, 2, history), true, 'ahead of the leader timeline');
  assert.equal(needsRewind(cd, 3, '2\t0/7000000\tx\n'), true, 'our timeline is not in the history');
  assert.equal(needsRewind(cd, 3, '1\t0/50000A0\tx\n2\t0/7000000\ty\n', 0x50000a0), false, 'several promotions later, still on the path');
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
