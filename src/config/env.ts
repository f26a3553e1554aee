/**
 * PATRONI_* environment variables → a partial config object, mapped the way Patroni 3.0.2 maps them
 * (config.py `_build_environment_configuration`). The result is patched over the file's config
 * (env wins). Every variable Patroni would consume is consumed here too, even for sections we do not
 * implement (they then show up as "not supported yet" warnings), so that none of them is mistaken
 * for a bootstrap user by the PATRONI_<user>_PASSWORD rule at the end.
 */
import { parseYaml } from './yaml.js';
import { isObj, toBool, toInt, type Obj } from './values.js';

const PREFIX = 'PATRONI_';

/** Plain `PATRONI_<SECTION>_<KEY>` values, as strings (config.py `_set_section_values`). */
const SECTION_KEYS: Record<string, readonly string[]> = {
  restapi: [
    'listen', 'connect_address', 'certfile', 'keyfile', 'keyfile_password', 'cafile', 'ciphers', 'verify_client',
    'http_extra_headers', 'https_extra_headers', 'allowlist', 'allowlist_include_members', 'request_queue_size',
  ],
  ctl: ['insecure', 'cacert', 'certfile', 'keyfile', 'keyfile_password'],
  postgresql: ['listen', 'connect_address', 'proxy_address', 'config_dir', 'data_dir', 'pgpass', 'bin_dir'],
  log: ['level', 'traceback_level', 'format', 'dateformat', 'max_queue_size', 'dir', 'file_size', 'file_num', 'loggers'],
  raft: ['data_dir', 'self_addr', 'partner_addrs', 'password', 'bind_addr'],
};

/** Section keys whose text is parsed into another type (same lists as Patroni's). */
const PARSED_SECTION_KEYS: ReadonlyArray<readonly [section: string, key: string, kind: Kind]> = [
  ['restapi', 'allowlist_include_members', 'bool'],
  ['ctl', 'insecure', 'bool'],
  ['restapi', 'request_queue_size', 'int'],
  ['log', 'max_queue_size', 'int'],
  ['log', 'file_size', 'int'],
  ['log', 'file_num', 'int'],
  ['raft', 'partner_addrs', 'list'],
  ['restapi', 'allowlist', 'list'],
  ['restapi', 'http_extra_headers', 'dict'],
  ['restapi', 'https_extra_headers', 'dict'],
  ['log', 'loggers', 'dict'],
];

/** Old log variable names, used when the new one is not set (config.py `_fix_log_env`). */
const LEGACY_LOG: ReadonlyArray<readonly [key: string, oldName: string]> = [
  ['level', 'LOGLEVEL'],
  ['format', 'LOGFORMAT'],
  ['dateformat', 'LOG_DATEFMT'],
];

/** Connection keys of postgresql.authentication entries (config.py `_AUTH_ALLOWED_PARAMETERS`). */
const AUTH_KEYS = [
  'username', 'password', 'sslmode', 'sslcert', 'sslkey', 'sslpassword', 'sslrootcert', 'sslcrl', 'sslcrldir',
  'gssencmode', 'channel_binding',
] as const;

/**
 * The stores Patroni knows. Patroni maps `PATRONI_<ANY>_<SUFFIX>`; we only map these names so that
 * Kubernetes service variables (a Service named `patroni` injects PATRONI_SERVICE_HOST) do not turn
 * into config sections.
 */
const DCS_NAMES = ['CONSUL', 'ETCD', 'ETCD3', 'EXHIBITOR', 'KUBERNETES', 'RAFT', 'ZOOKEEPER'];

/** Store variable suffixes and how their text is read (config.py, the `PATRONI_(ETCD|CONSUL|…)` loop). */
const DCS_SUFFIX_KIND: Record<string, Kind> = {
  HOST: 'text', HOSTS: 'list', PORT: 'int', USE_PROXIES: 'bool', PROTOCOL: 'text', SRV: 'text', SRV_SUFFIX: 'text',
  URL: 'text', PROXY: 'text', CACERT: 'text', CERT: 'text', KEY: 'text', VERIFY: 'bool', TOKEN: 'text',
  CHECKS: 'list', DC: 'text', CONSISTENCY: 'text', REGISTER_SERVICE: 'bool', SERVICE_CHECK_INTERVAL: 'text',
  SERVICE_CHECK_TLS_SERVER_NAME: 'text', SERVICE_TAGS: 'list', NAMESPACE: 'text', CONTEXT: 'text',
  USE_ENDPOINTS: 'bool', SCOPE_LABEL: 'text', ROLE_LABEL: 'text', POD_IP: 'text', PORTS: 'list', LABELS: 'dict',
  BYPASS_API_SERVICE: 'bool', RETRIABLE_HTTP_CODES: 'list', KEY_PASSWORD: 'text', USE_SSL: 'bool', SET_ACLS: 'dict',
  // Patroni 4's Kubernetes role label values (kubernetes.leader_label_value etc.), which our schema reads.
  LEADER_LABEL_VALUE: 'text', FOLLOWER_LABEL_VALUE: 'text', STANDBY_LEADER_LABEL_VALUE: 'text', TMP_ROLE_LABEL: 'text',
  BOOTSTRAP_LABELS: 'dict',
};

type Kind = 'text' | 'bool' | 'int' | 'list' | 'dict';

/** Reads variables and remembers which it looked at (Patroni pops them from os.environ). */
interface EnvReader {
  /** The value of PATRONI_<name>, or undefined when unset or empty (Patroni skips empty values). */
  take(name: string): string | undefined;
  readonly used: Set<string>;
  readonly env: NodeJS.ProcessEnv;
}

