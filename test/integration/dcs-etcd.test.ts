/** The etcd v3 store against a real etcd: Patroni's key layout, leases, CAS, watches, bounded calls. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { Etcd3Store } from '../../src/dcs/etcd.js';
import { startEtcd, type EtcdProcess } from '../../src/local/etcd.js';
import { systemClock as clock } from '../../src/util/clock.js';
import { DcsError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';

let etcd: EtcdProcess;
let dir: string;
let raw: Etcd3;
const stores: Etcd3Store[] = [];
let scopeN = 0;

before(async () => {
  dir = mkdtempSync('/tmp/pgwarden-etcd-test-');
  etcd = await startEtcd({ dir });
  raw = new Etcd3({ hosts: etcd.endpoint });
});

after(async () => {
  for (const s of stores) await s.close();
  raw?.close();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function store(name: string, scope: string, ttl = 10, retryTimeout = 2): Etcd3Store {
  const s = new Etcd3Store({ hosts: [`127.0.0.1:${etcd.clientPort}`], namespace: '/service/', scope, name, ttl, retryTimeout, clock, log: silentLogger() });
  stores.push(s);
  return s;
}

function scope(): string {
  return `s${++scopeN}`;
}

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const end = clock.now() + ms;
  while (!(await fn())) {
    if (clock.now() > end) assert.fail(`timed out waiting for ${what}`);
    await clock.sleep(100);
  }
}

test('initialize race: exactly one of two wins; overwrite sets the system id', async () => {
  const sc = scope();
  const [a, b] = [store('a', sc), store('b', sc)];
  const won = await Promise.all([a.initialize('', true), b.initialize('', true)]);
  assert.deepEqual(won.filter(Boolean).length, 1);
  assert.equal(await a.initialize('7001', false), true);
  assert.equal((await b.load()).initialize, '7001');
  assert.equal((await raw.get(`/service/${sc}/initialize`).string()), '7001', "Patroni's key, plain value");
});

test('leader race: one winner; updateLeader only for the holder; deleteLeader only its own', async () => {
  const sc = scope();
  const [a, b] = [store('a', sc), store('b', sc)];
  await Promise.all([a.refreshSession(), b.refreshSession()]);
  const won = await Promise.all([a.attemptToAcquireLeader(), b.attemptToAcquireLeader()]);
  assert.equal(won.filter(Boolean).length, 1);
  const [holder, other] = won[0] ? [a, b] : [b, a];
  assert.equal(await holder.updateLeader({ optime: 42 }), true);
  assert.equal(await other.updateLeader({ optime: 43 }), false);
  assert.equal(await other.deleteLeader(), false);
  const c = await other.load();
  assert.equal(c.leader?.name, won[0] ? 'a' : 'b');
  assert.equal(c.status.optime, 42);
  assert.equal(await raw.get(`/service/${sc}/leader`).string(), c.leader?.name, 'leader value is the plain member name');
  assert.deepEqual(JSON.parse((await raw.get(`/service/${sc}/status`).string())!), { optime: 42 });
  assert.equal(await holder.deleteLeader(), true);
  assert.equal((await other.load()).leader, null);
});

test('the leader key expires when its holder stops renewing for ttl; the watch fires', async () => {
  const sc = scope();
  const a = store('a', sc, 2);
  const b = store('b', sc, 2);
  let events = 0;
  const unwatch = b.watchLeader(() => events++);
  try {
    await a.refreshSession();
    assert.equal(await a.attemptToAcquireLeader(), true);
    await until('the watch to see the acquire', 5000, async () => events >= 1);
    const seen = events;
    assert.ok(a.sessionValidUntil() > clock.now());
    await until('the leader key to expire', 10_000, async () => (await b.load()).leader === null);
    await until('the watch to see the expiry', 5000, async () => events > seen);
  } finally {
    unwatch();
  }
});

test('members are published as Patroni JSON bound to the session', async () => {
  const sc = scope();
  const a = store('pg1', sc);
  const data = { conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'replica', version: '0.1.0', xlog_location: 123, timeline: 1 };
  await a.touchMember(data);
  const c = await a.load();
  assert.deepEqual(c.members.map((m) => m.name), ['pg1']);
  assert.deepEqual(c.members[0]!.data, data);
  const kv = await raw.get(`/service/${sc}/members/pg1`).exec();
  assert.notEqual(kv.kvs[0]?.lease, '0', 'the member key has a lease');
});

test('config, failover and sync are compare-and-set', async () => {
  const sc = scope();
  const a = store('a', sc);
  assert.equal(await a.setConfig({ ttl: 30 }, null), true);
  assert.equal(await a.setConfig({ ttl: 31 }, null), false, 'create-only when version is null');
  const v = (await a.load()).config!.version;
  assert.equal(await a.setConfig({ ttl: 32 }, v), true);
  assert.equal(await a.setConfig({ ttl: 33 }, v), false, 'stale version');
  assert.deepEqual((await a.load()).config!.value, { ttl: 32 });

  assert.equal(await a.setFailover({ leader: 'a', member: 'b' }, null), true);
  const f = (await a.load()).failover!;
  assert.deepEqual([f.leader, f.member], ['a', 'b']);
  assert.equal(await a.setFailover({ member: 'c' }, f.version + 100), false);
  assert.equal(await a.deleteFailover(f.version), true);
  assert.equal((await a.load()).failover, null);

  assert.equal(await a.setSync({ leader: 'a', sync_standby: 'b' }, null), true);
  assert.deepEqual((await a.load()).sync?.sync_standby, ['b']);
  assert.deepEqual(JSON.parse((await raw.get(`/service/${sc}/sync`).string())!), { leader: 'a', sync_standby: 'b' });
});

test('history round-trips; values written the way Patroni writes them parse', async () => {
  const sc = scope();
  const a = store('a', sc);
  await a.setHistory([[1, 50331808, 'no recovery target specified', '2026-01-01T00:00:00+00:00', 'a']]);
  await raw.put(`/service/${sc}/failover`).value('a:b');
  await raw.put(`/service/${sc}/members/legacy`).value('postgres://10.0.0.1:5432/postgres?application_name=http://10.0.0.1:8008/patroni');
  const c = await a.load();
  assert.deepEqual(c.history[0], [1, 50331808, 'no recovery target specified', '2026-01-01T00:00:00+00:00', 'a']);
  assert.deepEqual([c.failover?.leader, c.failover?.member], ['a', 'b']);
  assert.equal(c.members.find((m) => m.name === 'legacy')?.data.api_url, 'http://10.0.0.1:8008/patroni');
});

test('a frozen etcd makes calls fail with DcsError within retry_timeout; they work again after', async () => {
  const sc = scope();
  const a = store('a', sc, 10, 2);
  await a.refreshSession();
  etcd.pause();
  try {
    const t0 = clock.now();
    await assert.rejects(a.load(), DcsError);
    await assert.rejects(a.refreshSession(), DcsError);
    assert.ok(clock.now() - t0 < 2 * 2000 + 1500, 'both calls were bounded by retry_timeout');
  } finally {
    etcd.resume();
  }
  await a.refreshSession();
  assert.equal(await a.attemptToAcquireLeader(), true);
});

test('a restarted etcd is usable at once, and a lost lease is replaced', async () => {
  const sc = scope();
  const a = store('a', sc, 3, 2);
  await a.touchMember({ conn_url: '', api_url: '', state: 'running', role: 'replica', version: '0' });
  await etcd.restart();
  await a.refreshSession();
  await until('the lease to expire', 10_000, async () => (await a.load()).members.length === 0);
  await a.refreshSession();
  await a.touchMember({ conn_url: '', api_url: '', state: 'running', role: 'replica', version: '1' });
  assert.equal((await a.load()).members[0]?.data.version, '1');
});
