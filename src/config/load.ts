/**
 * Loading the daemon config, the way Patroni 3.0.2 does (config.py `Config.__init__`):
 *   YAML file, or every *.yml/*.yaml of a directory merged in name order (or, with neither,
 *   PATRONI_CONFIGURATION, or else the environment alone)
 *   → PATRONI_* overrides patched over it (env wins)
 *   → the schema → normalisation → one DaemonConfig with every default filled in.
 * Errors: one ConfigError whose one-line message names every bad key and why.
 * Keys we do not implement: warnings naming them, never silently dropped, never fatal.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type * as z from 'zod/mini';
import { ConfigError, errorMessage } from '../util/errors.js';
import { INTERPRETED_DYNAMIC_KEYS, INTERPRETED_DYNAMIC_PG_KEYS, interpretDynamic } from './dynamic.js';
import { environmentConfig } from './env.js';
import { unknownKeyPaths } from './keys.js';
import { daemonSchema, type DaemonConfigParsed } from './schema.js';
import type { DaemonConfig } from './types.js';
import { isObj, isTruthy, joinHostPort, show, splitHostPort, type Obj } from './values.js';
import { parseYaml } from './yaml.js';

export interface LoadedConfig {
  config: DaemonConfig;
  warnings: string[];
}

export interface LoadOptions {
  /** A YAML file, or a directory of them. */
  file?: string;
  /** YAML text (used when there is no `file`). */
  text?: string;
  /** Where PATRONI_* variables come from; nothing is read from process.env unless passed here. */
  env?: NodeJS.ProcessEnv;
}

interface Problem {
  path: string;
  msg: string;
}

export function loadConfig(opts: LoadOptions): LoadedConfig {
  const env = opts.env ?? {};
  const raw = readSources(opts, env);
  const methods = replicaMethodSections(raw);
  const custom = bootstrapMethodSection(raw);
  const unsupported = unknownKeyPaths(raw, daemonSchema).filter((k) => k !== 'etcd' && !methods.keys.includes(k) && k !== custom.key);
  const parsed = daemonSchema.safeParse(raw, { reportInput: true });
  const problems = [...(parsed.success ? [] : parsed.error.issues.map(describeIssue)), ...storeSectionProblems(raw), ...methods.problems, ...custom.problems];
  if (!parsed.success || problems.length) throw toConfigError(problems);
  const bootstrapNotes = bootstrapDcsNotes(parsed.data.bootstrap.dcs);
  unsupported.push(...bootstrapNotes.unsupported);
  const { config, notes } = normalise(parsed.data, unsupported);
  if (Object.keys(methods.sections).length) config.postgresql.replica_methods = methods.sections;
  if (custom.section) config.bootstrap.method_config = custom.section;
  const warnings = [
    ...unsupported.map((k) => `${k}: ${unsupportedReason(k)}`),
    ...storeWarnings(raw),
    ...localParameterWarnings(parsed.data.postgresql.parameters),
    ...bootstrapNotes.adjustments,
    ...notes,
  ];
  return { config, warnings };
}

// ---------------------------------------------------------------------------------------------
// sources

/** The raw config object: file (or directory, or PATRONI_CONFIGURATION, or nothing) with env patched over. */
function readSources(opts: LoadOptions, env: NodeJS.ProcessEnv): Obj {
  if (opts.file === undefined && opts.text === undefined && env.PATRONI_CONFIGURATION) {
    // Patroni takes such a config as it is: no PATRONI_* overrides on top (config.py line "config_env").
    return parseDocument(env.PATRONI_CONFIGURATION, 'PATRONI_CONFIGURATION');
  }
  const base = opts.file !== undefined ? readPath(opts.file) : parseDocument(opts.text ?? '', 'config');
  return patchConfig(base, environmentConfig(env, base));
}

function readPath(path: string): Obj {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((f) => /\.ya?ml$/.test(f) && statSync(join(path, f)).isFile())
          .sort()
          .map((f) => join(path, f))
      : [path];
  } catch (e) {
    throw new ConfigError('', `cannot read config file ${path}: ${errorMessage(e)}`);
  }
  return files.reduce((acc, f) => patchConfig(acc, parseDocument(readFile(f), f)), {} as Obj);
}

function readFile(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch (e) {
    throw new ConfigError('', `cannot read config file ${f}: ${errorMessage(e)}`);
  }
}

function parseDocument(text: string, name: string): Obj {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError('', `${name} is not valid YAML: ${errorMessage(e).split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isObj(doc)) throw new ConfigError('', `${name} must be a YAML mapping of keys, got ${show(doc)}`);
  return doc;
}

/**
 * Patroni's utils.py `patch_config`: mappings merge recursively, `null` deletes, anything else
 * replaces. Returns a new object.
 */
function patchConfig(config: Obj, patch: Obj): Obj {
  const out: Obj = { ...config };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObj(v) && isObj(out[k])) out[k] = patchConfig(out[k], v);
    else out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// store section

/** A store is required; etcd v2 is refused outright, since pointing it at our v3 keys would split the cluster. */
function storeSectionProblems(raw: Obj): Problem[] {
  const problems: Problem[] = [];
  if ('etcd' in raw) {
    problems.push({
      path: 'etcd',
      msg: 'pgwarden speaks etcd v3 only: rename the section to `etcd3:` (and PATRONI_ETCD_* variables to PATRONI_ETCD3_*)',
    });
  } else if (raw.etcd3 === undefined && raw.kubernetes === undefined) {
    const others = ['consul', 'zookeeper', 'exhibitor', 'raft'].filter((k) => k in raw);
    const hint = others.length ? ` (${others.join(', ')} is not supported)` : '';
    problems.push({ path: 'etcd3', msg: `required: a store section, \`etcd3:\` with hosts or \`kubernetes:\`${hint}` });
  }
  return problems;
}

