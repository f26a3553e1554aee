/**
 * The Kubernetes store (src/dcs/kubernetes.ts) against the local API server over https with a bearer
 * token, through a kubeconfig as a member outside a pod uses it: Patroni's object names and annotation
 * encoding, CAS by resourceVersion (a write the store has not seen makes its renewal fail), lock expiry
 * judged on the reader's clock, the leader watch, pod status + role label (the leader label only on the
 * lock holder, taken off a former leader's pod), and Endpoints mode (subsets follow the lock holder, the
 * headless -config Service).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../src/kube/client.js';
import { KubernetesStore, kubernetesSettings } from '../../src/dcs/kubernetes.js';
import { startKubeApiServer, type KubeApiServer } from '../../src/kube/apiserver/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/log.js';
import type { MemberData } from '../../src/dcs/types.js';

let srv: KubeApiServer;
let dir: string;
let client: KubeClient;
const stores: KubernetesStore[] = [];
let scopes = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgwarden-kstore-'));
  srv = await startKubeApiServer({ kubeconfigPath: join(dir, 'kubeconfig'), context: 'kstore' });
  client = await KubeClient.connect({ kubeconfig: join(dir, 'kubeconfig'), context: 'kstore' });
});

after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await srv?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function api(path: string, method = 'GET', body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${srv.url}${path}`, { method, ca: srv.caPem, headers: { authorization: `Bearer ${srv.token}`, 'content-type': contentType } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const NS = '/api/v1/namespaces/default';

async function pod(scope: string, name: string, ip = '127.0.0.1', labels: Record<string, string> = {}): Promise<void> {
  const r = await api(`${NS}/pods`, 'POST', {
    metadata: { name, labels: { application: 'pgwarden', 'cluster-name': scope, ...labels } },
    spec: { hostname: name, containers: [{ name: 'postgres', image: 'pgwarden' }] },
    status: { phase: 'Running', podIP: ip },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

function store(scope: string, name: string, o: { ttl?: number; endpoints?: boolean } = {}): KubernetesStore {
  const settings = kubernetesSettings({ labels: { application: 'pgwarden' }, use_endpoints: o.endpoints ?? false, ports: [{ name: 'postgresql', port: 5433 }] });
  const s = new KubernetesStore({ client, settings, scope, name, ttl: o.ttl ?? 30, retryTimeout: 5, clock: systemClock, log: silentLogger() });
  stores.push(s);
  return s;
}

function scope(): string {
  return `k${process.pid}-${++scopes}`;
}

const data = (over: Partial<MemberData> = {}): MemberData => ({
  conn_url: 'postgres://127.0.0.1:5433/postgres',
  api_url: 'http://127.0.0.1:8008/patroni',
  state: 'running',
  role: 'replica',
  version: '0.1.0',
  ...over,
});

async function until(what: string, ms: number, fn: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Kubernetes store, ConfigMap mode', () => {
  test('initialize race: exactly one wins; create=false overwrites; cancel reopens the race', async () => {
    const sc = scope();
    const [a, b] = [store(sc, 'a'), store(sc, 'b')];
    assert.equal((await a.load()).initialize, null);
    await b.load();
    const won = await Promise.all([a.initialize('', true), b.initialize('', true)]);
    assert.equal(won.filter(Boolean).length, 1, JSON.stringify(won));
    await until('b sees the initialize annotation', 5000, async () => (await b.load()).initialize === '');
    assert.equal(await b.initialize('1', true), false);
    assert.equal(await a.initialize('7311836254519439451', false), true);
    const cm = await api(`${NS}/configmaps/${sc}-config`);
    assert.equal(cm.body.metadata.annotations.initialize, '7311836254519439451');
    assert.deepEqual(cm.body.metadata.labels, { application: 'pgwarden', 'cluster-name': sc });
    await until('b reads the sysid', 5000, async () => (await b.load()).initialize === '7311836254519439451');
    await a.cancelInitialization();
    await until('b sees the cancel', 5000, async () => (await b.load()).initialize === null);
    assert.equal(await b.initialize('', true), true);
  });

  test('leader race: one winner with Patroni annotations; a renewal by a store that missed a write gets 409 and loses', async () => {
    const sc = scope();
    const [a, b] = [store(sc, 'a'), store(sc, 'b')];
    await Promise.all([a.load(), b.load()]);
    const won = await Promise.all([a.attemptToAcquireLeader(), b.attemptToAcquireLeader()]);
    assert.equal(won.filter(Boolean).length, 1);
    const [holder, other, name] = won[0] ? [a, b, 'a'] : [b, a, 'b'];
    const obj = (await api(`${NS}/configmaps/${sc}-leader`)).body;
    const ann = obj.metadata.annotations;
    assert.equal(ann.leader, name);
    assert.equal(ann.ttl, '30');
    assert.equal(ann.transitions, '0');
    assert.match(ann.acquireTime, /^\d{4}-\d\d-\d\dT/);
    assert.equal(ann.renewTime, ann.acquireTime);
    await until('the other sees the leader', 5000, async () => (await other.load()).leader?.name === name);
    assert.equal(await other.attemptToAcquireLeader(), false, 'a held lock cannot be taken');
    assert.equal(await holder.updateLeader({ optime: 67108960, slots: { c: 67108960 } }), true);
    const after = (await api(`${NS}/configmaps/${sc}-leader`)).body.metadata.annotations;
    assert.equal(after.optime, '67108960');
    assert.equal(after.slots, '{"c":67108960}');
    assert.equal(after.acquireTime, ann.acquireTime, 'a renewal keeps acquireTime');
    await until('status visible', 5000, async () => (await other.load()).status.optime === 67108960);
    assert.deepEqual((await other.load()).status, { optime: 67108960, slots: { c: 67108960 } });

    // A write the holder has not seen (its watch held back): its renewal carries a stale resourceVersion.
    srv.faults.holdWatchEvents();
    const cur = (await api(`${NS}/configmaps/${sc}-leader`)).body;
    const stolen = await api(`${NS}/configmaps/${sc}-leader`, 'PATCH', { metadata: { resourceVersion: cur.metadata.resourceVersion, annotations: { leader: 'thief' } } }, 'application/merge-patch+json');
    assert.equal(stolen.status, 200);
    assert.equal(await holder.updateLeader({ optime: 67109000 }), false, 'the stale renewal is refused and the holder learns it lost');
    assert.equal((await api(`${NS}/configmaps/${sc}-leader`)).body.metadata.annotations.leader, 'thief', 'nothing was overwritten');
    srv.faults.releaseWatchEvents();
  });

  test('expiry is judged on the reader’s clock: unchanged for ttl → free; transitions counts owners', async () => {
    const sc = scope();
    const ttl = 2;
    const [a, b] = [store(sc, 'a', { ttl }), store(sc, 'b', { ttl })];
    await a.load();
    assert.equal(await a.attemptToAcquireLeader(), true);
    let woke = 0;
    b.watchLeader(() => woke++);
    await until('b sees a', 5000, async () => (await b.load()).leader?.name === 'a');
    const seenAt = Date.now();
    // a renews for a while: b keeps seeing it past ttl
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(await a.updateLeader({ optime: 100 + i }), true);
    }
    assert.ok(Date.now() - seenAt > ttl * 1000);
    assert.equal((await b.load()).leader?.name, 'a', 'a holder that renews keeps the lock');
    const stoppedAt = Date.now();
    const wokeBefore = woke;
    await until('b sees the lock expire', ttl * 1000 + 5000, async () => (await b.load()).leader === null);
    assert.ok(Date.now() - stoppedAt >= ttl * 1000 - 800, 'not before ttl after the last change b saw');
    await until('the expiry wakes b', 2000, () => woke > wokeBefore);
    assert.equal(await b.attemptToAcquireLeader(), true);
    assert.equal((await api(`${NS}/configmaps/${sc}-leader`)).body.metadata.annotations.transitions, '1');
    assert.equal(await a.updateLeader({ optime: 200 }), false, 'the former holder learns it lost');
  });

  test('members: pod status annotation and role label; the leader label only with the lock, taken off a former leader', async () => {
    const sc = scope();
    await pod(sc, `${sc}-0`);
    await pod(sc, `${sc}-1`, '127.0.0.1', { role: 'primary' }); // a dead former leader kept its label
    const [a] = [store(sc, `${sc}-0`)];
    await a.load();
    assert.equal(await a.touchMember(data({ role: 'master' })), true);
    let p = (await api(`${NS}/pods/${sc}-0`)).body;
    assert.equal(p.metadata.labels.role, undefined, 'a master without the lock gets no leader label');
    assert.deepEqual(JSON.parse(p.metadata.annotations.status), data({ role: 'master' }));
    assert.equal(await a.attemptToAcquireLeader(), true);
    assert.equal((await api(`${NS}/pods/${sc}-1`)).body.metadata.labels.role, undefined, 'the former leader pod lost its label');
    assert.equal(await a.touchMember(data({ role: 'master' })), true);
    p = (await api(`${NS}/pods/${sc}-0`)).body;
    assert.equal(p.metadata.labels.role, 'primary');
    assert.equal(p.metadata.labels['cluster-name'], sc, 'other labels stay');
    await until('the member is in load()', 5000, async () => (await a.load()).members.some((m) => m.name === `${sc}-0` && m.data.role === 'master'));
    assert.equal(await a.deleteLeader(), true);
    assert.equal(await a.touchMember(data({ role: 'master', state: 'stopping' })), true);
    assert.equal((await api(`${NS}/pods/${sc}-0`)).body.metadata.labels.role, undefined, 'no label once the lock is gone');
    assert.equal(await a.touchMember(data()), true);
    assert.equal((await api(`${NS}/pods/${sc}-0`)).body.metadata.labels.role, 'replica');
    const ghost = store(sc, `${sc}-nopod`);
    assert.equal(await ghost.touchMember(data()), false, 'no pod: the member cannot publish');
  });

  test('config, failover and sync are compare-and-set on resourceVersion; history round-trips', async () => {
    const sc = scope();
    const a = store(sc, 'a');
    await a.load();
    assert.equal(await a.setConfig({ ttl: 30 }, null), true);
    assert.equal(await a.setConfig({ ttl: 31 }, null), false, 'create only');
    await until('config visible', 5000, async () => (await a.load()).config !== null);
    const v = (await a.load()).config!.version;
    assert.equal(await a.setConfig({ ttl: 32 }, v), true);
    assert.equal(await a.setConfig({ ttl: 33 }, v), false, 'stale version');
    await until('config 32', 5000, async () => (await a.load()).config?.value.ttl === 32);

    assert.equal(await a.setFailover({ leader: 'a', member: 'b', scheduled_at: '2030-01-01T00:00:00+00:00' }, null), true);
    assert.equal(await a.setFailover({ member: 'c' }, null), false);
    const f = (await a.load()).failover!;
    assert.deepEqual([f.leader, f.member, f.scheduled_at], ['a', 'b', '2030-01-01T00:00:00+00:00']);
    assert.equal(await a.deleteFailover(f.version + 1000), false, 'stale version');
    assert.equal(await a.deleteFailover(f.version), true);
    assert.equal((await a.load()).failover, null);
    assert.deepEqual((await api(`${NS}/configmaps/${sc}-failover`)).body.metadata.annotations ?? {}, {}, 'annotations removed, as Patroni does');

    assert.equal(await a.setSync({ leader: 'a', sync_standby: 'b,c' }, null), true);
    assert.equal(await a.setSync({ leader: 'a', sync_standby: 'd' }, null), false);
    const s = (await a.load()).sync!;
    assert.deepEqual([s.leader, s.sync_standby], ['a', ['b', 'c']]);
    assert.equal(await a.setSync({ leader: 'a', sync_standby: null, quorum: 1 }, s.version), true);
    assert.deepEqual((await a.load()).sync?.quorum, 1);
    assert.equal(await a.deleteSync(), true);
    assert.equal((await a.load()).sync, null);

    const history = [[1, 50331808, 'no recovery target specified', '2026-01-01T00:00:00.000000+00:00', 'a']] as const;
    assert.equal(await a.setHistory(history), true);
    assert.deepEqual((await a.load()).history, history);
    assert.equal((await a.load()).config?.value.ttl, 32, 'history does not touch config');
  });
});

describe('Kubernetes store under API faults', () => {
  test('an expired watch (410) is re-listed and changes keep arriving; a 503 is retried within retry_timeout', async () => {
    const sc = scope();
    const [a, b] = [store(sc, 'a', { ttl: 30 }), store(sc, 'b', { ttl: 30 })];
    await Promise.all([a.load(), b.load()]);
    let woke = 0;
    b.watchLeader(() => woke++);
    assert.ok(srv.faults.expireWatches() >= 2, 'both caches of both stores were watching');
    assert.equal(await a.attemptToAcquireLeader(), true);
    await until('b sees the new leader after its watch expired', 10_000, async () => (await b.load()).leader?.name === 'a');
    assert.ok(woke > 0, 'and was woken by it');
    srv.faults.failNext(503, { count: 2, match: { method: 'PATCH' } });
    assert.equal(await a.updateLeader({ optime: 4242 }), true, 'two 503s in a row are retried');
    await until('b reads the renewal', 10_000, async () => (await b.load()).status.optime === 4242);
    srv.faults.failNext(500, { count: 1000, match: { method: 'PATCH' } });
    await assert.rejects(a.updateLeader({ optime: 4343 }), /no answer within the retry timeout/, 'a server that keeps failing: the call gives up at retry_timeout');
    srv.faults.clear();
  });
});

describe('Kubernetes store, Endpoints mode', () => {
  test('the leader Endpoints carry the holder’s IP and ports; the headless -config Service exists; release clears them', async () => {
    const sc = scope();
    await pod(sc, `${sc}-0`, '127.0.0.21');
    await pod(sc, `${sc}-1`, '127.0.0.22');
    const [a, b] = [store(sc, `${sc}-0`, { endpoints: true }), store(sc, `${sc}-1`, { endpoints: true })];
    await Promise.all([a.load(), b.load()]);
    assert.equal(await a.initialize('', true), true);
    assert.equal((await api(`${NS}/services/${sc}-config`)).body.spec.clusterIP, 'None');
    assert.equal(await a.attemptToAcquireLeader(), true);
    let ep = (await api(`${NS}/endpoints/${sc}`)).body;
    assert.equal(ep.metadata.annotations.leader, `${sc}-0`);
    assert.deepEqual(ep.subsets ?? [], [], 'a new holder first writes empty subsets (it is not promoted yet)');
    assert.equal(await a.updateLeader({ optime: 1000 }), true);
    ep = (await api(`${NS}/endpoints/${sc}`)).body;
    assert.equal(ep.subsets[0].addresses[0].ip, '127.0.0.21');
    assert.equal(ep.subsets[0].addresses[0].targetRef.name, `${sc}-0`);
    assert.deepEqual(ep.subsets[0].ports, [{ name: 'postgresql', port: 5433, protocol: 'TCP' }]);
    await until('b sees a', 5000, async () => (await b.load()).leader?.name === `${sc}-0`);
    assert.equal(await a.deleteLeader(), true);
    ep = (await api(`${NS}/endpoints/${sc}`)).body;
    assert.equal(ep.metadata.annotations.leader, undefined);
    assert.deepEqual(ep.subsets ?? [], []);
    await until('b sees no leader', 5000, async () => (await b.load()).leader === null);
    assert.equal(await b.attemptToAcquireLeader(), true, 'a released lock is free at once');
    assert.equal(await b.updateLeader({ optime: 2000 }), true);
    assert.equal((await api(`${NS}/endpoints/${sc}`)).body.subsets[0].addresses[0].ip, '127.0.0.22');
  });
});

describe('Kubernetes connection settings', () => {
  test('in a pod: KUBERNETES_SERVICE_HOST/PORT with the service account token and CA', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pgwarden-sa-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), srv.token);
    writeFileSync(join(sa, 'ca.crt'), srv.caPem!);
    writeFileSync(join(sa, 'namespace'), 'default');
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = String(srv.port);
    try {
      const c = await KubeClient.connect({ rootPrefix: root });
      assert.equal(c.server, `https://127.0.0.1:${srv.port}`);
      const r = await c.request('GET', '/api/v1/namespaces/default/configmaps', Date.now() + 5000);
      assert.equal(r.status, 200, 'the token was sent and the server certificate verified with the CA');
    } finally {
      for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('outside a pod: a missing kubeconfig or an unknown context is a clear error', async () => {
    await assert.rejects(KubeClient.connect({ kubeconfig: '/nonexistent/kubeconfig' }), /no kubeconfig at \/nonexistent\/kubeconfig/);
    await assert.rejects(KubeClient.connect({ kubeconfig: join(dir, 'kubeconfig'), context: 'nope' }), /kubernetes\.context: no context nope in the kubeconfig \(it has kstore/);
  });
});
