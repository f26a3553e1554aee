/**
 * The HA loop as a component: three HaLoops on one in-memory store with fake PostgreSQL servers and a
 * fake clock, driven tick by tick. Checks the wiring of observe → decide → execute → publish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haWorld } from '../helpers/ha-world.js';
import { CopyCancelledError } from '../../src/util/errors.js';

const TTL = 10;

const world = () => haWorld({ ttl: TTL });

test('three members: one bootstraps, two copy it and follow; slots for both', async () => {
  const w = world();
  await w.round(6);
  const boots = w.nodes.filter((n) => n.pg.calls.includes('bootstrap'));
  assert.equal(boots.length, 1, 'exactly one member ran initdb');
  const leader = boots[0]!;
  assert.equal(await w.leaderKey(), leader.name);
  const replicas = w.nodes.filter((n) => n !== leader);
  for (const r of replicas) {
    assert.ok(r.pg.calls.includes('createReplica'), `${r.name} copied the leader`);
    assert.equal(r.pg.running, true);
    assert.equal(r.pg.upstream?.port, leader.pg.port);
  }
  assert.deepEqual([...leader.pg.slots].sort(), replicas.map((r) => r.name).sort());
  const c = await w.nodes[0]!.store.load();
  assert.equal(c.initialize, '7000');
  assert.equal(c.config?.value.ttl, TTL, 'bootstrap.dcs written to the config key');
  assert.ok(c.members.every((m) => m.data.state === 'running'));
});

test('the leader dies: after ttl one replica takes over, the other follows it', async () => {
  const w = world();
  await w.round(6);
  const old = w.nodes.find((n) => n.pg.calls.includes('bootstrap'))!;
  old.alive = false;
  old.pg.running = false;
  await w.round(TTL - 2);
  assert.equal(await w.leaderKey(), old.name, 'the lock outlives its holder until ttl');
  await w.round(4);
  const next = await w.leaderKey();
  assert.ok(next && next !== old.name);
  const winner = w.nodes.find((n) => n.name === next)!;
  assert.equal(winner.pg.inRecovery, false, 'the new leader promoted');
  const other = w.nodes.find((n) => n !== old && n !== winner)!;
  assert.equal(other.pg.upstream?.port, winner.pg.port, 'the other replica follows the new leader');
  assert.equal(w.nodes.filter((n) => n.alive && n.pg.running && !n.pg.inRecovery).length, 1, 'one primary');
});

test('the leader cut off from the store demotes before its session can expire', async () => {
  const w = world();
  await w.round(6);
  const leader = w.nodes.find((n) => n.pg.calls.includes('bootstrap'))!;
  leader.store.cutOff = true;
  const validUntil = leader.store.sessionValidUntil();
  await leader.loop.tick();
  assert.equal(leader.pg.running, false, 'postgres stopped');
  assert.ok(w.clock.now() < validUntil, 'while its lock could not have expired yet');
  assert.ok(leader.pg.calls.some((c) => c.startsWith('stop:')));
});

test('a former primary that comes back after a failover is rewound, then follows', async () => {
  const w = world();
  await w.round(6);
  const old = w.nodes.find((n) => n.pg.calls.includes('bootstrap'))!;
  old.alive = false;
  old.pg.running = false;
  await w.round(TTL + 3);
  const next = (await w.leaderKey())!;
  old.alive = true;
  await w.round(4);
  assert.ok(old.pg.calls.includes('rewind'), 'diverged timeline detected and rewound');
  assert.equal(old.pg.running, true);
  assert.equal(old.pg.inRecovery, true);
  assert.equal(old.pg.upstream?.port, w.nodes.find((n) => n.name === next)!.pg.port);
});

test('SIGTERM of the leader: postgres stopped first, then the lock released', async () => {
  const w = world();
  await w.round(6);
  const leader = w.nodes.find((n) => n.pg.calls.includes('bootstrap'))!;
  await leader.loop.stop({ stopPostgres: true });
  leader.alive = false;
  assert.equal(leader.pg.running, false);
  assert.equal(await w.leaderKey(), null, 'the lock is free at once');
  await w.round(2);
  const next = await w.leaderKey();
  assert.ok(next && next !== leader.name, 'a replica took over without waiting for ttl');
});

test('a replica whose postgres stops is started again following the leader', async () => {
  const w = world();
  await w.round(6);
  const replica = w.nodes.find((n) => !n.pg.calls.includes('bootstrap'))!;
  replica.pg.running = false;
  await w.round(3);
  assert.equal(replica.pg.running, true);
  assert.equal(replica.pg.inRecovery, true);
});

test('bootstrap: once it published running, ticks during the rest of the bootstrap publish running too (replicas copy at once)', async () => {
  const w = haWorld({ ttl: TTL, names: ['m1'] });
  const [n] = w.nodes;
  // Hold the bootstrap between publishing 'running' and taking the lock.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const acquire = n!.store.attemptToAcquireLeader.bind(n!.store);
  let held = false;
  n!.store.attemptToAcquireLeader = async () => {
    held = true;
    await gate;
    return acquire();
  };
  await n!.loop.tick(); // starts the bootstrap in the background
  for (let i = 0; i < 50 && !held; i++) await new Promise((r) => setImmediate(r));
  assert.ok(held, 'the bootstrap reached the lock');
  const state = async () => (await n!.store.load()).members.find((m) => m.name === 'm1')?.data.state;
  assert.equal(await state(), 'running', 'published by the bootstrap');
  await n!.loop.tick(); // a tick while the bootstrap still runs
  assert.equal(await state(), 'running', 'not the in-progress label again');
  release();
  await w.round(2);
  assert.equal(await w.leaderKey(), 'm1');
  assert.equal(await state(), 'running');
});

test('SIGTERM during the bootstrap: stop() waits for it, then stops the postgres it started and hands the lock over', async () => {
  const w = haWorld({ ttl: TTL, names: ['m1'] });
  const n = w.nodes[0]!;
  // Hold the bootstrap between initdb (postgres running) and taking the lock.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const acquire = n.store.attemptToAcquireLeader.bind(n.store);
  let held = false;
  n.store.attemptToAcquireLeader = async () => {
    held = true;
    await gate;
    return acquire();
  };
  await n.loop.tick(); // starts the bootstrap in the background
  for (let i = 0; i < 50 && !held; i++) await new Promise((r) => setImmediate(r));
  assert.ok(held, 'the bootstrap reached the lock');
  let stopped = false;
  const stopping = n.loop.stop({ stopPostgres: true }).then(() => (stopped = true));
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  assert.equal(stopped, false, 'stop() waits for the bootstrap');
  assert.equal(n.pg.running, true, 'postgres is not stopped under the bootstrap');
  release();
  await stopping;
  assert.equal(n.pg.running, false, 'the postgres the bootstrap started is stopped');
  const c = await n.store.load();
  assert.equal(c.initialize, '7000', 'the bootstrap finished: initialize holds the system identifier');
  assert.equal(c.leader, null, 'the lock the bootstrap took is handed over, not left to expire');
});

test('SIGTERM during a replica copy: stop() cancels the copy, waits for it to end, then returns', async () => {
  const w = haWorld({ ttl: TTL, names: ['m1', 'm2'] });
  // A copy that runs until it is cancelled, on whichever member does not bootstrap.
  const cancels = new Map<string, () => void>();
  for (const n of w.nodes) {
    n.pg.createReplica = () => new Promise<void>((_, reject) => cancels.set(n.name, () => reject(new CopyCancelledError('cancelled (test)'))));
    n.pg.cancelCopy = () => {
      n.pg.calls.push('cancelCopy');
      cancels.get(n.name)?.();
    };
  }
  await w.round(4);
  const copying = w.nodes.find((n) => cancels.has(n.name));
  assert.ok(copying, 'a member is copying');
  await copying.loop.stop({ stopPostgres: true });
  assert.ok(copying.pg.calls.includes('cancelCopy'), 'the copy was cancelled');
  assert.equal(copying.pg.running, false);
});
