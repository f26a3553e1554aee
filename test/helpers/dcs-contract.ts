/**
 * The DcsStore contract (src/dcs/types.ts) as node:test cases, run against every adapter: the in-memory
 * fake on a fake clock (test/unit/dcs-memory.test.ts) and etcd (test/integration/dcs-etcd.test.ts).
 * A case states a property of the contract; the harness only supplies stores and the passing of time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, DcsStore, MemberData } from '../../src/dcs/types.js';

export interface DcsHarness {
  /** A store for member `name` of cluster `scope`; the harness closes it at the end. */
  store(scope: string, name: string, opts?: { ttl?: number }): DcsStore;
  /** Monotonic ms on the clock the stores use. */
  now(): number;
  /** Let `ms` pass on that clock: a fake clock advances, a real one is waited for. */
  advance(ms: number): Promise<void>;
  /** A TTL (s) short enough for expiry cases, long enough for the store to be reliable with it. */
  shortTtl: number;
  /** The TTL (s) of stores created without one. */
  defaultTtl: number;
}

let scopes = 0;

/** A cluster name no other case (or earlier run against the same store) uses. */
export function freshScope(): string {
  return `c${process.pid}-${Date.now().toString(36)}-${++scopes}`;
}

/** Poll `check` (which should read the store) until true; fail after `withinMs` on the harness clock. */
export async function eventually(h: DcsHarness, what: string, withinMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const end = h.now() + withinMs;
  for (;;) {
    if (await check()) return;
    if (h.now() > end) assert.fail(`timed out after ${withinMs} ms waiting for ${what}`);
    await h.advance(100);
  }
}

export function memberData(over: Partial<MemberData> = {}): MemberData {
  return {
    conn_url: 'postgres://127.0.0.1:5432/postgres',
    api_url: 'http://127.0.0.1:8008/patroni',
    state: 'running',
    role: 'replica',
    version: '0.1.0',
    xlog_location: 50331808,
    timeline: 1,
    ...over,
  };
}

function leaderName(c: Cluster): string | null {
  return c.leader?.name ?? null;
}

