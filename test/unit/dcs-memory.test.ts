/** The in-memory store on a fake clock: the shared DcsStore contract, plus its fault switches. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend, MemoryStore } from '../../src/dcs/memory.js';
import type { DcsStore } from '../../src/dcs/types.js';
import type { Clock } from '../../src/util/clock.js';
import { DcsError } from '../../src/util/errors.js';
import { freshScope, memberData, registerDcsContract, type DcsHarness } from '../helpers/dcs-contract.js';

class FakeClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  wallNow(): Date {
    return new Date(1_750_000_000_000 + this.t);
  }
  async sleep(ms: number): Promise<void> {
    this.t += ms;
  }
}

/** Let queued watch notifications (microtasks) run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

function memoryHarness(): DcsHarness & { clock: FakeClock; backend(scope: string): MemoryBackend } {
  const clock = new FakeClock();
  const backends = new Map<string, MemoryBackend>();
  const backend = (scope: string): MemoryBackend => {
    let b = backends.get(scope);
    if (!b) backends.set(scope, (b = new MemoryBackend(clock)));
    return b;
  };
  return {
    clock,
    backend,
    store: (scope, name, opts) => new MemoryStore(backend(scope), name, opts?.ttl ?? 30),
    now: () => clock.now(),
    advance: async (ms) => {
      clock.t += ms;
      await settle();
    },
    shortTtl: 5,
    defaultTtl: 30,
  };
}

registerDcsContract('memory', memoryHarness);

/** One call of every kind, for the fault tests. */
function everyCall(s: DcsStore): Array<[string, () => Promise<unknown>]> {
  return [
    ['load', () => s.load()],
    ['refreshSession', () => s.refreshSession()],
    ['initialize', () => s.initialize('', true)],
    ['cancelInitialization', () => s.cancelInitialization()],
    ['setConfig', () => s.setConfig({}, null)],
    ['touchMember', () => s.touchMember(memberData())],
    ['attemptToAcquireLeader', () => s.attemptToAcquireLeader()],
    ['updateLeader', () => s.updateLeader({ optime: 1 })],
    ['deleteLeader', () => s.deleteLeader()],
    ['setHistory', () => s.setHistory([])],
    ['setFailover', () => s.setFailover({ member: 'b' }, null)],
    ['deleteFailover', () => s.deleteFailover()],
    ['setSync', () => s.setSync({ leader: 'a', sync_standby: null }, null)],
    ['deleteSync', () => s.deleteSync()],
  ];
}

test('[memory] setAvailable(false): every call rejects with DcsError; the store works again after', async () => {
  const h = memoryHarness();
  const sc = freshScope();
  const a = h.store(sc, 'a');
  assert.equal(await a.attemptToAcquireLeader(), true);
  const validUntil = a.sessionValidUntil();
  h.backend(sc).setAvailable(false);
  for (const [name, call] of everyCall(a)) await assert.rejects(call(), DcsError, name);
  assert.equal(a.sessionValidUntil(), validUntil, 'a failed renewal does not extend the session');
  h.backend(sc).setAvailable(true);
  assert.equal(await a.updateLeader({ optime: 2 }), true);
});

test('[memory] a member cut off alone fails; the others carry on and take over after ttl', async () => {
  const h = memoryHarness();
  const sc = freshScope();
  const a = h.store(sc, 'a', { ttl: 10 }) as MemoryStore;
  const b = h.store(sc, 'b', { ttl: 10 });
  assert.equal(await a.attemptToAcquireLeader(), true);
  a.cutOff = true;
  for (const [name, call] of everyCall(a)) await assert.rejects(call(), DcsError, name);
  assert.equal((await b.load()).leader?.name, 'a');
  await h.advance(10_000);
  assert.equal(await b.attemptToAcquireLeader(), true);
  a.cutOff = false;
  assert.equal(await a.updateLeader({ optime: 1 }), false);
});

test('[memory] session validity is measured from before the renewal, exactly ttl long', async () => {
  const h = memoryHarness();
  const a = h.store(freshScope(), 'a', { ttl: 10 });
  assert.equal(a.sessionValidUntil(), -Infinity, 'no session yet');
  await a.refreshSession();
  assert.equal(a.sessionValidUntil(), h.now() + 10_000);
  await h.advance(9_999);
  await a.refreshSession();
  assert.equal(a.sessionValidUntil(), h.now() + 10_000, 'a renewal in time extends the same session');
  await h.advance(10_000);
  await a.refreshSession();
  assert.equal(a.sessionValidUntil(), h.now() + 10_000, 'an expired session is replaced');
});

test('[memory] keys go with their session; the leader expiry wakes watchers without anyone writing', async () => {
  const h = memoryHarness();
  const sc = freshScope();
  const a = h.store(sc, 'a', { ttl: 10 });
  assert.equal(await a.attemptToAcquireLeader(), true);
  await a.touchMember(memberData());
  await settle();
  let events = 0;
  const unwatch = h.store(sc, 'b').watchLeader(() => events++);
  await h.advance(10_000);
  h.backend(sc).expire();
  await settle();
  assert.equal(events, 1);
  assert.deepEqual(h.backend(sc).nodes(), []);
  unwatch();
});
