/**
 * The store as `ctl` uses it: read the cluster, write the `config` key with CAS (edit-config/pause when
 * no member answers), write the `failover` key (switchover/failover when no member answers, as
 * patronictl's manual_failover: a plain put) and delete the whole cluster prefix (`remove`). Reads and
 * the CAS write go through the daemon's own adapter (Etcd3Store); the two writes it has no call for use
 * a plain etcd client. Every call is bounded by `retryTimeout`.
 */
import { Etcd3 } from 'etcd3';
import type { Etcd3Settings } from '../config/types.js';
import { KEYS, clusterPrefix, serializeFailover } from '../dcs/codec.js';
import { Etcd3Store, etcdCredentials } from '../dcs/etcd.js';
import type { Cluster } from '../dcs/types.js';
import { systemClock } from '../util/clock.js';
import { DcsError, errorMessage } from '../util/errors.js';
import { silentLogger } from '../util/log.js';

/** How ctl reaches etcd: the daemon's etcd3 settings. */
export type EtcdSettings = Etcd3Settings;

export interface CtlStore {
  load(): Promise<Cluster>;
  /** CAS on the config key's version (null: only if absent); false when someone changed it meanwhile. */
  setConfig(value: Record<string, unknown>, version: number | null): Promise<boolean>;
  /** Put the `failover` key unconditionally. */
  setFailover(value: { leader?: string; member?: string; scheduled_at?: string }): Promise<void>;
  /** Delete every key under /<namespace>/<scope>/. */
  deleteCluster(): Promise<void>;
  close(): Promise<void>;
}

export function openEtcdStore(o: { etcd: EtcdSettings; namespace: string; scope: string; retryTimeoutS: number }): CtlStore {
  const adapter = new Etcd3Store({
    ...o.etcd,
    namespace: o.namespace,
    scope: o.scope,
    // No member has an empty name: the adapter never takes one of the member keys for ours.
    name: '',
    ttl: 30,
    retryTimeout: o.retryTimeoutS,
    clock: systemClock,
    log: silentLogger(),
  });
  const prefix = clusterPrefix(o.namespace, o.scope);
  let raw: Etcd3 | null = null;
  const client = (): Etcd3 => {
    const proto = o.etcd.protocol ?? 'http';
    const hosts = o.etcd.hosts.map((h) => (h.includes('://') ? h : `${proto}://${h}`));
    const credentials = hosts.every((h) => h.startsWith('https://')) ? etcdCredentials(o.etcd) : undefined;
    raw ??= new Etcd3({
      hosts,
      ...(credentials ? { credentials } : {}),
      ...(o.etcd.username ? { auth: { username: o.etcd.username, password: o.etcd.password ?? '' } } : {}),
    });
    return raw;
  };
  const bounded = async <T>(what: string, p: Promise<T>): Promise<T> => {
    let t: NodeJS.Timeout | undefined;
    p.catch(() => undefined);
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          t = setTimeout(() => reject(new DcsError(`etcd ${what}: no answer within ${o.retryTimeoutS} s`)), o.retryTimeoutS * 1000);
        }),
      ]);
    } catch (e) {
      throw e instanceof DcsError ? e : new DcsError(`etcd ${what} failed: ${errorMessage(e)}`, { cause: e });
    } finally {
      clearTimeout(t);
    }
  };
  return {
    load: () => adapter.load(),
    setConfig: (value, version) => adapter.setConfig(value, version),
    async setFailover(value) {
      await bounded('put failover', client().put(prefix + KEYS.failover).value(serializeFailover(value)).exec());
    },
    async deleteCluster() {
      await bounded('delete', client().delete().prefix(prefix).exec());
    },
    async close() {
      await adapter.close();
      raw?.close();
    },
  };
}

/**
 * The Kubernetes store as ctl uses it: reads, CAS config and the failover object through the daemon's
 * adapter (as a client that is no member), and `remove` deletes every object of the cluster's kind under
 * its labels (Patroni's delete_cluster). The client library is loaded only here.
 */
export async function openKubernetesStore(o: { kubernetes: Record<string, unknown>; scope: string; retryTimeoutS: number }): Promise<CtlStore> {
  const { connectKubernetesStore } = await import('../dcs/kubernetes.js');
  // No member has an empty name: the adapter never takes a pod for ours.
  const adapter = await connectKubernetesStore(o.kubernetes, { scope: o.scope, name: '', ttl: 30, retryTimeout: o.retryTimeoutS, clock: systemClock, log: silentLogger() });
  return {
    load: () => adapter.load(),
    setConfig: (value, version) => adapter.setConfig(value, version),
    async setFailover(value) {
      // patronictl's manual_failover: whatever is there is replaced.
      const current = (await adapter.load()).failover;
      if (!(await adapter.setFailover(value, current ? current.version : null))) throw new DcsError('kubernetes: the failover object changed meanwhile; try again');
    },
    deleteCluster: () => adapter.deleteCluster(),
    close: () => adapter.close(),
  };
}