/** Register the contract cases for one adapter. `harness` is called inside each case (after the file's `before`). */
export function registerDcsContract(adapter: string, harness: () => DcsHarness): void {
  const t = (name: string, fn: (h: DcsHarness) => Promise<void>): void => {
    // A bound, so that a call that hangs fails its case instead of stalling the run.
    test(`[${adapter}] ${name}`, { timeout: 60_000 }, () => fn(harness()));
  };

  t('initialize race: exactly one of two members wins; the value is readable; create=false overwrites', async (h) => {
    const sc = freshScope();
    const [a, b] = [h.store(sc, 'a'), h.store(sc, 'b')];
    assert.equal((await a.load()).initialize, null);
    const won = await Promise.all([a.initialize('', true), b.initialize('', true)]);
    assert.equal(won.filter(Boolean).length, 1, `exactly one winner, got ${JSON.stringify(won)}`);
    assert.equal((await b.load()).initialize, '', 'initializing: empty value');
    assert.equal(await b.initialize('9999', true), false, 'a later create loses too');
    assert.equal(await a.initialize('7311836254519439451', false), true);
    assert.equal((await b.load()).initialize, '7311836254519439451');
    await a.cancelInitialization();
    assert.equal((await b.load()).initialize, null);
    assert.equal(await b.initialize('', true), true, 'after cancel the race is open again');
  });

  t('leader race: exactly one of two acquires, bound to its session', async (h) => {
    const sc = freshScope();
    const [a, b] = [h.store(sc, 'a'), h.store(sc, 'b')];
    await a.refreshSession(); // b acquires without a prior refresh: it must get a session by itself
    const won = await Promise.all([a.attemptToAcquireLeader(), b.attemptToAcquireLeader()]);
    const after = h.now();
    assert.equal(won.filter(Boolean).length, 1, `exactly one winner, got ${JSON.stringify(won)}`);
    const [holder, other, name] = won[0] ? [a, b, 'a'] : [b, a, 'b'];
    const c = await other.load();
    assert.equal(leaderName(c), name);
    assert.ok(c.leader!.version > 0, 'the leader carries its revision');
    assert.ok(c.leader!.session, 'the leader key is bound to a session');
    assert.equal(await other.attemptToAcquireLeader(), false, 'a held lock cannot be taken');
    assert.equal(await holder.attemptToAcquireLeader(), false, 'acquire is create-only, even for the holder');
    const until = holder.sessionValidUntil();
    assert.ok(until > h.now(), 'the session is valid now');
    assert.ok(until <= after + h.defaultTtl * 1000, 'and for no longer than ttl from its last renewal');
  });

  t('updateLeader: true for the holder (with status), false for anyone else', async (h) => {
    const sc = freshScope();
    const [a, b] = [h.store(sc, 'a'), h.store(sc, 'b')];
    assert.equal(await a.updateLeader({ optime: 1 }), false, 'no leader key: nothing to update');
    assert.equal(await a.attemptToAcquireLeader(), true);
    const v1 = (await b.load()).leader!.version;
    assert.equal(await a.updateLeader({ optime: 67108960, slots: { b: 67108960 } }), true);
    assert.equal(await b.updateLeader({ optime: 1 }), false);
    const c = await b.load();
    assert.equal(leaderName(c), 'a');
    assert.equal(c.leader!.version, v1, 'renewing does not rewrite the leader key (watchers are not woken each tick)');
    assert.deepEqual(c.status, { optime: 67108960, slots: { b: 67108960 } });
    assert.equal(await a.updateLeader({}), true, 'a renewal without an optime is still a renewal');
    assert.deepEqual((await b.load()).status, { optime: 67108960, slots: { b: 67108960 } }, 'and leaves status alone');
  });

  t('deleteLeader deletes only our own leader key', async (h) => {
    const sc = freshScope();
    const [a, b] = [h.store(sc, 'a'), h.store(sc, 'b')];
    assert.equal(await a.deleteLeader(), false, 'nothing to delete');
    assert.equal(await a.attemptToAcquireLeader(), true);
    assert.equal(await b.deleteLeader(), false);
    assert.equal(leaderName(await b.load()), 'a');
    assert.equal(await a.deleteLeader(), true);
    assert.equal((await b.load()).leader, null);
    assert.equal(await b.attemptToAcquireLeader(), true, 'a released lock is free at once');
    assert.equal(await a.updateLeader({ optime: 5 }), false, 'the former holder no longer holds it');
  });

  t('a holder that keeps renewing keeps the lock beyond ttl', async (h) => {
    const sc = freshScope();
    const ttl = h.shortTtl;
    const [a, b] = [h.store(sc, 'a', { ttl }), h.store(sc, 'b', { ttl })];
    assert.equal(await a.attemptToAcquireLeader(), true);
    const end = h.now() + ttl * 1000 * 2;
    while (h.now() < end) {
      await h.advance((ttl * 1000) / 4);
      assert.equal(await a.updateLeader({ optime: 100 }), true);
    }
    assert.equal(leaderName(await b.load()), 'a');
  });

  t('the leader key disappears when its holder stops renewing for ttl', async (h) => {
    const sc = freshScope();
    const ttl = h.shortTtl;
    const [a, b] = [h.store(sc, 'a', { ttl }), h.store(sc, 'b', { ttl })];
    assert.equal(await a.attemptToAcquireLeader(), true);
    const validUntil = a.sessionValidUntil();
    await eventually(h, 'the leader key to expire', ttl * 1000 + 5000, async () => (await b.load()).leader === null);
    assert.ok(h.now() >= validUntil, 'the key outlived the validity the holder was promised');
    assert.equal(await b.attemptToAcquireLeader(), true, 'the expired lock is free');
    assert.equal(await a.updateLeader({ optime: 1 }), false, 'the former holder learns it lost the lock');
    assert.equal(leaderName(await a.load()), 'b');
  });

  t('members/<name> holds the Patroni JSON, visible in load(), and goes with the session', async (h) => {
    const sc = freshScope();
    const ttl = h.shortTtl;
    const [a, b] = [h.store(sc, 'pg1', { ttl }), h.store(sc, 'pg2', { ttl })];
    const data = memberData({ tags: { nofailover: true }, role: 'master' });
    assert.equal(await a.touchMember(data), true);
    assert.equal(await b.touchMember(memberData({ conn_url: 'postgres://127.0.0.2:5432/postgres' })), true);
    let c = await b.load();
    assert.deepEqual(c.members.map((m) => m.name), ['pg1', 'pg2']);
    assert.deepEqual(c.members[0]!.data, data);
    assert.ok(c.members[0]!.version > 0);
    assert.equal(await a.touchMember({ ...data, state: 'stopping' }), true);
    assert.equal((await b.load()).members[0]!.data.state, 'stopping', 'a changed member is rewritten');
    // pg2 keeps its session, pg1 does not: only pg1 disappears.
    await eventually(h, 'the silent member to expire', ttl * 1000 + 5000, async () => {
      await b.refreshSession();
      c = await b.load();
      return c.members.length === 1;
    });
    assert.deepEqual(c.members.map((m) => m.name), ['pg2']);
    await a.refreshSession();
    assert.equal(await a.touchMember(data), true, 'the same data is published again on a new session');
    assert.deepEqual((await b.load()).members.map((m) => m.name), ['pg1', 'pg2']);
  });

  t('config is compare-and-set on its version', async (h) => {
    const sc = freshScope();
    const [a, b] = [h.store(sc, 'a'), h.store(sc, 'b')];
    assert.equal(await a.setConfig({ ttl: 30, loop_wait: 10 }, null), true);
    assert.equal(await b.setConfig({ ttl: 31 }, null), false, 'version null: create only');
    const v = (await b.load()).config!.version;
    const both = await Promise.all([a.setConfig({ ttl: 32 }, v), b.setConfig({ ttl: 33 }, v)]);
    assert.equal(both.filter(Boolean).length, 1, 'two writers on one version: one wins');
    const c = await a.load();
    assert.deepEqual(c.config!.value, { ttl: both[0] ? 32 : 33 });
    assert.ok(c.config!.version > v);
    assert.equal(await a.setConfig({ ttl: 34 }, v), false, 'stale version');
    assert.equal(await a.setConfig({ ttl: 35 }, c.config!.version), true);
  });

  t('failover is compare-and-set; delete honours the version', async (h) => {
    const sc = freshScope();
    const a = h.store(sc, 'a');
    assert.equal((await a.load()).failover, null);
    assert.equal(await a.setFailover({ leader: 'a', member: 'b', scheduled_at: '2030-01-01T00:00:00+00:00' }, null), true);
    assert.equal(await a.setFailover({ member: 'c' }, null), false, 'version null: create only');
    const f = (await a.load()).failover!;
    assert.deepEqual({ ...f, version: 0 }, { leader: 'a', member: 'b', scheduled_at: '2030-01-01T00:00:00+00:00', version: 0 });
    assert.equal(await a.setFailover({ member: 'c' }, f.version + 1000), false, 'stale version');
    assert.equal(await a.deleteFailover(f.version + 1000), false, 'delete with a stale version');
    assert.equal(await a.setFailover({ member: 'c' }, f.version), true);
    const g = (await a.load()).failover!;
    assert.deepEqual([g.leader, g.member], [undefined, 'c']);
    assert.equal(await a.deleteFailover(g.version), true);
    assert.equal((await a.load()).failover, null);
    assert.equal(await a.setFailover({ leader: 'a' }, null), true);
    assert.equal(await a.deleteFailover(), true, 'delete without a version');
    assert.equal((await a.load()).failover, null);
  });

  t('sync is compare-and-set; sync_standby reads as a list', async (h) => {
    const sc = freshScope();
    const a = h.store(sc, 'a');
    assert.equal((await a.load()).sync, null);
    assert.equal(await a.setSync({ leader: 'a', sync_standby: 'b,c' }, null), true);
    assert.equal(await a.setSync({ leader: 'a', sync_standby: 'd' }, null), false, 'version null: create only');
    const s = (await a.load()).sync!;
    assert.deepEqual([s.leader, s.sync_standby], ['a', ['b', 'c']]);
    assert.equal(await a.setSync({ leader: 'a', sync_standby: null }, s.version + 1000), false, 'stale version');
    assert.equal(await a.setSync({ leader: 'a', sync_standby: null }, s.version), true);
    assert.deepEqual((await a.load()).sync?.sync_standby, []);
    assert.equal(await a.deleteSync(), true);
    assert.equal((await a.load()).sync, null);
  });

  t('history and status round-trip', async (h) => {
    const sc = freshScope();
    const a = h.store(sc, 'a');
    assert.deepEqual((await a.load()).history, []);
    assert.deepEqual((await a.load()).status, {});
    const history = [
      [1, 50331808, 'no recovery target specified', '2026-01-01T00:00:00.000000+00:00', 'a'],
      [2, 83886240, 'no recovery target specified', '2026-01-02T00:00:00.000000+00:00', 'b'],
    ] as const;
    assert.equal(await a.setHistory(history), true);
    assert.deepEqual((await a.load()).history, history);
    assert.equal(await a.attemptToAcquireLeader(), true);
    assert.equal(await a.updateLeader({ optime: 83886500 }), true);
    assert.deepEqual((await a.load()).status, { optime: 83886500 });
    assert.equal(await a.updateLeader({ optime: 83886600, slots: { logical1: 83886000 } }), true);
    assert.deepEqual((await a.load()).status, { optime: 83886600, slots: { logical1: 83886000 } });
  });

  t('watchLeader fires on acquire, delete and lease expiry; unsubscribing stops it', async (h) => {
    const sc = freshScope();
    const ttl = h.shortTtl;
    const [a, b] = [h.store(sc, 'a', { ttl }), h.store(sc, 'b', { ttl })];
    let events = 0;
    const unwatch = b.watchLeader(() => events++);
    let stopped = false;
    let afterStop = 0;
    const unwatch2 = b.watchLeader(() => stopped && afterStop++);
    try {
      const fired = async (what: string, from: number): Promise<void> =>
        eventually(h, `a watch event on ${what}`, 5000, () => events > from);

      let seen = events;
      assert.equal(await a.attemptToAcquireLeader(), true);
      await fired('acquire', seen);

      seen = events;
      assert.equal(await a.deleteLeader(), true);
      await fired('delete', seen);

      assert.equal(await a.attemptToAcquireLeader(), true);
      await eventually(h, 'the watch to see the new key', 5000, async () => events > seen && leaderName(await b.load()) === 'a');
      seen = events;
      await eventually(h, 'the leader key to expire', ttl * 1000 + 5000, async () => (await b.load()).leader === null);
      await fired('expiry', seen);

      unwatch2();
      stopped = true;
      seen = events;
      assert.equal(await b.attemptToAcquireLeader(), true);
      await fired('acquire after unwatching another subscription', seen);
      assert.equal(afterStop, 0, 'an unsubscribed callback is not called');
    } finally {
      unwatch();
      unwatch2();
    }
  });

  t('a TTL change takes effect with a new session, and the holder keeps the lock', async (h) => {
    const sc = freshScope();
    const [a, b] = [h.store(sc, 'a', { ttl: h.shortTtl }), h.store(sc, 'b', { ttl: h.shortTtl })];
    assert.equal(await a.attemptToAcquireLeader(), true);
    const oldSession = (await b.load()).leader!.session;
    const newTtl = h.shortTtl + 2;
    a.setTimeouts({ ttl: newTtl, retryTimeout: 3 });
    await a.refreshSession();
    assert.ok(a.sessionValidUntil() <= h.now() + h.shortTtl * 1000, 'until the key moves, the old session bounds the lock');
    const sentAt = h.now();
    assert.equal(await a.updateLeader({ optime: 7 }), true);
    const c = await b.load();
    assert.equal(leaderName(c), 'a');
    assert.notEqual(c.leader!.session, oldSession, 'the leader key moved to the new session');
    const until = a.sessionValidUntil();
    assert.ok(until > sentAt + h.shortTtl * 1000 && until <= h.now() + newTtl * 1000, 'validity follows the new ttl');
    // Past the old TTL the lock is still there: it lives on the new session now.
    await h.advance(h.shortTtl * 1000 + 500);
    assert.equal(await a.updateLeader({ optime: 8 }), true);
    assert.equal(leaderName(await b.load()), 'a');
  });
}