function reader(env: NodeJS.ProcessEnv): EnvReader {
  const used = new Set<string>();
  return {
    env,
    used,
    take(name) {
      const key = PREFIX + name;
      if (!(key in env)) return undefined;
      used.add(key);
      return env[key] || undefined;
    },
  };
}

/**
 * The config that PATRONI_* variables describe. `base` (the file's config) is only consulted for
 * whether an `etcd3:`/`etcd:` section exists, so that PATRONI_ETCD3_USERNAME/PASSWORD go there.
 */
export function environmentConfig(env: NodeJS.ProcessEnv, base: Obj = {}): Obj {
  const r = reader(env);
  const out: Obj = {};
  for (const p of ['name', 'namespace', 'scope']) setIf(out, [p], r.take(p.toUpperCase()));
  readSections(r, out);
  readAuth(r, out);
  readDcs(r, out);
  readDcsAuth(r, out, base);
  readUsers(r, out);
  return out;
}

function readSections(r: EnvReader, out: Obj): void {
  for (const [key, oldName] of LEGACY_LOG) {
    const old = r.take(oldName);
    if (old !== undefined && !(`${PREFIX}LOG_${key.toUpperCase()}` in r.env)) setIf(out, ['log', key], old);
  }
  for (const [section, keys] of Object.entries(SECTION_KEYS)) {
    for (const key of keys) setIf(out, [section, key], r.take(`${section}_${key}`.toUpperCase()));
  }
  for (const [section, key, kind] of PARSED_SECTION_KEYS) {
    const sec = out[section];
    if (!isObj(sec) || typeof sec[key] !== 'string') continue;
    const value = parseAs(kind, sec[key]);
    if (value === null) delete sec[key];
    else sec[key] = value;
  }
}

function readAuth(r: EnvReader, out: Obj): void {
  for (const section of ['restapi', 'ctl']) {
    const auth = readCredentials(r, section, ['username', 'password']);
    if (auth) setIf(out, [section, 'authentication'], auth);
  }
  for (const kind of ['replication', 'superuser', 'rewind']) {
    const auth = readCredentials(r, kind, AUTH_KEYS);
    if (auth) setIf(out, ['postgresql', 'authentication', kind], auth);
  }
}

function readCredentials(r: EnvReader, prefix: string, keys: readonly string[]): Obj | undefined {
  const auth: Obj = {};
  for (const k of keys) setIf(auth, [k], r.take(`${prefix}_${k}`.toUpperCase()));
  return Object.keys(auth).length ? auth : undefined;
}

/** PATRONI_<DCS>_<SUFFIX>, e.g. PATRONI_ETCD3_HOSTS or PATRONI_KUBERNETES_LABELS. */
function readDcs(r: EnvReader, out: Obj): void {
  for (const name of DCS_NAMES) {
    for (const [suffix, kind] of Object.entries(DCS_SUFFIX_KIND)) {
      const raw = r.take(`${name}_${suffix}`);
      const value = raw === undefined ? null : parseAs(kind, raw);
      if (value !== null) setIf(out, [name.toLowerCase(), suffix.toLowerCase()], value);
    }
  }
}

/**
 * PATRONI_ETCD3_USERNAME/PASSWORD. Patroni reads them only when another PATRONI_ETCD3_* variable made
 * the section (else they become a bootstrap user named ETCD3); we also honour a section from the file.
 */
function readDcsAuth(r: EnvReader, out: Obj, base: Obj): void {
  for (const dcs of ['etcd', 'etcd3']) {
    if (!(dcs in out) && !(dcs in base)) continue;
    const auth = readCredentials(r, dcs, ['username', 'password']);
    if (auth) Object.assign(section(out, dcs), auth);
  }
}

/**
 * PATRONI_<user>_PASSWORD (and _OPTIONS): users created at bootstrap, for whatever variable no rule
 * above consumed. The user name keeps its case (`PATRONI_admin_PASSWORD` → user `admin`).
 */
function readUsers(r: EnvReader, out: Obj): void {
  for (const [key, password] of Object.entries(r.env)) {
    const m = /^PATRONI_(.+)_PASSWORD$/.exec(key);
    if (!m || r.used.has(key) || !password) continue;
    const options = r.env[`${PREFIX}${m[1]}_OPTIONS`];
    const parsed = options ? parseList(options) : null;
    setIf(out, ['bootstrap', 'users', m[1]!], { password, ...(parsed?.length ? { options: parsed } : {}) });
  }
}

/** Text → the kind's value; null when it does not parse (Patroni then drops the variable). */
function parseAs(kind: Kind, v: string): unknown {
  switch (kind) {
    case 'text':
      return v;
    case 'bool':
      return toBool(v);
    case 'int':
      return toInt(v);
    case 'list':
      return parseList(v);
    case 'dict':
      return parseDict(v);
  }
}

/** Patroni's `_parse_list`: "a,b", "[a, b]" or a YAML block list "- a\n- b". */
export function parseList(v: string): unknown[] | null {
  const text = v.trim().startsWith('-') || v.includes('[') ? v : `[${v}]`;
  const parsed = safeParse(text);
  return Array.isArray(parsed) ? parsed : null;
}

/** Patroni's `_parse_dict`: "a: 1, b: 2" or "{a: 1}". */
export function parseDict(v: string): Obj | null {
  const parsed = safeParse(v.trim().startsWith('{') ? v : `{${v}}`);
  return isObj(parsed) ? parsed : null;
}

function safeParse(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return null;
  }
}

function section(o: Obj, key: string): Obj {
  const v = o[key];
  if (isObj(v)) return v;
  const fresh: Obj = {};
  o[key] = fresh;
  return fresh;
}

function setIf(o: Obj, path: readonly string[], value: unknown): void {
  if (value === undefined) return;
  let cur = o;
  for (const k of path.slice(0, -1)) cur = section(cur, k);
  cur[path[path.length - 1]!] = value;
}
