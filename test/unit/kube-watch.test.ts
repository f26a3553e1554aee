/** Watch streams without sockets: replay, resume, 410, selector transitions, bookmarks, expiry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '../../src/kube/apiserver/json.js';
import { Registry, type ResourceType } from '../../src/kube/apiserver/registry.js';
import { parseLabelSelector } from '../../src/kube/apiserver/selectors.js';
import { Store } from '../../src/kube/apiserver/store.js';
import { WatchHub, type WatchEvent, type WatchRequest } from '../../src/kube/apiserver/watch.js';

function setup(opts: { historyLimit?: number; bookmarkIntervalMs?: number } = {}) {
  const registry = new Registry();
  const store = new Store({ registry, ...(opts.historyLimit ? { historyLimit: opts.historyLimit } : {}) });
  store.create(registry.find('', 'v1', 'namespaces')!, '', { metadata: { name: 'default' } });
  const hub = new WatchHub(store, { bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 0 });
  const cm = registry.find('', 'v1', 'configmaps')!;
  return { registry, store, hub, cm };
}

function sink() {
  const events: WatchEvent[] = [];
  let ended = false;
  return {
    events,
    ended: () => ended,
    sink: { send: (e: WatchEvent) => (events.push(JSON.parse(JSON.stringify(e)) as WatchEvent), true), backlog: () => 0, end: () => void (ended = true) },
  };
}

const req = (t: ResourceType, extra: Partial<WatchRequest> = {}): WatchRequest => ({ type: t, filter: { namespace: 'default' }, allowBookmarks: false, apiVersion: 'v1', present: (o) => o, ...extra });
const summary = (evs: WatchEvent[]): string[] => evs.map((e) => `${e.type} ${String((e.object.metadata as JsonObject)?.name ?? (e.object as JsonObject).code)}`);

test('a fresh watch (no resourceVersion or "0") gets ADDED for each current object, then live events carrying kind', () => {
  const { store, hub, cm } = setup();
  store.create(cm, 'default', { metadata: { name: 'a' } });
  const s = sink();
  hub.open(req(cm, { resourceVersion: '0' }), s.sink);
  store.update(cm, 'default', 'a', { metadata: { name: 'a' }, data: { x: '1' } }, { verb: 'update' });
  store.delete(cm, 'default', 'a');
  assert.deepEqual(summary(s.events), ['ADDED a', 'MODIFIED a', 'DELETED a']);
  assert.equal(s.events[2]!.object.kind, 'ConfigMap');
  const rvs = s.events.map((e) => Number((e.object.metadata as JsonObject).resourceVersion));
  assert.ok(rvs[2]! > rvs[1]!, 'DELETED carries a new, higher RV (Patroni relies on it)');
});

test('resume from a retained resourceVersion replays exactly the later events; a too-old one gets ERROR 410 and the stream ends', () => {
  const { store, hub, cm } = setup({ historyLimit: 3 });
  const a = store.create(cm, 'default', { metadata: { name: 'a' } });
  const rvA = String((a.metadata as JsonObject).resourceVersion);
  store.create(cm, 'default', { metadata: { name: 'b' } });
  const s = sink();
  hub.open(req(cm, { resourceVersion: rvA }), s.sink);
  assert.deepEqual(summary(s.events), ['ADDED b']);
  for (const n of ['c', 'd', 'e', 'f']) store.create(cm, 'default', { metadata: { name: n } });
  const old = sink();
  hub.open(req(cm, { resourceVersion: rvA }), old.sink);
  assert.equal(old.events.length, 1);
  assert.equal(old.events[0]!.type, 'ERROR');
  assert.equal(old.events[0]!.object.code, 410);
  assert.equal(old.events[0]!.object.reason, 'Expired');
  assert.match(String(old.events[0]!.object.message), new RegExp(`^too old resource version: ${rvA} \\(\\d+\\)$`));
  assert.equal(old.ended(), true);
  assert.equal(hub.count, 1);
});

test('label selector transitions: starts matching → ADDED, stops matching → DELETED (previous object, new RV)', () => {
  const { store, hub, cm } = setup();
  const s = sink();
  hub.open(req(cm, { filter: { namespace: 'default', labels: parseLabelSelector('role=master') } }), s.sink);
  store.create(cm, 'default', { metadata: { name: 'x', labels: { role: 'replica' } } });
  const up = store.update(cm, 'default', 'x', { metadata: { name: 'x', labels: { role: 'master' } } }, { verb: 'patch' });
  store.update(cm, 'default', 'x', { metadata: { name: 'x', labels: { role: 'master' } }, data: { a: 'b' } }, { verb: 'patch' });
  const down = store.update(cm, 'default', 'x', { metadata: { name: 'x', labels: { role: 'replica' } } }, { verb: 'patch' });
  assert.deepEqual(summary(s.events), ['ADDED x', 'MODIFIED x', 'DELETED x']);
  const gone = s.events[2]!.object.metadata as JsonObject;
  assert.deepEqual(gone.labels, { role: 'master' }, 'the previous state');
  assert.equal(gone.resourceVersion, (down.metadata as JsonObject).resourceVersion, 'stamped with the new RV');
  assert.ok(up);
});

test('events of other namespaces and types are not delivered', () => {
  const { store, hub, cm, registry } = setup();
  store.create(registry.find('', 'v1', 'namespaces')!, '', { metadata: { name: 'other' } });
  const s = sink();
  hub.open(req(cm), s.sink);
  store.create(cm, 'other', { metadata: { name: 'o' } });
  store.create(registry.find('', 'v1', 'secrets')!, 'default', { metadata: { name: 's' } });
  store.create(cm, 'default', { metadata: { name: 'mine' } });
  assert.deepEqual(summary(s.events), ['ADDED mine']);
});

test('BOOKMARKs only when allowed; they carry kind, apiVersion and the current RV', async () => {
  const { store, hub, cm } = setup({ bookmarkIntervalMs: 20 });
  const withB = sink();
  const without = sink();
  const h1 = hub.open(req(cm, { allowBookmarks: true, resourceVersion: String(store.resourceVersion) }), withB.sink);
  const h2 = hub.open(req(cm, { resourceVersion: String(store.resourceVersion) }), without.sink);
  const deadline = Date.now() + 2000;
  while (withB.events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  h1.close();
  h2.close();
  assert.equal(withB.events[0]!.type, 'BOOKMARK');
  assert.deepEqual(withB.events[0]!.object, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: String(store.resourceVersion) } });
  assert.equal(without.events.length, 0);
  assert.equal(hub.count, 0);
});

test('sendInitialEvents ends the replay with an initial-events-end BOOKMARK', () => {
  const { store, hub, cm } = setup();
  store.create(cm, 'default', { metadata: { name: 'a' } });
  const s = sink();
  const h = hub.open(req(cm, { allowBookmarks: true, sendInitialEvents: true }), s.sink);
  h.close();
  assert.deepEqual(summary(s.events), ['ADDED a', 'BOOKMARK undefined']);
  assert.deepEqual((s.events[1]!.object.metadata as JsonObject).annotations, { 'k8s.io/initial-events-end': 'true' });
});

test('expireAll: every open watch gets ERROR 410 and ends, and a resume from before is 410 too', () => {
  const { store, hub, cm } = setup();
  const rv = String(store.resourceVersion);
  const a = sink();
  const b = sink();
  hub.open(req(cm, { resourceVersion: rv }), a.sink);
  hub.open(req(cm, { resourceVersion: rv }), b.sink);
  store.create(cm, 'default', { metadata: { name: 'x' } });
  assert.equal(hub.expireAll(), 2);
  for (const s of [a, b]) {
    assert.deepEqual(summary(s.events), ['ADDED x', 'ERROR 410']);
    assert.equal(s.ended(), true);
  }
  const again = sink();
  hub.open(req(cm, { resourceVersion: rv }), again.sink);
  assert.deepEqual(summary(again.events), ['ERROR 410']);
  assert.equal(hub.count, 0);
});

test('holdEvents: writes happen but watchers see them only on release, in order', () => {
  const { store, hub, cm } = setup();
  const s = sink();
  hub.open(req(cm, { resourceVersion: String(store.resourceVersion) }), s.sink);
  hub.holdEvents();
  store.create(cm, 'default', { metadata: { name: 'a' } });
  store.create(cm, 'default', { metadata: { name: 'b' } });
  assert.equal(s.events.length, 0);
  hub.releaseEvents();
  assert.deepEqual(summary(s.events), ['ADDED a', 'ADDED b']);
  store.create(cm, 'default', { metadata: { name: 'c' } });
  assert.deepEqual(summary(s.events), ['ADDED a', 'ADDED b', 'ADDED c']);
});