/** Settings that are valid but have no effect, which the user would otherwise never learn. */
function storeWarnings(raw: Obj): string[] {
  const out: string[] = [];
  const etcd3 = isObj(raw.etcd3) ? raw.etcd3 : null;
  if (etcd3 && 'url' in etcd3 && ('hosts' in etcd3 || 'host' in etcd3)) {
    out.push('etcd3.hosts: ignored because etcd3.url is set (Patroni gives url precedence)');
  } else if (etcd3 && 'hosts' in etcd3 && 'host' in etcd3) {
    out.push('etcd3.host: ignored because etcd3.hosts is set (Patroni gives hosts precedence)');
  }
  if (etcd3 && raw.kubernetes !== undefined) out.push('kubernetes: ignored, the store is etcd3 (both sections are set)');
  return out;
}

// ---------------------------------------------------------------------------------------------
// warnings

/**
 * Patroni's custom replica methods: `postgresql.<method>` for each name in create_replica_methods
 * (other than basebackup, whose options are postgresql.basebackup) — a mapping of its options.
 */
function replicaMethodSections(raw: unknown): { sections: Record<string, Record<string, unknown>>; keys: string[]; problems: Problem[] } {
  const out = { sections: {} as Record<string, Record<string, unknown>>, keys: [] as string[], problems: [] as Problem[] };
  const pgRaw = raw && typeof raw === 'object' ? (raw as Obj).postgresql : undefined;
  if (!pgRaw || typeof pgRaw !== 'object' || Array.isArray(pgRaw)) return out;
  const pgObj = pgRaw as Obj;
  const list = pgObj.create_replica_methods;
  const names = Array.isArray(list) ? list.map(String) : typeof list === 'string' ? list.split(',').map((s) => s.trim()) : [];
  for (const name of names) {
    if (name === 'basebackup' || !(name in pgObj)) continue;
    const v = pgObj[name];
    out.keys.push(`postgresql.${name}`);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      out.problems.push({ path: `postgresql.${name}`, msg: 'expected a mapping of replica method options (command, no_leader, keep_data, …)' });
      continue;
    }
    const command = (v as Obj).command;
    if (command !== undefined && typeof command !== 'string') out.problems.push({ path: `postgresql.${name}.command`, msg: 'expected a string' });
    out.sections[name] = { ...(v as Obj) };
  }
  return out;
}

/** Patroni's custom bootstrap: `bootstrap.method: <name>` and the `bootstrap.<name>` section with its command. */
function bootstrapMethodSection(raw: unknown): { key: string | null; section: DaemonConfig['bootstrap']['method_config'] | null; problems: Problem[] } {
  const b = isObj(raw) && isObj(raw.bootstrap) ? raw.bootstrap : null;
  const method = b?.method;
  if (!b || typeof method !== 'string' || method === 'initdb') return { key: null, section: null, problems: [] };
  const key = `bootstrap.${method}`;
  const s = b[method];
  if (!isObj(s)) return { key, section: null, problems: [{ path: key, msg: `bootstrap.method is ${show(method)}: expected a mapping with its command` }] };
  const problems: Problem[] = [];
  if (typeof s.command !== 'string' || !s.command.trim()) problems.push({ path: `${key}.command`, msg: 'required: the command that creates the data directory' });
  if (s.recovery_conf !== undefined && !isObj(s.recovery_conf)) problems.push({ path: `${key}.recovery_conf`, msg: 'expected a mapping of recovery parameters' });
  const section = {
    command: String(s.command ?? ''),
    no_params: isTruthy(s.no_params),
    keep_existing_recovery_conf: isTruthy(s.keep_existing_recovery_conf),
    ...(isObj(s.recovery_conf) ? { recovery_conf: s.recovery_conf as Record<string, string | number | boolean> } : {}),
  };
  return { key, section, problems };
}

function unsupportedReason(path: string): string {
  return path.startsWith('bootstrap.dcs.') ? 'not supported yet, kept in the stored config but ignored' : 'not supported yet, ignored';
}

/** bootstrap.dcs: keys the daemon does not interpret, and timing values it had to adjust. */
function bootstrapDcsNotes(dcs: Obj): { unsupported: string[]; adjustments: string[] } {
  const unsupported = Object.keys(dcs)
    .filter((k) => !INTERPRETED_DYNAMIC_KEYS.includes(k))
    .map((k) => `bootstrap.dcs.${k}`);
  if (isObj(dcs.postgresql)) {
    for (const k of Object.keys(dcs.postgresql)) {
      if (!INTERPRETED_DYNAMIC_PG_KEYS.includes(k)) unsupported.push(`bootstrap.dcs.postgresql.${k}`);
    }
  }
  const adjustments = interpretDynamic(dcs).adjustments.map((a) => `bootstrap.dcs.${a}`);
  return { unsupported, adjustments };
}

