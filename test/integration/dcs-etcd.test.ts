/**
 * The etcd v3 store against a real etcd: the shared DcsStore contract, then what only a real server
 * shows — Patroni's exact key layout and values, values written by Patroni, and calls that stay bounded
 * while etcd is frozen (SIGSTOP) or stopped and work again when it is back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { Etcd3Store } from '../../src/dcs/etcd.js';
import type { DcsStore } from '../../src/dcs/types.js';
import { startEtcd, type EtcdProcess } from '../../src/local/etcd.js';
import { systemClock as clock } from '../../src/util/clock.js';
import { DcsError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { freshScope, memberData, registerDcsContract, type DcsHarness } from '../helpers/dcs-contract.js';

let etcd: EtcdProcess | undefined;
let dir: string | undefined;
let raw: Etcd3 | undefined;
const stores: Etcd3Store[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgwarden-dcs-etcd-'));
  etcd = await startEtcd({ dir });
  raw = new Etcd3({ hosts: etcd.endpoint });
});

after(async () => {
  try {
    etcd?.resume();
    await Promise.all(stores.map((s) => s.close()));
    raw?.close();
  } finally {
    await etcd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

function newStore(scope: string, name: string, o: { ttl?: number; retryTimeout?: number; namespace?: string } = {}): Etcd3Store {
  const s = new Etcd3Store({
    hosts: [`127.0.0.1:${etcd!.clientPort}`],
    namespace: o.namespace ?? '/service/',
    scope,
    name,
    ttl: o.ttl ?? 10,
    retryTimeout: o.retryTimeout ?? 3,
    clock,
    log: silentLogger(),
  });
  stores.push(s);
  return s;
}

const harness = (): DcsHarness => ({
  store: (scope, name, opts) => newStore(scope, name, { ttl: opts?.ttl }),
  now: () => clock.now(),
  advance: (ms) => clock.sleep(ms),
  shortTtl: 2,
  defaultTtl: 10,
});

registerDcsContract('etcd', harness);

/** Every key under `/service/<scope>/`, as etcd holds it. */
async function rawKeys(scope: string): Promise<Record<string, { value: string; lease: string }>> {
  const res = await raw!.getAll().prefix(`/service/${scope}/`).exec();
  return Object.fromEntries(res.kvs.map((kv) => [kv.key.toString(), { value: kv.value.toString(), lease: String(kv.lease) }]));
}

test('[etcd] the key layout and the values are exactly Patroni\'s', { timeout: 60_000 }, async () => {
  const sc = freshScope();
  const a = newStore(sc, 'pg1', { ttl: 10 });
  const member = memberData({ role: 'master', tags: { nofailover: false } });
  const ts = '2026-01-01T10:00:00.123456+00:00';
  assert.equal(await a.initialize('', true), true);
  assert.equal(await a.initialize('7311836254519439451', false), true);
  assert.equal(await a.setConfig({ ttl: 30, loop_wait: 10, postgresql: { use_pg_rewind: true } }, null), true);
  assert.equal(await a.touchMember(member), true);
  assert.equal(await a.attemptToAcquireLeader(), true);
  assert.equal(await a.updateLeader({ optime: 67108960, slots: { logical1: 67108000 } }), true);
  assert.equal(await a.setFailover({ leader: 'pg1', member: 'pg2', scheduled_at: '2030-01-01T12:00:00+00:00' }, null), true);
  assert.equal(await a.setSync({ leader: 'pg1', sync_standby: 'pg2,pg3' }, null), true);
  assert.equal(await a.setHistory([[1, 50331808, 'no recovery target specified', ts, 'pg1']]), true);

  const kv = await rawKeys(sc);
  const p = `/service/${sc}/`;
  assert.deepEqual(Object.keys(kv).sort(), ['config', 'failover', 'history', 'initialize', 'leader', 'members/pg1', 'status', 'sync'].map((k) => p + k));
  assert.equal(kv[`${p}leader`]!.value, 'pg1', 'leader: the plain member name');
  assert.equal(kv[`${p}initialize`]!.value, '7311836254519439451', 'initialize: the plain system identifier');
  assert.equal(kv[`${p}config`]!.value, '{"ttl":30,"loop_wait":10,"postgresql":{"use_pg_rewind":true}}');
  assert.equal(kv[`${p}members/pg1`]!.value, JSON.stringify(member), 'members: compact JSON, as json.dumps(separators=(",", ":"))');
  assert.equal(kv[`${p}status`]!.value, '{"optime":67108960,"slots":{"logical1":67108000}}');
  assert.equal(kv[`${p}failover`]!.value, '{"leader":"pg1","member":"pg2","scheduled_at":"2030-01-01T12:00:00+00:00"}');
  assert.equal(kv[`${p}sync`]!.value, '{"leader":"pg1","sync_standby":"pg2,pg3"}');
  assert.equal(kv[`${p}history`]!.value, `[[1,50331808,"no recovery target specified","${ts}","pg1"]]`);

  // leader and member live on one lease of `ttl` seconds; nothing else is bound to a lease.
  const lease = kv[`${p}leader`]!.lease;
  assert.notEqual(lease, '0');
  assert.equal(kv[`${p}members/pg1`]!.lease, lease);
  for (const k of ['config', 'failover', 'history', 'initialize', 'status', 'sync']) assert.equal(kv[p + k]!.lease, '0', `${k} has no lease`);
  const ttl = await raw!.leaseClient.leaseTimeToLive({ ID: lease, keys: false });
  assert.equal(Number(ttl.grantedTTL), 10);
  assert.equal((await a.load()).leader?.session, lease);

  // Patroni joins '', namespace and scope and squeezes the slashes: these namespaces are all /service/.
  for (const ns of ['service', '/service', 'service/', '//service//']) {
    const c = await newStore(sc, 'x', { namespace: ns }).load();
    assert.equal(c.leader?.name, 'pg1', `namespace ${JSON.stringify(ns)}`);
  }
});

