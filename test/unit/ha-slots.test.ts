/** Replication slots per role (Patroni's get_replication_slots), cascading replication included. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slotNamesFor } from '../../src/ha/slots.js';
import { cluster, member } from '../helpers/ha-fixtures.js';

const c = cluster({
  members: [
    member('m1', { role: 'master' }),
    member('m2'),
    member('m3', { tags: { replicatefrom: 'm2' } }),
    member('m4', { tags: { replicatefrom: 'gone' } }),
    member('M-5', { tags: { replicatefrom: 'm1' } }),
  ],
});

test('leader: a slot for every member streaming from it, not for those cascading from another member', () => {
  assert.deepEqual(slotNamesFor('m1', 'leader', c), ['m2', 'm4', 'm_5']);
});

test('replica: slots for the members tagged replicatefrom it', () => {
  assert.deepEqual(slotNamesFor('m2', 'replica', c), ['m3']);
  assert.deepEqual(slotNamesFor('m3', 'replica', c), []);
});
