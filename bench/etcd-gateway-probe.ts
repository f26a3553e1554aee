/**
 * The same store calls as bench/etcd3-probe.ts, made the way Patroni's etcd3 backend makes them: JSON over
 * HTTP/1.1 to etcd's gRPC gateway (/v3/...), here with node:http, instead of gRPC over HTTP/2 with the etcd3
 * client. bench/memory runs it to show what the store client's transport costs; pgwarden itself uses etcd3.
 *
 *   node probe.mjs <host:port> <key prefix> <ttl s> <loop_wait s> <run for s>
 */
import http from 'node:http';

const [hostPort, prefix, ttl, loopWait, runFor] = process.argv.slice(2);
if (!hostPort || !prefix || !ttl || !loopWait || !runFor) {
  process.stderr.write('usage: probe.mjs <host:port> <key prefix> <ttl s> <loop_wait s> <run for s>\n');
  process.exit(2);
}
const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))];
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: string) => Buffer.from(s, 'base64').toString();

/** One unary call: POST a JSON body, the JSON answer (bounded by `ms`). */
function call(path: string, body: unknown, ms = 3000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: `/v3/${path}`, method: 'POST', agent, timeout: ms, headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => {
        try {
          const parsed = JSON.parse(data) as Record<string, unknown>;
          if (res.statusCode !== 200) reject(new Error(`${path}: ${res.statusCode} ${data}`));
          else resolve((parsed.result as Record<string, unknown> | undefined) ?? parsed);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer within ${ms} ms`)));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const { ID: lease } = (await call('lease/grant', { TTL: Number(ttl) })) as { ID: string };
// The watch: one long POST whose answer streams events (a line of JSON each).
const watch = http.request({ host, port, path: '/v3/watch', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => res.resume());
watch.on('error', () => undefined);
watch.end(JSON.stringify({ create_request: { key: b64(`${prefix}leader`) } }));
const member = JSON.stringify({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'replica' });
const end = Buffer.from(prefix);
end[end.length - 1]! += 1;

let rounds = 0;
const loop = setInterval(() => {
  void (async () => {
    await call('lease/keepalive', { ID: lease });
    const r = (await call('kv/range', { key: b64(prefix), range_end: end.toString('base64') })) as { kvs?: Array<{ key: string; value: string }> };
    await call('kv/put', { key: b64(`${prefix}members/probe`), value: b64(member), lease });
    const mine = r.kvs?.find((kv) => text(kv.key) === `${prefix}members/probe`);
    if (++rounds === 2 && mine && text(mine.value) === member) process.stdout.write('working\n');
  })().catch((e: unknown) => process.stderr.write(`probe: ${String(e)}\n`));
}, Number(loopWait) * 1000);

setTimeout(() => {
  clearInterval(loop);
  watch.destroy();
  agent.destroy();
}, Number(runFor) * 1000);
