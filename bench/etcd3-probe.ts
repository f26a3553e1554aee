/**
 * The etcd3 client alone, doing each loop_wait what a member daemon does with the store: renew its lease
 * once (no background keepalive), read the cluster's keys, write its member key under the lease, and keep
 * a watch on the leader key. bench/memory bundles it as the daemon is bundled and runs it with the
 * daemon's node flags: what the store client costs a process with nothing else in it.
 *
 *   node probe.mjs <host:port> <key prefix> <ttl s> <loop_wait s> <run for s>
 */
import { Etcd3 } from 'etcd3';

const [hosts, prefix, ttl, loopWait, runFor] = process.argv.slice(2);
if (!hosts || !prefix || !ttl || !loopWait || !runFor) {
  process.stderr.write('usage: probe.mjs <host:port> <key prefix> <ttl s> <loop_wait s> <run for s>\n');
  process.exit(2);
}

const client = new Etcd3({ hosts });
const lease = client.lease(Number(ttl), { autoKeepAlive: false });
await lease.grant();
const watcher = await client.watch().key(`${prefix}leader`).create();
watcher.on('error', () => undefined);
const member = JSON.stringify({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'replica' });

let rounds = 0;
const loop = setInterval(() => {
  void (async () => {
    await lease.keepaliveOnce();
    const keys = await client.getAll().prefix(prefix).strings();
    await lease.put(`${prefix}members/probe`).value(member);
    // The first full round, once its own member key reads back: the caller measures only a working client.
    if (++rounds === 2 && keys[`${prefix}members/probe`] === member) process.stdout.write('working\n');
  })().catch((e: unknown) => process.stderr.write(`probe: ${String(e)}\n`));
}, Number(loopWait) * 1000);

setTimeout(() => {
  clearInterval(loop);
  void watcher.cancel().finally(() => client.close());
}, Number(runFor) * 1000);
