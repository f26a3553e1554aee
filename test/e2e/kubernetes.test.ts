/**
 * Three `pgwarden daemon`s with real PostgreSQL on the Kubernetes store, against the local API server
 * (https + bearer token, reached through a kubeconfig as outside a pod). The test registers one Pod per
 * member (loopback podIP) and starts each daemon with PATRONI_KUBERNETES_POD_IP and PATRONI_NAME, as a
 * pod's downward API would. In ConfigMap mode the write path is "the pod labelled role=primary", in
 * Endpoints mode "the address in the <scope> Endpoints": after kill -9 of the primary's daemon and
 * postmaster the write path leads to the new primary, the old one rejoins as a replica, and a watch on
 * the pods proves that no two pods ever carried role=primary at once. `pgwarden ctl list` and Debian's
 * `patronictl list` read the cluster from the API server.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createLocalCluster, member, startMember, type LocalState } from '../../src/local/cluster.js';
import { localDown } from '../../src/local/run.js';
import { KubeClient } from '../../src/kube/client.js';
import { KubeCache, type KubeObject } from '../../src/dcs/kube-cache.js';
import { startKubeApiServer, type KubeApiServer } from '../../src/kube/apiserver/index.js';
import { pgOsUser } from '../../src/util/users.js';
import { silentLogger } from '../../src/util/log.js';
import { clusterView, killMember, leaderOf, memberLog, restartMember, waitFor, waitHealthy } from '../helpers/e2e.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/pgwarden');
const PATRONICTL = '/usr/bin/patronictl';
const NS = 'default';

interface KubeCluster {
  srv: KubeApiServer;
  state: LocalState;
  dir: string;
  pods: KubeCache;
  /** Every moment (after each watch event) at which more than one pod carried role=primary. */
  doubles: string[];
  /** Names that carried role=primary at some point, in order of first appearance. */
  primaries: string[];
}

const clusters: KubeCluster[] = [];

after(async () => {
  for (const c of clusters) {
    await localDown(c.dir, { info: () => undefined }).catch((e: unknown) => console.error('teardown:', e));
    await c.pods.stop();
    await c.srv.close();
    if (!process.env.PGWARDEN_KEEP_TEST_DIR) rmSync(c.dir, { recursive: true, force: true });
  }
});

