/**
 * The daemon's configuration, in Patroni's YAML key names (snake_case on purpose: these are the
 * keys users write, and keeping them avoids a translation layer). `loadConfig` (config/load.ts)
 * produces a `DaemonConfig` with every default filled in.
 */

export interface Credentials {
  username: string;
  password?: string;
  /** libpq sslmode etc. may follow later; unknown keys are kept here. */
  [k: string]: string | undefined;
}

export interface Tags {
  nofailover?: boolean;
  noloadbalance?: boolean;
  clonefrom?: boolean;
  replicatefrom?: string;
  nosync?: boolean;
  /** Patroni keeps unknown tags and publishes them as they are. */
  [k: string]: unknown;
}

export type PgParamValue = string | number | boolean;

/** Dynamic settings: from `bootstrap.dcs` the first time, then from the store's `config` key. */
export interface DynamicConfig {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
  maximum_lag_on_failover: number;
  primary_start_timeout: number;
  primary_stop_timeout: number;
  synchronous_mode: boolean | 'quorum';
  synchronous_mode_strict: boolean;
  synchronous_node_count: number;
  pause: boolean;
  check_timeline: boolean;
  max_timelines_history: number;
  /** Patroni 3.0 failsafe mode: a primary that cannot reach the store keeps running while every member acknowledges it. */
  failsafe_mode: boolean;
  postgresql: {
    use_pg_rewind: boolean;
    use_slots: boolean;
    parameters: Record<string, PgParamValue>;
    pg_hba?: string[];
  };
  /** Everything as stored, including keys we do not interpret yet (kept on rewrite). */
  raw: Record<string, unknown>;
}

export interface DaemonConfig {
  scope: string;
  name: string;
  /** Store prefix, Patroni's `namespace`, default `/service/`. */
  namespace: string;
  restapi: {
    listen: string;
    connect_address: string;
    authentication?: { username: string; password: string };
    certfile?: string;
    keyfile?: string;
    keyfile_password?: string;
    cafile?: string;
    ciphers?: string;
    verify_client?: 'none' | 'optional' | 'required';
  };
  /** Requests to members' REST APIs (Patroni's PatroniRequest): each key falls back to its restapi twin. */
  ctl?: {
    insecure?: boolean;
    cacert?: string;
    certfile?: string;
    keyfile?: string;
    keyfile_password?: string;
    authentication?: { username: string; password: string };
  };
  log?: { level?: string };
  etcd3?: Etcd3Settings;
  kubernetes?: Record<string, unknown>;
  /** Patroni's `watchdog:` section as given (src/ha/watchdog.ts reads it). */
  watchdog?: Record<string, unknown>;
  bootstrap: {
    /** The raw `bootstrap.dcs` section: written to the store's `config` key by the member that initializes. */
    dcs: Record<string, unknown>;
    /** initdb options: `- encoding: UTF8` or `- data-checksums`. */
    initdb: Array<string | Record<string, string>>;
    pg_hba?: string[];
    users?: Record<string, { password?: string; options?: string[] }>;
    /** Run after initdb and the roles, with a connection string; non-zero fails the bootstrap. */
    post_bootstrap?: string;
    post_init?: string;
    /** Custom bootstrap (Patroni): run `bootstrap.<method>.command` instead of initdb. */
    method?: string;
    /** The `bootstrap.<method>` section named by `method`. */
    method_config?: { command: string; no_params?: boolean; keep_existing_recovery_conf?: boolean; recovery_conf?: Record<string, string | number | boolean> };
  };
  postgresql: {
    listen: string;
    connect_address: string;
    data_dir: string;
    bin_dir?: string;
    config_dir?: string;
    pgpass?: string;
    authentication: {
      superuser: Credentials;
      replication: Credentials;
      rewind?: Credentials;
    };
    /** Local parameters: override the dynamic ones (Patroni semantics). */
    parameters: Record<string, PgParamValue>;
    pg_hba?: string[];
    use_pg_rewind?: boolean;
    remove_data_directory_on_rewind_failure: boolean;
    remove_data_directory_on_diverged_timelines: boolean;
    create_replica_methods: string[];
    basebackup?: Array<string | Record<string, string>> | Record<string, string>;
    callbacks?: Partial<Record<'on_start' | 'on_stop' | 'on_restart' | 'on_reload' | 'on_role_change', string>>;
    /** Options of the custom replica methods named in create_replica_methods (`postgresql.<method>`). */
    replica_methods?: Record<string, Record<string, unknown>>;
    pre_promote?: string;
  };
  tags: Tags;
  /** Keys present in the file that we read but do not act on yet (reported as warnings at load). */
  unsupported: string[];
}

/** Defaults as Patroni 3.0 documents them (config.py __DEFAULT_CONFIG). */
export const DYNAMIC_DEFAULTS = {
  ttl: 30,
  loop_wait: 10,
  retry_timeout: 10,
  maximum_lag_on_failover: 1048576,
  primary_start_timeout: 300,
  primary_stop_timeout: 0,
  synchronous_mode: false,
  synchronous_mode_strict: false,
  synchronous_node_count: 1,
  pause: false,
  check_timeline: false,
  max_timelines_history: 0,
  failsafe_mode: false,
} as const;

/** How to reach etcd: one list of "host:port", credentials and TLS files (the daemon's and ctl's). */
export interface Etcd3Settings {
  hosts: string[];
  protocol?: 'http' | 'https';
  username?: string;
  password?: string;
  /** TLS: CA file to verify etcd, our client certificate and key (the key may be inside the cert file). */
  cacert?: string;
  cert?: string;
  key?: string;
}
