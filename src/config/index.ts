/** The config module's public API: daemon YAML loading (Patroni keys, PATRONI_* env) and dynamic config. */
export { loadConfig, type LoadedConfig } from './load.js';
export { effectiveDynamicConfig, mergeDynamicPatch, TIMING_FLOORS } from './dynamic.js';
export { daemonSchema, KNOWN_KEYS, patroniBool, splitHostPort, toBool, toNumber, type DaemonConfigInput } from './schema.js';
export { DYNAMIC_DEFAULTS, type Credentials, type DaemonConfig, type DynamicConfig, type PgParamValue, type Tags } from './types.js';
