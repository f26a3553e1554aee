import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import type { Clock } from '../util/clock.js';
import { ExitError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { Etcd3Store } from './etcd.js';
import type { DcsStore } from './types.js';

/** The store the config names: `etcd3:` or `kubernetes:` (its client library is loaded only then). */
export async function createStore(config: DaemonConfig, dynamic: DynamicConfig, clock: Clock, log: Logger): Promise<DcsStore> {
  if (config.etcd3) {
    return new Etcd3Store({
      hosts: config.etcd3.hosts,
      protocol: config.etcd3.protocol,
      username: config.etcd3.username,
      password: config.etcd3.password,
      cacert: config.etcd3.cacert,
      cert: config.etcd3.cert,
      key: config.etcd3.key,
      namespace: config.namespace,
      scope: config.scope,
      name: config.name,
      ttl: dynamic.ttl,
      retryTimeout: dynamic.retry_timeout,
      clock,
      log: log.child({ component: 'etcd3' }),
    });
  }
  if (config.kubernetes) {
    const { connectKubernetesStore } = await import('./kubernetes.js');
    return connectKubernetesStore(config.kubernetes, {
      scope: config.scope,
      name: config.name,
      ttl: dynamic.ttl,
      retryTimeout: dynamic.retry_timeout,
      clock,
      log: log.child({ component: 'kubernetes' }),
    });
  }
  throw new ExitError('no supported store configured: add an `etcd3:` or a `kubernetes:` section', 2);
}
