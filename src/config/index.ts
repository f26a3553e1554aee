/** The config module's public API: daemon YAML loading (Patroni keys, PATRONI_* env) and dynamic config. */
export { loadConfig, type LoadedConfig, type LoadOptions } from './load.js';
export {
  effectiveDynamicConfig,
  fitTtlRule,
  interpretDynamic,
  mergeDynamicPatch,
  TIMING_FLOORS,
  type DynamicProblem,
  type DynamicReading,
} from './dynamic.js';
export { environmentConfig } from './env.js';
export { daemonSchema, patroniBool, ETCD_DEFAULT_PORT, type DaemonConfigInput } from './schema.js';
export { joinHostPort, splitHostPort, toBool, toInt, toNumber } from './values.js';
export { parseYaml } from './yaml.js';
export { DYNAMIC_DEFAULTS, type Credentials, type DaemonConfig, type DynamicConfig, type PgParamValue, type Tags } from './types.js';
