/**
 * One DaemonConfig builder for tests that need a config object without a YAML file: sane defaults for
 * a member `name` whose PostgreSQL listens on `port`, overridden per section.
 */
import type { DaemonConfig } from '../../src/config/types.js';

export interface TestConfigOptions {
  name: string;
  port: number;
  dataDir: string;
  scope?: string;
  restPort?: number;
  bootstrap?: Partial<DaemonConfig['bootstrap']>;
  postgresql?: Partial<DaemonConfig['postgresql']>;
  etcd3?: DaemonConfig['etcd3'];
}

export function testDaemonConfig(o: TestConfigOptions): DaemonConfig {
  const rest = `127.0.0.1:${o.restPort ?? 8008}`;
  return {
    scope: o.scope ?? 'demo',
    name: o.name,
    namespace: '/service/',
    restapi: { listen: rest, connect_address: rest },
    ...(o.etcd3 ? { etcd3: o.etcd3 } : {}),
    bootstrap: { dcs: {}, initdb: [], ...o.bootstrap },
    postgresql: {
      listen: `127.0.0.1:${o.port}`,
      connect_address: `127.0.0.1:${o.port}`,
      data_dir: o.dataDir,
      authentication: { superuser: { username: 'postgres' }, replication: { username: 'rep' } },
      parameters: {},
      remove_data_directory_on_rewind_failure: false,
      remove_data_directory_on_diverged_timelines: false,
      create_replica_methods: ['basebackup'],
      ...o.postgresql,
    },
    tags: {},
    unsupported: [],
  };
}