async function startKubeCluster(scope: string, useEndpoints: boolean): Promise<KubeCluster> {
  const dir = mkdtempSync(`/tmp/pgwarden-e2e-kube-${scope}-`);
  chmodSync(dir, 0o755);
  const kubeconfig = join(dir, 'kubeconfig');
  const context = 'pgwarden-e2e';
  const srv = await startKubeApiServer({ kubeconfigPath: kubeconfig, context });
  const user = pgOsUser();
  if (user) chownSync(kubeconfig, user.uid, user.gid);
  const state = await createLocalCluster({ dir, members: 3, scope, ttl: 10, loopWait: 1, retryTimeout: 3, kube: { kubeconfig, context, useEndpoints, namespace: NS } });
  const client = await KubeClient.connect({ kubeconfig, context });
  for (const m of state.members) {
    const r = await client.request('POST', `/api/v1/namespaces/${NS}/pods`, Date.now() + 5000, {
      metadata: { name: m.name, labels: { application: 'pgwarden', 'cluster-name': scope } },
      spec: { hostname: m.name, nodeName: 'node-1', containers: [{ name: 'postgres', image: 'pgwarden' }] },
      status: { phase: 'Running', podIP: '127.0.0.1' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const doubles: string[] = [];
  const primaries: string[] = [];
  const pods: KubeCache = new KubeCache({
    client,
    path: `/api/v1/namespaces/${NS}/pods`,
    labelSelector: `cluster-name=${scope}`,
    log: silentLogger(),
    watchSeconds: () => 60,
    listTimeoutMs: () => 5000,
    onChange: () => {
      const now = pods.values().filter((p) => p.metadata.labels?.role === 'primary').map((p) => p.metadata.name);
      if (now.length > 1) doubles.push(now.join('+'));
      for (const n of now) if (!primaries.includes(n)) primaries.push(n);
    },
  });
  pods.start();
  const c: KubeCluster = { srv, state, dir, pods, doubles, primaries };
  clusters.push(c);
  for (const m of state.members) startMember(state, m.name);
  return c;
}

async function connect(state: LocalState, port: number): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: state.superuser.username, password: state.superuser.password, database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Where a client following the store would send writes: the pod labelled primary, or the leader Endpoints' address. */
async function writePath(c: KubeCluster, useEndpoints: boolean): Promise<number | null> {
  if (useEndpoints) {
    const client = await KubeClient.connect({ kubeconfig: c.state.kube!.kubeconfig, context: c.state.kube!.context });
    const r = await client.request<KubeObject>('GET', `/api/v1/namespaces/${NS}/endpoints/${c.state.scope}`, Date.now() + 5000);
    const port = r.body?.subsets?.[0]?.ports?.[0]?.port as number | undefined;
    return typeof port === 'number' ? port : null;
  }
  const labelled = c.pods.values().filter((p) => p.metadata.labels?.role === 'primary');
  return labelled.length === 1 ? member(c.state, labelled[0]!.metadata.name).pgPort : null;
}

/** Write one row through the write path; resolves the member that took it. */
async function writeThrough(c: KubeCluster, useEndpoints: boolean, id: number): Promise<string | null> {
  const port = await writePath(c, useEndpoints);
  if (port === null) return null;
  const client = await connect(c.state, port);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS kube_writes(id int primary key)');
    await client.query('INSERT INTO kube_writes VALUES ($1)', [id]);
    return c.state.members.find((m) => m.pgPort === port)!.name;
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function scenario(scope: string, useEndpoints: boolean): Promise<KubeCluster> {
  const c = await startKubeCluster(scope, useEndpoints);
  const { state } = c;
  const view = await waitHealthy(state, 180_000);
  const old = leaderOf(view).name;
  // Labels settle within a loop of the cluster being healthy.
  await waitFor('role labels: one primary, two replicas', 30_000, async () => {
    const labels = c.pods.values().map((p) => `${p.metadata.name}=${p.metadata.labels?.role ?? '-'}`).sort();
    return JSON.stringify(labels) === JSON.stringify(state.members.map((m) => `${m.name}=${m.name === old ? 'primary' : 'replica'}`)) || null;
  });
  assert.equal(await waitFor('a write through the write path', 30_000, () => writeThrough(c, useEndpoints, 1)), old);

  await killMember(state, old);
  const next = await waitFor('a new primary', 120_000, async () => {
    const v = await clusterView(state);
    const l = v?.members.find((m) => m.role === 'leader' && m.state === 'running' && m.name !== old);
    return l?.name;
  });
  // The write path leads to the new primary (not the dead one, not nowhere).
  assert.equal(await waitFor('a write through the write path after failover', 60_000, () => writeThrough(c, useEndpoints, 2)), next);

  restartMember(state, old);
  const healed = await waitHealthy(state, 180_000);
  assert.equal(leaderOf(healed).name, next);
  await waitFor(`${old} labelled replica again`, 30_000, async () => c.pods.get(old)?.metadata.labels?.role === 'replica' || null);
  const both = await connect(state, member(state, old).pgPort);
  try {
    await waitFor('the rejoined member has both rows', 30_000, async () => Number((await both.query('SELECT count(*) AS n FROM kube_writes')).rows[0]?.n) === 2 || null);
  } finally {
    await both.end();
  }
  for (const m of state.members) {
    const log = memberLog(state, m.name);
    assert.ok(!/lease guard|bootstrap failed/.test(log), `${m.name}: no lease-guard stop and no failed bootstrap in a clean run`);
  }
  assert.deepEqual(c.doubles, [], 'never two pods labelled role=primary');
  assert.deepEqual(c.primaries.slice(0, 2), [old, next], 'the watch saw the label move (the check above was not vacuous)');
  return c;
}

describe('pgwarden daemons on the Kubernetes store (local API server)', () => {
  test('ConfigMap mode: bootstrap, kill -9 of the primary, the role=primary label follows it, the old primary rejoins; ctl and patronictl list', { timeout: 600_000 }, async () => {
    const c = await scenario('kcm', false);
    const cfg = member(c.state, 'member-1').configFile;
    const env = { ...process.env, KUBECONFIG: c.state.kube!.kubeconfig };
    const ours = await run(BIN, ['ctl', '-c', cfg, 'list', '--format', 'json'], { env });
    const rows = JSON.parse(ours.stdout) as Array<{ Member: string; Role: string; State: string }>;
    assert.deepEqual(rows.map((r) => r.Member).sort(), ['member-1', 'member-2', 'member-3']);
    assert.equal(rows.filter((r) => r.Role === 'Leader').length, 1);
    assert.equal(rows.filter((r) => r.Role === 'Replica' && r.State === 'streaming').length + rows.filter((r) => r.Role === 'Replica' && r.State === 'running').length, 2);
    if (existsSync(PATRONICTL)) {
      const theirs = await run(PATRONICTL, ['-c', cfg, 'list', '-f', 'json'], { env });
      const prow = JSON.parse(theirs.stdout) as Array<{ Member: string; Role: string }>;
      assert.deepEqual(
        prow.map((r) => `${r.Member}:${r.Role}`).sort(),
        rows.map((r) => `${r.Member}:${r.Role}`).sort(),
        'patronictl sees the same members and roles in our objects',
      );
    }
  });

  test('Endpoints mode: the <scope> Endpoints follow the primary through a kill -9', { timeout: 600_000 }, async () => {
    const c = await scenario('kep', true);
    const client = await KubeClient.connect({ kubeconfig: c.state.kube!.kubeconfig, context: c.state.kube!.context });
    const svc = await client.request<KubeObject>('GET', `/api/v1/namespaces/${NS}/services/kep-config`, Date.now() + 5000);
    assert.equal(svc.status, 200, 'the headless -config Service exists');
  });
});
