/**
 * Debian's Patroni (3.0.2) with its `kubernetes:` store against the local API server
 * (src/kube/apiserver), in ConfigMap mode and in Endpoints mode (`use_endpoints: true`): three members
 * with real PostgreSQL bootstrap and elect exactly one leader; after kill -9 of the leader's Patroni
 * and postmaster another member takes the lock (an RV-preconditioned PATCH) and becomes the only
 * primary. The server's side is asserted from its transcript too: watch events reached the members
 * (Patroni half-works without them, kube-api-subset.md §2.4 item 6). Finally the lock is handed to a
 * replica by a write the leader has not seen (its watch events held back): the leader's renewal carries
 * a stale resourceVersion, must get 409, re-read and step down — so a server that stopped answering
 * 409 to stale resourceVersions fails here (the old leader would silently overwrite the change).
 *
 * Needs root (Patroni and PostgreSQL run as the `postgres` OS user), /usr/bin/patroni and PostgreSQL.
 * Pods are created by the test (no kubelet), all with podIP 127.0.0.1; Endpoints with loopback IPs
 * are accepted by this server (a real apiserver refuses them: documented divergence).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { startKubeApiServer, type KubeApiServer } from '../../src/kube/apiserver/index.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { pgOsUser } from '../../src/util/users.js';
import { freePort } from '../../src/util/net.js';

const PATRONI = '/usr/bin/patroni';
const CONTEXT = 'pgwarden-patroni';
const TTL = 15;
const user = (() => {
  try {
    return pgOsUser();
  } catch {
    return null;
  }
})();
const skip = !existsSync(PATRONI) ? 'no /usr/bin/patroni' : !user ? 'needs root and a postgres OS user' : false;

interface Member {
  name: string;
  restPort: number;
  pgPort: number;
  dataDir: string;
  configFile: string;
  logFile: string;
  pid?: number;
}

interface Cluster {
  srv: KubeApiServer;
  dir: string;
  scope: string;
  members: Member[];
  endpoints: boolean;
}

const clusters: Cluster[] = [];

async function api(c: Cluster, path: string, init: { method?: string; body?: unknown; contentType?: string } = {}): Promise<{ status: number; body: any }> {
  // The server's certificate is self-signed; the kubeconfig carries it for Patroni. Here we talk to it through node:https with the CA.
  const { request } = await import('node:https');
  return new Promise((res, rej) => {
    const req = request(
      `${c.srv.url}${path}`,
      { method: init.method ?? 'GET', ca: c.srv.caPem, headers: { authorization: `Bearer ${c.srv.token}`, 'content-type': init.contentType ?? 'application/json' } },
      (r) => {
        let text = '';
        r.on('data', (d: Buffer) => (text += d.toString()));
        r.on('end', () => res({ status: r.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      },
    );
    req.on('error', rej);
    if (init.body !== undefined) req.write(JSON.stringify(init.body));
    req.end();
  });
}

async function rest(m: Member): Promise<Record<string, any> | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${m.restPort}/patroni`, { signal: AbortSignal.timeout(1500) });
    return (await r.json()) as Record<string, any>;
  } catch {
    return null;
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${String(last)})`);
}

function postmasterPid(m: Member): number | null {
  try {
    const pid = Number(readFileSync(join(m.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!(pid > 0)) return null;
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return comm === 'postgres' && resolve(readlinkSync(`/proc/${pid}/cwd`)) === resolve(m.dataDir) ? pid : null;
  } catch {
    return null;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

/** kill -9 of a member: Patroni's process group (it was started as a group leader) and the postmaster (Patroni setsid()s it). */
async function killMember(m: Member): Promise<void> {
  const pm = postmasterPid(m);
  if (m.pid && alive(m.pid)) {
    process.kill(-m.pid, 'SIGKILL');
    await waitGone(m.pid, 10_000);
  }
  if (pm !== null) {
    process.kill(pm, 'SIGKILL');
    await waitGone(pm, 10_000);
  }
  delete m.pid;
}

async function stopMember(m: Member): Promise<void> {
  if (m.pid && alive(m.pid)) {
    process.kill(m.pid, 'SIGTERM');
    if (!(await waitGone(m.pid, 20_000))) process.kill(-m.pid, 'SIGKILL');
  }
  await killMember(m);
}

