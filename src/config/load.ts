/**
 * Loading the daemon config: YAML file (optional) → PATRONI_* environment overrides (env wins, as in
 * Patroni 3.0.2 config.py `_build_environment_configuration`) → schema → one DaemonConfig.
 * Errors: one ConfigError whose one-line message names every bad key and why.
 * Keys we do not implement: warnings naming them, never silently dropped.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, errorMessage } from '../util/errors.js';
import type { DaemonConfig } from './types.js';
import { KNOWN_KEYS, daemonSchema, show, splitHostPort, toBool } from './schema.js';

type Obj = Record<string, unknown>;

export interface LoadedConfig {
  config: DaemonConfig;
  warnings: string[];
}

export function loadConfig(opts: { file?: string; text?: string; env?: NodeJS.ProcessEnv }): LoadedConfig {
  const raw = readRaw(opts);
  applyEnv(raw, opts.env ?? {});
  if ('etcd' in raw) {
    throw new ConfigError('etcd', 'pgwarden speaks etcd v3 only: rename the section to `etcd3:` (same hosts)');
  }
  const unsupported = unknownKeys(raw);
  const warnings = unsupported.map((k) => `${k}: not supported yet, ignored`);
  const parsed = daemonSchema.safeParse(raw, { reportInput: true });
  const problems: Problem[] = parsed.success ? [] : parsed.error.issues.map(describeIssue);
  if (raw.etcd3 === undefined && raw.kubernetes === undefined) {
    problems.push({ path: 'etcd3', msg: 'required: a store section (`etcd3:` with hosts, or `kubernetes:`)' });
  }
  if (!parsed.success || problems.length) throw toConfigError(problems);
  return normalise(parsed.data, unsupported, warnings);
}

function readRaw(opts: { file?: string; text?: string }): Obj {
  let text = opts.text;
  if (opts.file !== undefined) {
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError('', `cannot read config file ${opts.file}: ${errorMessage(e)}`);
    }
  }
  if (text === undefined || text.trim() === '') return {};
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError('', `${opts.file ?? 'config'} is not valid YAML: ${errorMessage(e).split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('', 'the config must be a YAML mapping');
  return doc as Obj;
}

function section(raw: Obj, name: string): Obj {
  const v = raw[name];
  if (v && typeof v === 'object' && !Array.isArray(v)) return v as Obj;
  const fresh: Obj = {};
  raw[name] = fresh;
  return fresh;
}

/** PATRONI_* variables, mapped the way Patroni 3.0.2 maps them. */
function applyEnv(raw: Obj, env: NodeJS.ProcessEnv): void {
  const used = new Set<string>();
  const get = (name: string): string | undefined => {
    const v = env[`PATRONI_${name}`];
    if (v !== undefined) used.add(`PATRONI_${name}`);
    return v === '' ? undefined : v;
  };
  for (const p of ['name', 'namespace', 'scope']) {
    const v = get(p.toUpperCase());
    if (v !== undefined) raw[p] = v;
  }
  const setSection = (sec: string, params: string[]) => {
    for (const p of params) {
      const v = get(`${sec}_${p}`.toUpperCase());
      if (v !== undefined) section(raw, sec)[p] = v;
    }
  };
  setSection('restapi', ['listen', 'connect_address', 'certfile', 'keyfile']);
  setSection('postgresql', ['listen', 'connect_address', 'config_dir', 'data_dir', 'pgpass', 'bin_dir']);
  const auth = (prefix: string): Obj => {
    const out: Obj = {};
    for (const p of ['username', 'password']) {
      const v = get(`${prefix}_${p}`.toUpperCase());
      if (v !== undefined) out[p] = v;
    }
    return out;
  };
  const rest = auth('restapi');
  if (Object.keys(rest).length) section(raw, 'restapi').authentication = { ...(section(raw, 'restapi').authentication as Obj), ...rest };
  for (const kind of ['replication', 'superuser', 'rewind']) {
    const a = auth(kind);
    if (!Object.keys(a).length) continue;
    const pgAuth = section(section(raw, 'postgresql'), 'authentication');
    pgAuth[kind] = { ...(pgAuth[kind] as Obj | undefined), ...a };
  }
  for (const [k, v] of Object.entries(env)) {
    const m =
      /^PATRONI_(ETCD3|KUBERNETES)_(HOSTS?|PORT|PROTOCOL|URL|PROXY|SRV|SRV_SUFFIX|NAMESPACE|LABELS|USE_ENDPOINTS|BYPASS_API_SERVICE|POD_IP|PORTS|SCOPE_LABEL|ROLE_LABEL|CONTEXT|CACERT|CERT|KEY|KEY_PASSWORD|VERIFY|TOKEN|RETRIABLE_HTTP_CODES)$/.exec(
        k,
      );
    if (!m || v === undefined) continue;
    used.add(k);
    if (v === '') continue;
    const dcs = m[1]!.toLowerCase();
    const key = m[2]!.toLowerCase();
    let value: unknown = v;
    if (['hosts', 'ports', 'retriable_http_codes'].includes(key)) value = parseList(v);
    else if (key === 'labels') value = parseDict(v);
    else if (key === 'port') value = Number.isInteger(Number(v)) ? Number(v) : v;
    else if (['use_endpoints', 'bypass_api_service', 'verify'].includes(key)) value = toBool(v) ?? v;
    section(raw, dcs)[key] = value;
  }
  const etcdAuth = auth('etcd3');
  if (Object.keys(etcdAuth).length) Object.assign(section(raw, 'etcd3'), etcdAuth);
  // PATRONI_<user>_PASSWORD / _OPTIONS: bootstrap users (whatever is left after the known names).
  for (const [k, v] of Object.entries(env)) {
    const m = /^PATRONI_(.+)_PASSWORD$/.exec(k);
    if (!m || used.has(k) || !v) continue;
    const users = section(section(raw, 'bootstrap'), 'users');
    const opts = env[`PATRONI_${m[1]}_OPTIONS`];
    users[m[1]!] = { password: v, ...(opts ? { options: parseList(opts) } : {}) };
  }
}

