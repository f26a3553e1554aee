/**
 * The local API server over loopback HTTP, for what the real-client conformance tests do not pin down:
 * what Patroni's urllib3 needs from a watch (chunked, one JSON event per line, `watch=True`, in-stream
 * 410), auth rules, media types, deletecollection, the admin fault endpoint, transcript file and
 * persistence across a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '../../src/kube/apiserver/index.js';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

function call(srv: KubeApiServer, method: string, path: string, opts: { body?: unknown; contentType?: string; token?: string | null } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? srv.token}`;
    if (opts.contentType) headers['content-type'] = opts.contentType;
    const req = request(`${srv.url}${path}`, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    req.end();
  });
}

/** Opens a watch and collects its lines until `n` events arrived or the stream ended. */
function watchLines(srv: KubeApiServer, path: string, n: number, onOpen?: () => void): Promise<{ headers: Record<string, unknown>; events: any[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(`${srv.url}${path}`, { headers: { authorization: `Bearer ${srv.token}` } }, (res) => {
      const events: any[] = [];
      let buf = '';
      let done = false;
      const finish = (ended: boolean): void => {
        if (done) return;
        done = true;
        resolve({ headers: res.headers, events, ended });
        req.destroy();
      };
      res.on('data', (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
        if (events.length >= n) finish(false);
      });
      res.on('end', () => finish(true));
      onOpen?.();
    });
    req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)));
    req.end();
  });
}

async function withServer(fn: (srv: KubeApiServer, dir: string) => Promise<void>, opts: Parameters<typeof startKubeApiServer>[0] = {}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-kube-'));
  const srv = await startKubeApiServer({ tls: false, token: 't0ken', ...opts });
  try {
    await fn(srv, dir);
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const cm = (name: string, labels: Record<string, string> = { application: 'patroni', 'cluster-name': 'demo' }) => ({ metadata: { name, labels } });

test('auth: 401 Status without or with a wrong token; /version and /healthz are open', async () => {
  await withServer(async (srv) => {
    const r = await call(srv, 'GET', '/api/v1/namespaces/default/configmaps', { token: null });
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    assert.equal((await call(srv, 'GET', '/api', { token: 'nope' })).status, 401);
    assert.equal((await call(srv, 'GET', '/version', { token: null })).body.minor, '32');
    assert.equal((await call(srv, 'GET', '/healthz', { token: null })).body, 'ok');
    assert.match(srv.kubeconfig(), /insecure-skip-tls-verify: true/);
  });
});

test('Patroni-style requests: POST without Content-Type, SMP with an RV precondition, deletecollection by label', async () => {
  await withServer(async (srv) => {
    const created = await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { body: { metadata: { name: 'demo-config', labels: { application: 'patroni', 'cluster-name': 'demo' }, annotations: { initialize: '' } } } });
    assert.equal(created.status, 201);
    assert.equal(created.body.kind, 'ConfigMap');
    const rv = created.body.metadata.resourceVersion as string;
    const smp = 'application/strategic-merge-patch+json';
    const ok = await call(srv, 'PATCH', '/api/v1/namespaces/default/configmaps/demo-config', { contentType: smp, body: { metadata: { annotations: { initialize: '42', x: '1' }, resourceVersion: rv } } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.metadata.annotations, { initialize: '42', x: '1' });
    const stale = await call(srv, 'PATCH', '/api/v1/namespaces/default/configmaps/demo-config', { contentType: smp, body: { metadata: { annotations: { x: null }, resourceVersion: rv } } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Conflict');
    const del = await call(srv, 'PATCH', '/api/v1/namespaces/default/configmaps/demo-config', { contentType: smp, body: { metadata: { annotations: { x: null } } } });
    assert.deepEqual(del.body.metadata.annotations, { initialize: '42' });
    await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { body: cm('demo-leader') });
    await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { body: cm('unrelated', { app: 'x' }) });
    const dc = await call(srv, 'DELETE', '/api/v1/namespaces/default/configmaps?labelSelector=application%3Dpatroni%2Ccluster-name%3Ddemo');
    assert.equal(dc.status, 200);
    assert.deepEqual(dc.body.items.map((i: any) => i.metadata.name).sort(), ['demo-config', 'demo-leader']);
    const left = await call(srv, 'GET', '/api/v1/namespaces/default/configmaps');
    assert.deepEqual(left.body.items.map((i: any) => i.metadata.name), ['unrelated']);
    assert.equal(left.body.items[0].kind, undefined, 'typed list items carry no kind');
  });
});

test('media types: protobuf and server-side apply are 415; bad JSON 400; YAML bodies accepted', async () => {
  await withServer(async (srv) => {
    const proto = await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { contentType: 'application/vnd.kubernetes.protobuf', body: 'x' });
    assert.equal(proto.status, 415);
    assert.equal((await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { contentType: 'application/json', body: '{bad' })).status, 400);
    const y = await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { contentType: 'application/yaml', body: 'metadata:\n  name: from-yaml\ndata:\n  a: "1"\n' });
    assert.equal(y.status, 201);
    const ssa = await call(srv, 'PATCH', '/api/v1/namespaces/default/configmaps/from-yaml', { contentType: 'application/apply-patch+yaml', body: '{}' });
    assert.equal(ssa.status, 415);
    assert.equal((await call(srv, 'GET', '/openapi/v3')).status, 404);
    assert.equal((await call(srv, 'PUT', '/api/v1/namespaces/default/configmaps')).status, 405);
  });
});