async function startCluster(scope: string, endpoints: boolean): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), `pgwarden-patroni-${scope}-`));
  chownSync(dir, user!.uid, user!.gid);
  const kubeconfig = join(dir, 'kubeconfig');
  const srv = await startKubeApiServer({ kubeconfigPath: kubeconfig, context: CONTEXT, recordTranscript: true, transcriptFile: join(dir, 'transcript.jsonl') });
  const c: Cluster = { srv, dir, scope, members: [], endpoints };
  clusters.push(c);
  chownSync(kubeconfig, user!.uid, user!.gid);
  const binDir = findBinDir();
  for (let i = 0; i < 3; i++) {
    const name = `${scope}-${i}`;
    const m: Member = { name, restPort: await freePort(), pgPort: await freePort(), dataDir: join(dir, `data-${i}`), configFile: join(dir, `${name}.yml`), logFile: join(dir, `${name}.log`) };
    c.members.push(m);
    const pod = await api(c, '/api/v1/namespaces/default/pods', {
      method: 'POST',
      body: {
        metadata: { name, labels: { application: 'patroni', 'cluster-name': scope } },
        spec: { hostname: name, nodeName: 'node1', containers: [{ name: 'postgres', image: 'postgres:15' }] },
        status: { phase: 'Running', podIP: '127.0.0.1' },
      },
    });
    assert.equal(pod.status, 201, JSON.stringify(pod.body));
    const cfg = {
      scope,
      name,
      restapi: { listen: `127.0.0.1:${m.restPort}`, connect_address: `127.0.0.1:${m.restPort}` },
      kubernetes: { namespace: 'default', labels: { application: 'patroni' }, context: CONTEXT, pod_ip: '127.0.0.1', ports: [{ name: 'postgresql', port: m.pgPort }], use_endpoints: endpoints },
      bootstrap: { dcs: { ttl: TTL, loop_wait: 2, retry_timeout: 5, postgresql: { use_pg_rewind: false } }, initdb: [{ encoding: 'UTF8' }] },
      postgresql: {
        listen: `127.0.0.1:${m.pgPort}`,
        connect_address: `127.0.0.1:${m.pgPort}`,
        data_dir: m.dataDir,
        bin_dir: binDir,
        pgpass: join(dir, `pgpass-${i}`),
        authentication: { superuser: { username: 'postgres', password: 'pw' }, replication: { username: 'replicator', password: 'rpw' } },
        parameters: { unix_socket_directories: dir, max_connections: 20, shared_buffers: '16MB' },
        pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 md5', 'host replication replicator 127.0.0.1/32 md5'],
      },
    };
    writeFileSync(m.configFile, stringify(cfg));
    chownSync(m.configFile, user!.uid, user!.gid);
  }
  for (const m of c.members) startMember(c, m);
  return c;
}

function startMember(c: Cluster, m: Member): void {
  const out = openSync(m.logFile, 'a');
  chownSync(m.logFile, user!.uid, user!.gid);
  const child = spawn(PATRONI, [m.configFile], {
    cwd: c.dir,
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, HOME: c.dir, KUBECONFIG: join(c.dir, 'kubeconfig'), PATRONI_LOG_LEVEL: 'INFO' },
    uid: user!.uid,
    gid: user!.gid,
  });
  closeSync(out);
  child.unref();
  assert.ok(child.pid, `could not start patroni for ${m.name}`);
  m.pid = child.pid;
}

/** The member holding the lock according to the store (leader annotation) and to Patroni's REST API. */
async function leaderOf(c: Cluster, among: Member[]): Promise<Member | undefined> {
  const obj = c.endpoints ? `endpoints/${c.scope}` : `configmaps/${c.scope}-leader`;
  const r = await api(c, `/api/v1/namespaces/default/${obj}`);
  const holder = r.status === 200 ? (r.body.metadata.annotations?.leader as string | undefined) : undefined;
  const states = await Promise.all(among.map(rest));
  const masters = among.filter((_, i) => states[i]?.role === 'master' && states[i]?.state === 'running');
  if (masters.length === 1 && masters[0]!.name === holder) return masters[0];
  return undefined;
}

const logs = (c: Cluster): string => c.members.map((m) => `--- ${m.name}\n${existsSync(m.logFile) ? readFileSync(m.logFile, 'utf8').split('\n').slice(-25).join('\n') : ''}`).join('\n');

