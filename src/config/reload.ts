/**
 * SIGHUP / POST /reload: which settings of a re-read config file take effect in the running daemon,
 * and which need the daemon restarted (as in Patroni, identity, addresses and the store connection
 * are read once at start). Pure: the caller owns the objects.
 */
import type { DaemonConfig } from './types.js';

type Section = 'top' | 'restapi' | 'postgresql' | 'bootstrap';

/** Applied in place: every component reads these through the shared config object. */
const LIVE: ReadonlyArray<[Section, string]> = [
  ['top', 'tags'],
  ['restapi', 'authentication'],
  // TLS: the REST API server is rebuilt with them (ApiServer.reloadTls), peers' requests read them per call.
  ['restapi', 'certfile'],
  ['restapi', 'keyfile'],
  ['restapi', 'keyfile_password'],
  ['restapi', 'cafile'],
  ['restapi', 'ciphers'],
  ['restapi', 'verify_client'],
  ['top', 'ctl'],
  ['postgresql', 'parameters'],
  ['postgresql', 'pg_hba'],
  ['postgresql', 'authentication'],
  ['postgresql', 'use_pg_rewind'],
  ['postgresql', 'remove_data_directory_on_rewind_failure'],
  ['postgresql', 'remove_data_directory_on_diverged_timelines'],
  ['postgresql', 'create_replica_methods'],
  ['postgresql', 'basebackup'],
  ['postgresql', 'pgpass'],
  ['postgresql', 'callbacks'],
  ['postgresql', 'pre_promote'],
  ['bootstrap', 'dcs'],
];

/** Read once at start: a change is reported, not applied. */
const AT_START: ReadonlyArray<[Section, string]> = [
  ['top', 'name'],
  ['top', 'scope'],
  ['top', 'namespace'],
  ['top', 'etcd3'],
  ['top', 'kubernetes'],
  ['restapi', 'listen'],
  ['restapi', 'connect_address'],
  ['top', 'log'],
  ['postgresql', 'listen'],
  ['postgresql', 'connect_address'],
  ['postgresql', 'data_dir'],
  ['postgresql', 'bin_dir'],
  ['postgresql', 'config_dir'],
];

function holder(c: DaemonConfig, s: Section): Record<string, unknown> {
  return (s === 'top' ? c : c[s]) as unknown as Record<string, unknown>;
}

function keyName(s: Section, k: string): string {
  return s === 'top' ? k : `${s}.${k}`;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Copy the live settings of `next` into `current`; returns what changed and what was left for a restart. */
export function applyReload(current: DaemonConfig, next: DaemonConfig): { applied: string[]; needsRestart: string[] } {
  const applied: string[] = [];
  for (const [s, k] of LIVE) {
    const from = holder(next, s);
    const to = holder(current, s);
    if (same(to[k], from[k])) continue;
    if (from[k] === undefined) delete to[k];
    else to[k] = structuredClone(from[k]);
    applied.push(keyName(s, k));
  }
  const needsRestart = AT_START.filter(([s, k]) => !same(holder(current, s)[k], holder(next, s)[k])).map(([s, k]) => keyName(s, k));
  return { applied, needsRestart };
}