test('[etcd] values written by Patroni load into the right snapshot', { timeout: 60_000 }, async () => {
  const sc = freshScope();
  const p = `/service/${sc}/`;
  const { ID: lease } = await raw!.leaseClient.leaseGrant({ TTL: 30, ID: 0 });
  const put = (k: string, v: string, withLease = false): Promise<unknown> =>
    raw!.kv.put({ key: Buffer.from(p + k), value: Buffer.from(v), ...(withLease ? { lease } : {}) });
  await put('initialize', '7311836254519439451');
  await put('config', '{"ttl":30,"loop_wait":10,"retry_timeout":10,"maximum_lag_on_failover":1048576,"postgresql":{"use_pg_rewind":true,"parameters":{"max_connections":100}}}');
  await put('leader', 'pg1', true);
  await put('members/pg1', '{"conn_url":"postgres://10.0.0.1:5432/postgres","api_url":"http://10.0.0.1:8008/patroni","state":"running","role":"master","version":"3.0.2","xlog_location":67108960,"timeline":2}', true);
  await put('members/pg2', '{"conn_url":"postgres://10.0.0.2:5432/postgres","api_url":"http://10.0.0.2:8008/patroni","state":"running","role":"replica","version":"3.0.2","xlog_location":67108000,"replication_state":"streaming","timeline":2,"tags":{"nofailover":true}}');
  await put('members/governor', 'postgres://replicator:secret@10.0.0.3:5432/postgres?application_name=http://10.0.0.3:8008/patroni');
  await put('members/broken', '{"conn_url":');
  await put('members/pg9/unrelated', '{}');
  await put('failover', '{"leader":"pg1","member":"pg2","scheduled_at":"2030-01-01T12:00:00+00:00"}');
  await put('sync', '{"leader":"pg1","sync_standby":"pg2"}');
  await put('history', '[[1,50331808,"no recovery target specified","2026-01-01T10:00:00.123456+00:00","pg1"]]');
  await put('status', '{"optime":67108960,"slots":{"logical1":67108000}}');
  await put('optime/leader', '1');
  await put('failsafe', '{"pg1":"http://10.0.0.1:8008/patroni"}');

  const c = await newStore(sc, 'pg2').load();
  assert.equal(c.initialize, '7311836254519439451');
  assert.equal(c.config?.value.maximum_lag_on_failover, 1048576);
  assert.equal(c.leader?.name, 'pg1');
  assert.equal(c.leader?.session, String(lease));
  assert.deepEqual(c.members.map((m) => m.name), ['broken', 'governor', 'pg1', 'pg2']);
  const [broken, governor, pg1, pg2] = c.members;
  assert.equal(pg1!.data.role, 'master');
  assert.equal(pg1!.data.xlog_location, 67108960);
  assert.deepEqual(pg2!.data.tags, { nofailover: true });
  assert.equal(pg2!.data.replication_state, 'streaming', 'fields we do not know are kept');
  assert.equal(governor!.data.conn_url, 'postgres://replicator:secret@10.0.0.3:5432/postgres');
  assert.equal(governor!.data.api_url, 'http://10.0.0.3:8008/patroni');
  assert.equal(broken!.data.state, '', 'an unparseable member is an empty member, not an error');
  assert.deepEqual({ ...c.failover }, { leader: 'pg1', member: 'pg2', scheduled_at: '2030-01-01T12:00:00+00:00', version: c.failover!.version });
  assert.deepEqual(c.sync?.sync_standby, ['pg2']);
  assert.deepEqual(c.history, [[1, 50331808, 'no recovery target specified', '2026-01-01T10:00:00.123456+00:00', 'pg1']]);
  assert.deepEqual(c.status, { optime: 67108960, slots: { logical1: 67108000 } }, 'status wins over the legacy optime key');

  // Older and damaged forms.
  const sc2 = freshScope();
  const q = `/service/${sc2}/`;
  await raw!.put(`${q}failover`).value('pg1:pg2');
  await raw!.put(`${q}optime/leader`).value('50331808');
  await raw!.put(`${q}config`).value('{not json');
  await raw!.put(`${q}sync`).value('[]');
  await raw!.put(`${q}history`).value('garbage');
  const d = await newStore(sc2, 'pg2').load();
  assert.deepEqual([d.failover?.leader, d.failover?.member], ['pg1', 'pg2'], 'the old leader:member failover form');
  assert.deepEqual(d.status, { optime: 50331808 }, 'the legacy optime/leader key');
  assert.deepEqual(d.config?.value, {}, 'a broken config reads as empty');
  assert.deepEqual(d.sync?.sync_standby, []);
  assert.deepEqual(d.history, []);
});

