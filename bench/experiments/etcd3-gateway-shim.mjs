// An experiment, not part of pgwarden: the subset of the etcd3 client's API that src/dcs/etcd.ts uses,
// made as Patroni's etcd3 backend makes its calls: JSON over HTTP/1.1 to etcd's gateway (/v3/...). Only
// bench/experiments/gateway-daemon runs it, bundled in place of `etcd3`, to measure what a daemon would
// weigh without gRPC. Plain http, one host, no auth or TLS, no guarantees beyond that measurement.
import http from 'node:http';
import { EventEmitter } from 'node:events';

export class EtcdLeaseInvalidError extends Error {}
class Recoverable extends Error {}
export const isRecoverableError = (e) => e instanceof Recoverable;
export const castGrpcError = (e) => e;

const b64 = (b) => Buffer.from(b).toString('base64');
const buf = (s) => Buffer.from(s ?? '', 'base64');
const up = (s) => String(s).toUpperCase();

function cmp(c) {
  const o = { key: b64(c.key), target: up(c.target), result: up(c.result) };
  if (c.value !== undefined) o.value = b64(c.value);
  if (c.create_revision !== undefined) o.create_revision = String(c.create_revision);
  if (c.mod_revision !== undefined) o.mod_revision = String(c.mod_revision);
  if (c.lease !== undefined) o.lease = String(c.lease);
  return o;
}
function op(r) {
  if (r.request_put) {
    const p = r.request_put;
    return { request_put: { key: b64(p.key), value: b64(p.value), ...(p.lease ? { lease: String(p.lease) } : {}) } };
  }
  if (r.request_delete_range) return { request_delete_range: { key: b64(r.request_delete_range.key) } };
  if (r.request_txn) return { request_txn: txnBody(r.request_txn) };
  throw new Error('op?');
}
function txnBody(t) {
  return { compare: (t.compare ?? []).map(cmp), success: (t.success ?? []).map(op), failure: (t.failure ?? []).map(op) };
}

export class Etcd3 {
  constructor(opts) {
    const u = new URL(opts.hosts[0]);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    this.kv = {
      range: async (req, o) => {
        const r = await this.call('kv/range', { key: b64(req.key), range_end: b64(req.range_end) }, o);
        return { kvs: (r.kvs ?? []).map((kv) => ({ key: buf(kv.key), value: buf(kv.value), mod_revision: kv.mod_revision, lease: kv.lease })) };
      },
      txn: async (req, o) => {
        const r = await this.call('kv/txn', txnBody(req), o);
        return { succeeded: !!r.succeeded };
      },
    };
    this.leaseClient = {
      leaseGrant: async (req, o) => {
        const r = await this.call('lease/grant', { TTL: String(req.TTL), ID: '0' }, o);
        return { ID: r.ID };
      },
      leaseKeepAlive: async (o) => {
        const s = new EventEmitter();
        s.write = (msg) => {
          this.call('lease/keepalive', { ID: String(msg.ID) }, o).then(
            (r) => s.emit('data', { TTL: r.TTL ?? '0' }),
            (e) => s.emit('error', e),
          );
        };
        s.end = () => undefined;
        return s;
      },
    };
  }
  call(path, body, o) {
    const ms = o?.deadline ? Math.max(1, o.deadline.getTime() - Date.now()) : 5000;
    return new Promise((resolve, reject) => {
      const req = http.request({ host: this.host, port: this.port, path: `/v3/${path}`, method: 'POST', agent: this.agent, timeout: ms, headers: { 'content-type': 'application/json' } }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (data += d));
        res.on('end', () => {
          let parsed;
          try { parsed = JSON.parse(data); } catch (e) { return reject(new Recoverable(`${path}: ${e}`)); }
          if (path === 'lease/keepalive') parsed = parsed.result ?? parsed;
          if (res.statusCode !== 200) {
            const m = parsed.message ?? parsed.error ?? data;
            if (/lease not found/i.test(m)) return reject(new EtcdLeaseInvalidError(m));
            return reject(res.statusCode >= 500 ? new Recoverable(`${path}: ${m}`) : new Error(`${path}: ${m}`));
          }
          resolve(parsed);
        });
      });
      req.on('timeout', () => req.destroy(new Recoverable(`${path}: timeout`)));
      req.on('error', (e) => reject(e instanceof Recoverable ? e : new Recoverable(String(e))));
      req.end(JSON.stringify(body));
    });
  }
  watch() {
    const self = this;
    return { key(k) { return { watcher() { return self.watcher(k); } }; } };
  }
  watcher(k) {
    const w = new EventEmitter();
    let req = null;
    let stopped = false;
    const open = () => {
      if (stopped) return;
      req = http.request({ host: this.host, port: this.port, path: '/v3/watch', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          pending += d;
          let i;
          while ((i = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, i); pending = pending.slice(i + 1);
            if (!line.trim()) continue;
            let m; try { m = JSON.parse(line).result; } catch { continue; }
            if (!m) continue;
            if (m.created) w.emit('connected');
            for (const ev of m.events ?? []) w.emit(ev.type === 'DELETE' ? 'delete' : 'put', ev.kv);
          }
        });
        res.on('end', () => { w.emit('disconnected', new Error('ended')); setTimeout(open, 200).unref(); });
      });
      req.on('error', (e) => { w.emit('disconnected', e); if (!stopped) setTimeout(open, 500).unref(); });
      req.end(JSON.stringify({ create_request: { key: b64(k) } }));
    };
    open();
    w.cancel = async () => { stopped = true; req?.destroy(); };
    return w;
  }
  close() { this.agent.destroy(); }
}