/**
 * Parameters Patroni never takes from the local `postgresql.parameters` (postgresql/config.py
 * `CMDLINE_OPTIONS`, dropped by config.py `_process_postgresql_parameters(is_local=True)`): they must be
 * equal on every member, or are derived from other keys.
 */
const NOT_LOCAL_PARAMETERS: Record<string, string> = {
  listen_addresses: 'it comes from postgresql.listen',
  port: 'it comes from postgresql.listen',
  cluster_name: 'it comes from scope',
  hot_standby: 'it is always on',
  wal_log_hints: 'it is always on',
  ...Object.fromEntries(
    [
      'wal_level', 'max_connections', 'max_wal_senders', 'wal_keep_segments', 'wal_keep_size', 'max_prepared_transactions',
      'max_locks_per_transaction', 'track_commit_timestamp', 'max_replication_slots', 'max_worker_processes',
    ].map((p) => [p, 'it must be the same on every member: set it in bootstrap.dcs.postgresql.parameters or with PATCH /config']),
  ),
};

function localParameterWarnings(params: Record<string, unknown>): string[] {
  return Object.keys(params)
    .filter((k) => NOT_LOCAL_PARAMETERS[k.toLowerCase()] !== undefined)
    .map((k) => `postgresql.parameters.${k}: ignored here, ${NOT_LOCAL_PARAMETERS[k.toLowerCase()]}`);
}

// ---------------------------------------------------------------------------------------------
// errors

const KIND: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** One zod issue → `{ path, msg }` in our wording ("required", "expected a string, got 3"). */
function describeIssue(i: z.core.$ZodIssue): Problem {
  const path = i.path.map(String).join('.');
  const input = (i as { input?: unknown }).input;
  if (i.code === 'invalid_type') {
    if (input === undefined) return { path, msg: 'required' };
    if (/^(expected|required)/.test(i.message)) return { path, msg: i.message };
    return { path, msg: `expected ${KIND[i.expected] ?? i.expected}, got ${show(input)}` };
  }
  if (i.code === 'invalid_value' && !/^expected/.test(i.message)) {
    return { path, msg: `expected one of ${i.values.map((v) => show(v)).join(', ')}, got ${show(input)}` };
  }
  return { path, msg: i.message };
}

/** All problems in one line; the first one's key is the error's `path`. */
function toConfigError(problems: Problem[]): ConfigError {
  const first = problems[0] ?? { path: '', msg: 'invalid configuration' };
  const e = new ConfigError(first.path, first.msg);
  if (problems.length > 1) e.message = problems.map((p) => (p.path ? `${p.path}: ${p.msg}` : p.msg)).join('; ');
  return e;
}

// ---------------------------------------------------------------------------------------------
// normalisation

/**
 * connect_address may be left out when listen names one concrete host: it is what other members
 * and clients dial, so a wildcard cannot stand in for it (Patroni requires it outright).
 * Null when listen names no single concrete host.
 */
export function connectAddressFromListen(listen: string): string | null {
  const hp = splitHostPort(listen);
  const host = hp?.host.split(',')[0]!.trim() ?? '';
  if (!hp || ['', '*', '0.0.0.0', '::'].includes(host)) return null;
  return joinHostPort(host, hp.port);
}

/** The parsed config as a DaemonConfig; `notes` are warnings about defaults it had to derive. */
function normalise(c: DaemonConfigParsed, unsupported: string[]): { config: DaemonConfig; notes: string[] } {
  const notes: string[] = [];
  const connectProblems: Problem[] = [];
  const connect = (listen: string, given: string | undefined, key: string): string => {
    if (given) return given;
    const addr = connectAddressFromListen(listen);
    if (addr) notes.push(`${key}: not set, using ${addr} from listen`);
    else connectProblems.push({ path: key, msg: `required when listen is ${show(listen)} (other members need an address to reach this one)` });
    return addr ?? listen;
  };
  const config: DaemonConfig = {
    scope: c.scope,
    name: c.name,
    namespace: c.namespace,
    restapi: { ...c.restapi, connect_address: connect(c.restapi.listen, c.restapi.connect_address, 'restapi.connect_address') },
    ...(c.ctl ? { ctl: c.ctl } : {}),
    ...(c.log ? { log: c.log } : {}),
    etcd3: c.etcd3,
    kubernetes: c.kubernetes,
    bootstrap: c.bootstrap,
    postgresql: {
      ...c.postgresql,
      connect_address: connect(c.postgresql.listen, c.postgresql.connect_address, 'postgresql.connect_address'),
    },
    tags: c.tags,
    ...(c.watchdog ? { watchdog: c.watchdog } : {}),
    unsupported,
  };
  if (connectProblems.length) throw toConfigError(connectProblems);
  return { config, notes };
}