/** Patroni's _parse_list: "a,b" or "[a, b]" or YAML "- a". */
function parseList(v: string): unknown {
  const s = v.trim().startsWith('-') || v.includes('[') ? v : `[${v}]`;
  try {
    return parseYaml(s);
  } catch {
    return v;
  }
}

function parseDict(v: string): unknown {
  const s = v.trim().startsWith('{') ? v : `{${v}}`;
  try {
    return parseYaml(s);
  } catch {
    return v;
  }
}

/** Key paths present in `raw` that the schema does not know. */
function unknownKeys(raw: Obj): string[] {
  const out: string[] = [];
  const walk = (o: Obj, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (KNOWN_KEYS.some((p) => p.endsWith('.*') && (path === p.slice(0, -2) || path.startsWith(p.slice(0, -1))))) continue;
      if (!KNOWN_KEYS.includes(path)) {
        out.push(path);
        continue;
      }
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Obj, path);
    }
  };
  walk(raw, '');
  return out;
}

interface Problem {
  path: string;
  msg: string;
}

const KIND: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** One zod issue → `{ path, reason }` in our wording ("required", "expected a string, got 3"). */
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

function normalise(c: z.output<typeof daemonSchema>, unsupported: string[], warnings: string[]): LoadedConfig {
  const problems: Problem[] = [];
  const hosts = c.etcd3 ? [...new Set([...(c.etcd3.hosts ?? []), ...(c.etcd3.host ?? [])])] : [];
  if (c.etcd3 && hosts.length === 0) problems.push({ path: 'etcd3.hosts', msg: 'required: at least one "host:port"' });
  const connect = (listen: string, given: string | undefined, key: string): string => {
    if (given) return given;
    const hp = splitHostPort(listen)!;
    const host = hp.host.split(',')[0]!.trim();
    if (['', '*', '0.0.0.0', '::'].includes(host)) {
      problems.push({ path: key, msg: `required when listen is ${show(listen)} (other members need an address to reach this one)` });
      return listen;
    }
    const addr = `${host.includes(':') ? `[${host}]` : host}:${hp.port}`;
    warnings.push(`${key}: not set, using ${addr} from listen`);
    return addr;
  };
  const config: DaemonConfig = {
    scope: c.scope,
    name: c.name,
    namespace: c.namespace,
    restapi: { ...c.restapi, connect_address: connect(c.restapi.listen, c.restapi.connect_address, 'restapi.connect_address') },
    etcd3: c.etcd3 ? { hosts, protocol: c.etcd3.protocol, username: c.etcd3.username, password: c.etcd3.password } : undefined,
    kubernetes: c.kubernetes,
    bootstrap: c.bootstrap,
    postgresql: {
      ...c.postgresql,
      connect_address: connect(c.postgresql.listen, c.postgresql.connect_address, 'postgresql.connect_address'),
    },
    tags: c.tags,
    unsupported,
  };
  if (problems.length) throw toConfigError(problems);
  return { config, warnings };
}