test('[etcd] the lease is renewed only by our calls, never in the background', { timeout: 60_000 }, async () => {
  const sc = freshScope();
  const a = newStore(sc, 'a', { ttl: 10 });
  assert.equal(await a.attemptToAcquireLeader(), true);
  const lease = (await a.load()).leader!.session!;
  const left = async (): Promise<number> => Number((await raw!.leaseClient.leaseTimeToLive({ ID: lease, keys: false })).TTL);
  await clock.sleep(2500);
  assert.ok((await left()) <= 8, 'without a refresh the lease runs down');
  await a.refreshSession();
  assert.ok((await left()) >= 9, 'a refresh restores it');
});

test('[etcd] an unchanged member is not rewritten, but a member key that vanished is published again', { timeout: 60_000 }, async () => {
  const sc = freshScope();
  const a = newStore(sc, 'pg1');
  const data = memberData();
  await a.touchMember(data);
  const v1 = (await a.load()).members[0]!.version;
  await a.touchMember(data);
  assert.equal((await a.load()).members[0]!.version, v1, 'same data, same lease: no new revision');
  await raw!.delete().key(`/service/${sc}/members/pg1`).exec();
  assert.deepEqual((await a.load()).members, []);
  await a.touchMember(data);
  assert.deepEqual((await a.load()).members.map((m) => m.data), [data]);
});

/** One call of each kind that cannot upset the later checks if etcd applies it late (after a freeze). */
function boundedCalls(holder: DcsStore, other: DcsStore, n: number): Array<[string, () => Promise<unknown>]> {
  return [
    ['load', () => other.load()],
    ['refreshSession', () => holder.refreshSession()],
    ['updateLeader', () => holder.updateLeader({ optime: 1000 + n })],
    ['attemptToAcquireLeader', () => other.attemptToAcquireLeader()],
    ['touchMember', () => holder.touchMember(memberData({ xlog_location: 1000 + n }))],
    ['initialize', () => other.initialize('', true)],
    ['cancelInitialization', () => other.cancelInitialization()],
    ['setConfig', () => other.setConfig({ n }, 1)],
    ['setHistory', () => other.setHistory([])],
    ['setFailover', () => other.setFailover({ member: 'b' }, 1)],
    ['deleteFailover', () => other.deleteFailover()],
    ['setSync', () => other.setSync({ leader: 'a', sync_standby: null }, 1)],
    ['deleteSync', () => other.deleteSync()],
  ];
}

