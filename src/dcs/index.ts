import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import type { Clock } from '../util/clock.js';
import { ExitError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { Etcd3Store } from './etcd.js';
import type { DcsStore } from './types.js';

/** The store the config names: `etcd3:` today, `kubernetes:` next. */
export function createStore(config: DaemonConfig, dynamic: DynamicConfig, clock: Clock, log: Logger): DcsStore {
  if (config.etcd3) {
    return new Etcd3Store({
      hosts: config.etcd3.hosts,
      protocol: config.etcd3.protocol,
      username: config.etcd3.username,
      password: config.etcd3.password,
      namespace: config.namespace,
      scope: config.scope,
      name: config.name,
      ttl: dynamic.ttl,
      retryTimeout: dynamic.retry_timeout,
      clock,
      log: log.child({ component: 'etcd3' }),
    });
  }
  throw new ExitError('no supported store configured: add an `etcd3:` section (the Kubernetes store is not available yet)', 2);
}