async function scenario(scope: string, endpoints: boolean): Promise<void> {
  const c = await startCluster(scope, endpoints);
  let leader: Member;
  try {
    leader = await until('one leader', () => leaderOf(c, c.members), 120_000);
  } catch (e) {
    throw new Error(`${String(e)}\n${logs(c)}`);
  }
  const others = c.members.filter((m) => m !== leader);
  await until(
    'two streaming replicas',
    async () => {
      const s = await Promise.all(others.map(rest));
      return s.every((x) => x?.role === 'replica' && x.state === 'running' && (x.replication_state === undefined || x.replication_state === 'streaming')) || null;
    },
    90_000,
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${logs(c)}`);
  });
  // The store as Patroni left it: pod role labels, and in Endpoints mode the leader Endpoints' subsets point at the primary.
  // A member labels its pod in its HA cycle's touch_member, which can come a cycle after its REST API says replica.
  const want = c.members.map((m) => `${m.name}=${m === leader ? 'master' : 'replica'}`).sort();
  const labelled = async () => {
    const items = (await api(c, `/api/v1/namespaces/default/pods?labelSelector=cluster-name%3D${scope}`)).body.items as any[];
    return { items, roles: items.map((p) => `${p.metadata.name}=${p.metadata.labels.role}`).sort() };
  };
  await until('every pod labelled with its role', async () => JSON.stringify((await labelled()).roles) === JSON.stringify(want), 30_000).catch(() => undefined);
  const { items: pods, roles } = await labelled();
  assert.deepEqual(roles, want);
  for (const p of pods) assert.equal(JSON.parse(p.metadata.annotations.status).state, 'running');
  if (endpoints) {
    const ep = (await api(c, `/api/v1/namespaces/default/endpoints/${scope}`)).body;
    assert.equal(ep.subsets[0].ports[0].port, leader.pgPort);
    assert.equal((await api(c, `/api/v1/namespaces/default/services/${scope}-config`)).status, 200, 'Patroni created the headless -config Service');
  } else {
    assert.equal((await api(c, `/api/v1/namespaces/default/configmaps/${scope}-config`)).status, 200);
  }
  const transitions = Number((await api(c, endpoints ? `/api/v1/namespaces/default/endpoints/${scope}` : `/api/v1/namespaces/default/configmaps/${scope}-leader`)).body.metadata.annotations.transitions);

  // kill -9 of the leader's Patroni and postmaster: another member takes over after ttl.
  const killedAt = Date.now();
  await killMember(leader);
  const next = await until('a new leader', () => leaderOf(c, others), (TTL + 60) * 1000).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${logs(c)}`);
  });
  assert.notEqual(next, leader);
  assert.ok(Date.now() - killedAt >= (TTL - 3) * 1000, 'the lock is taken over only after ttl');
  const leaderObj = (await api(c, endpoints ? `/api/v1/namespaces/default/endpoints/${scope}` : `/api/v1/namespaces/default/configmaps/${scope}-leader`)).body;
  assert.equal(Number(leaderObj.metadata.annotations.transitions), transitions + 1);
  // Stays the only primary over a few loop_waits (two winners of the race would show here).
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 1500));
    const states = await Promise.all(others.map(rest));
    assert.deepEqual(
      others.map((m, j) => `${m.name}:${states[j]?.role}`),
      others.map((m) => `${m.name}:${m === next ? 'master' : 'replica'}`),
    );
  }

  // The takeover was a PATCH preconditioned on the leader object's resourceVersion, and watch events reached the members.
  const t = c.srv.transcript();
  const leaderPath = endpoints ? `/endpoints/${scope}` : `/configmaps/${scope}-leader`;
  const preconditioned = t.filter((r) => r.kind === 'request' && r.method === 'PATCH' && r.url.includes(leaderPath) && JSON.stringify(r.body).includes('"resourceVersion"'));
  assert.ok(preconditioned.length > 0);
  const watchIds = new Set(t.filter((r) => r.kind === 'watch-event' && r.type === 'MODIFIED').map((r) => r.id));
  assert.ok(watchIds.size >= 4, `MODIFIED events reached ${watchIds.size} watch streams`);
  assert.ok(t.filter((r) => r.kind === 'watch-event' && r.type === 'BOOKMARK').length === 0, 'Patroni never asks for bookmarks');

  // Hand the lock to the replica with a real write that no watch delivers yet.
  const thief = others.find((m) => m !== next)!;
  const objPath = `/api/v1/namespaces/default/${endpoints ? `endpoints/${scope}` : `configmaps/${scope}-leader`}`;
  const cur = (await api(c, objPath)).body;
  const mark = c.srv.transcript().length;
  c.srv.faults.holdWatchEvents();
  const now = new Date().toISOString().replace('Z', '+00:00');
  const stolen = await api(c, objPath, {
    method: 'PATCH',
    contentType: 'application/merge-patch+json',
    body: { metadata: { resourceVersion: cur.metadata.resourceVersion, annotations: { leader: thief.name, acquireTime: now, renewTime: now, transitions: String(Number(cur.metadata.annotations.transitions) + 1) } } },
  });
  assert.equal(stolen.status, 200, JSON.stringify(stolen.body));
  try {
    await until(
      'the leader to renew with its stale resourceVersion and get 409',
      async () => {
        const recent = c.srv.transcript().slice(mark);
        const ids = new Set(recent.filter((r) => r.kind === 'request' && r.method === 'PATCH' && r.url.endsWith(leaderPath)).map((r) => r.id));
        return recent.some((r) => r.kind === 'response' && ids.has(r.id) && r.status === 409);
      },
      20_000,
    );
  } finally {
    c.srv.faults.releaseWatchEvents();
  }
  const handedOver = await until('the replica named in the stolen lock to lead', () => leaderOf(c, [next, thief]), 60_000).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${logs(c)}`);
  });
  assert.equal(handedOver.name, thief.name);
}

describe('Patroni 3.0.2 on the local Kubernetes API server', { skip, concurrency: false }, () => {
  after(async () => {
    for (const c of clusters) {
      await Promise.all(c.members.map((m) => stopMember(m).catch(() => undefined)));
      await c.srv.close();
      rmSync(c.dir, { recursive: true, force: true });
    }
  });

  test('ConfigMap mode: bootstrap, one leader, takeover after kill -9 of the leader, stale-RV renewal gets 409 and the leader steps down', { timeout: 300_000 }, async () => {
    await scenario('cmdemo', false);
  });

  test('Endpoints mode (use_endpoints: true): bootstrap, one leader, takeover after kill -9 of the leader, stale-RV renewal gets 409 and the leader steps down', { timeout: 300_000 }, async () => {
    await scenario('epdemo', true);
  });
});