/** Run every call at once; each must reject with DcsError within retry_timeout + margin of its own start. */
async function assertAllBounded(calls: Array<[string, () => Promise<unknown>]>, boundMs: number): Promise<void> {
  const results = await Promise.all(
    calls.map(async ([name, call]) => {
      const t0 = clock.now();
      const outcome = await call().then(
        () => 'resolved',
        (e: unknown) => e,
      );
      return { name, outcome, ms: clock.now() - t0 };
    }),
  );
  for (const r of results) {
    assert.ok(r.outcome instanceof DcsError, `${r.name}: expected a DcsError, got ${String(r.outcome)}`);
    assert.ok(r.ms <= boundMs, `${r.name} took ${Math.round(r.ms)} ms, more than ${boundMs} ms`);
  }
}

const RETRY_TIMEOUT = 1.5;
const MARGIN_MS = 1500;

test('[etcd] while etcd is frozen every call fails with DcsError within retry_timeout; after it thaws calls work', { timeout: 60_000 }, async () => {
  const sc = freshScope();
  const [a, b] = [newStore(sc, 'a', { ttl: 10, retryTimeout: RETRY_TIMEOUT }), newStore(sc, 'b', { ttl: 10, retryTimeout: RETRY_TIMEOUT })];
  assert.equal(await a.attemptToAcquireLeader(), true);
  let events = 0;
  const unwatch = b.watchLeader(() => events++);
  await b.load();
  const validUntil = a.sessionValidUntil();
  etcd!.pause();
  try {
    await assertAllBounded(boundedCalls(a, b, 1), RETRY_TIMEOUT * 1000 + MARGIN_MS);
    await assertAllBounded(boundedCalls(a, b, 2), RETRY_TIMEOUT * 1000 + MARGIN_MS);
    assert.equal(a.sessionValidUntil(), validUntil, 'failed renewals do not extend the session');
  } finally {
    etcd!.resume();
  }
  const t0 = clock.now();
  assert.equal(await a.updateLeader({ optime: 5000 }), true, 'the holder renews at once after the thaw');
  assert.ok(clock.now() - t0 <= RETRY_TIMEOUT * 1000 + MARGIN_MS);
  assert.ok(a.sessionValidUntil() > validUntil);
  assert.equal((await b.load()).leader?.name, 'a');
  const seen = events;
  assert.equal(await a.deleteLeader(), true);
  await until('the watch to see the delete after the thaw', 5000, async () => events > seen);
  unwatch();
});

test('[etcd] while etcd is stopped every call fails with DcsError within retry_timeout; after a restart calls work', { timeout: 60_000 }, async () => {
  const sc = freshScope();
  const [a, b] = [newStore(sc, 'a', { ttl: 20, retryTimeout: RETRY_TIMEOUT }), newStore(sc, 'b', { ttl: 20, retryTimeout: RETRY_TIMEOUT })];
  assert.equal(await a.attemptToAcquireLeader(), true);
  let events = 0;
  const unwatch = b.watchLeader(() => events++);
  await b.load();
  await etcd!.stop();
  try {
    // Several rounds, so that any reconnect backoff in the client has time to grow.
    for (let n = 1; n <= 3; n++) await assertAllBounded(boundedCalls(a, b, n), RETRY_TIMEOUT * 1000 + MARGIN_MS);
  } finally {
    await etcd!.restart();
  }
  const t0 = clock.now();
  assert.equal((await b.load()).leader?.name, 'a', 'the first call after the restart succeeds; the data survived');
  assert.ok(clock.now() - t0 <= RETRY_TIMEOUT * 1000 + MARGIN_MS);
  assert.equal(await a.updateLeader({ optime: 6000 }), true, 'the lease survived the restart too');
  const seen = events;
  assert.equal(await a.deleteLeader(), true);
  await until('the watch to see the delete after the restart', 10_000, async () => events > seen);
  assert.equal(await b.attemptToAcquireLeader(), true);
  unwatch();
});

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = clock.now() + ms;
  while (!(await check())) {
    if (clock.now() > end) assert.fail(`timed out waiting for ${what}`);
    await clock.sleep(100);
  }
}