test('watch stream as Patroni reads it: watch=True, chunked, one JSON event per line with kind; DELETED at a higher RV; in-stream 410 then end', async () => {
  await withServer(async (srv) => {
    const list = await call(srv, 'GET', '/api/v1/namespaces/default/configmaps?labelSelector=application%3Dpatroni');
    const rv = list.body.metadata.resourceVersion as string;
    const w = watchLines(srv, `/api/v1/namespaces/default/configmaps?labelSelector=application%3Dpatroni&watch=True&resourceVersion=${rv}`, 3, () => {
      void (async () => {
        await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { body: cm('a') });
        await call(srv, 'PATCH', '/api/v1/namespaces/default/configmaps/a', { contentType: 'application/merge-patch+json', body: { data: { k: 'v' } } });
        await call(srv, 'DELETE', '/api/v1/namespaces/default/configmaps/a');
      })();
    });
    const { headers, events } = await w;
    assert.equal(headers['transfer-encoding'], 'chunked');
    assert.deepEqual(events.map((e) => `${e.type} ${e.object.kind} ${e.object.metadata.name}`), ['ADDED ConfigMap a', 'MODIFIED ConfigMap a', 'DELETED ConfigMap a']);
    const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.ok(rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!);
    const deadline = Date.now() + 5000;
    while (srv.openWatches() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.openWatches(), 0, 'the server noticed the client hung up (res close)');

    const expired = watchLines(srv, `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${srv.resourceVersion()}`, 5, () => {
      const tick = setInterval(() => {
        if (srv.openWatches() === 1) {
          clearInterval(tick);
          srv.faults.expireWatches();
        }
      }, 5);
    });
    const ex = await expired;
    assert.equal(ex.ended, true);
    assert.deepEqual(ex.events.map((e) => [e.type, e.object.code, e.object.reason]), [['ERROR', 410, 'Expired']]);
    const old = await watchLines(srv, `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}`, 5);
    assert.deepEqual(old.events.map((e) => e.object.code), [410]);
    const timed = await watchLines(srv, '/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1', 5);
    assert.equal(timed.ended, true, 'timeoutSeconds closes the stream cleanly');
  });
});

test('admin fault endpoint: fail the next matching request, delay it; transcript file records requests and watch events', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-kube-'));
  try {
    await withServer(
      async (srv) => {
        const set = await call(srv, 'POST', '/_pgwarden/faults', { body: { fail: { code: 500, method: 'GET', path: '/configmaps', count: 1 } } });
        assert.deepEqual(set.body, { ok: true });
        assert.equal((await call(srv, 'POST', '/_pgwarden/faults', { token: null, body: {} })).status, 401);
        const failed = await call(srv, 'GET', '/api/v1/namespaces/default/configmaps');
        assert.deepEqual([failed.status, failed.body.reason], [500, 'InternalError']);
        assert.equal((await call(srv, 'GET', '/api/v1/namespaces/default/configmaps')).status, 200);
        await call(srv, 'POST', '/_pgwarden/faults', { body: { delay: { ms: 200, method: 'GET' } } });
        const t0 = Date.now();
        await call(srv, 'GET', '/api/v1/namespaces/default/configmaps');
        assert.ok(Date.now() - t0 >= 190);
      },
      { transcriptFile: join(dir, 't.jsonl') },
    );
    const lines = readFileSync(join(dir, 't.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.kind === 'response' && l.status === 500));
    assert.ok(lines.every((l) => typeof l.t === 'string' && typeof l.id === 'number'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('persistence: state and the resourceVersion counter survive a clean restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-kube-'));
  const persistFile = join(dir, 'state.json');
  try {
    let rv = 0;
    await withServer(
      async (srv) => {
        await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { body: cm('kept') });
        rv = srv.resourceVersion();
      },
      { persistFile },
    );
    await withServer(
      async (srv) => {
        assert.equal(srv.resourceVersion(), rv);
        const r = await call(srv, 'GET', '/api/v1/namespaces/default/configmaps/kept');
        assert.equal(r.status, 200);
        const next = await call(srv, 'POST', '/api/v1/namespaces/default/configmaps', { body: cm('new') });
        assert.equal(Number(next.body.metadata.resourceVersion), rv + 1);
        const resume = await watchLines(srv, `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv - 1}`, 1);
        assert.equal(resume.events[0].object.code, 410, 'history is not persisted: older resumes must relist');
      },
      { persistFile },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
