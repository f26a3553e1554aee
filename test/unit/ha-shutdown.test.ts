/** The rules of a daemon shutdown (Patroni's Ha.shutdown / primary_stop_timeout / latest_checkpoint_location). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shutdownOptime, shutdownTimeoutMs } from '../../src/ha/shutdown.js';

test('primary_stop_timeout bounds a shutdown only when above 0 and in synchronous mode; otherwise no bound', () => {
  const cases: Array<[number, boolean | 'quorum', number]> = [
    [0, false, Infinity],
    [0, true, Infinity],
    [30, false, Infinity],
    [30, true, 30_000],
    [30, 'quorum', 30_000],
    [-5, true, Infinity],
  ];
  for (const [primary_stop_timeout, synchronous_mode, want] of cases) {
    assert.equal(shutdownTimeoutMs({ primary_stop_timeout, synchronous_mode }), want, `${primary_stop_timeout} ${String(synchronous_mode)}`);
  }
});

test('the optime published on shutdown is the checkpoint of a clean "shut down" only', () => {
  assert.equal(shutdownOptime({ controlState: 'shut down', controlCheckpointLsn: 0x3000028 }), 0x3000028);
  assert.equal(shutdownOptime({ controlState: 'in production', controlCheckpointLsn: 0x3000028 }), undefined, 'killed: no clean checkpoint');
  assert.equal(shutdownOptime({ controlState: 'shut down in recovery', controlCheckpointLsn: 0x3000028 }), undefined, 'a replica');
  assert.equal(shutdownOptime({ controlState: 'shut down', controlCheckpointLsn: null }), undefined);
  assert.equal(shutdownOptime(null), undefined);
});
