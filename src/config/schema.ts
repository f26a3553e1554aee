/**
 * The daemon config schema: the Patroni 3.0.2 YAML keys we implement (DESIGN.md §3), with the
 * required keys, types and defaults of Patroni's validator.py and config.py. Parsed once at start-up;
 * every problem is reported with its key path (load.ts turns zod issues into one line). Keys outside
 * this schema are not errors but "not supported yet" warnings (keys.ts walks the schema for them).
 *
 * Values are lenient where Patroni is: booleans as on/off/yes/no strings, numbers as strings,
 * passwords that YAML read as numbers.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { interpretDynamic } from './dynamic.js';
import { joinHostPort, parseWatchdogMode, show, splitHostPort, toBool, toInt, validPort } from './values.js';

type Ctx = z.core.$RefinementCtx;

/** The wording every type error uses: "required" when absent, else what was expected and what came. */
function expected(what: string) {
  return (i: { input?: unknown }) => (i.input === undefined ? 'required' : `expected ${what}, got ${show(i.input)}`);
}

const str = z.string({ error: expected('a string') });
const nonEmpty = str.min(1, { error: 'must not be empty' });
/** Secrets and names that YAML may have read as numbers (`password: 1234`): Patroni formats them as text. */
const text = z.union([z.string(), z.number()], { error: expected('a string') }).transform(String);
const stringList = z.array(str, { error: expected('a list of strings') });

/** Patroni's parse_bool (utils.py): true/false, on/off, yes/no, 1/0, in any case. */
export const patroniBool = z.unknown().transform((v, ctx) => {
  const b = toBool(v);
  if (b === null) ctx.addIssue({ code: 'custom', message: expected('a boolean')({ input: v }) });
  return b ?? false;
});

const integer = z.unknown().transform((v, ctx) => {
  const n = typeof v === 'boolean' ? null : toInt(v);
  if (n === null) ctx.addIssue({ code: 'custom', message: expected('an integer')({ input: v }) });
  return n ?? 0;
});

const port = integer.refine(validPort, { error: (i) => `port must be from 1 to 65535, got ${show(i.input)}` });

/**
 * "host:port" (validator.py `validate_host_port`). `multi` allows "h1,h2:port" and "*:port", as
 * postgresql.listen does (it becomes listen_addresses).
 */
function hostPort(multi: boolean) {
  return z.unknown().transform((v, ctx) => {
    if (typeof v !== 'string' && typeof v !== 'number') {
      ctx.addIssue({ code: 'custom', message: expected('"host:port"')({ input: v }) });
      return '';
    }
    const s = String(v).trim();
    const hp = splitHostPort(s);
    if (!hp || !validHosts(hp.host, multi)) {
      ctx.addIssue({ code: 'custom', message: `expected "host:port", got ${show(v)}` });
    } else if (!validPort(hp.port)) {
      ctx.addIssue({ code: 'custom', message: `port must be from 1 to 65535, got ${show(v)}` });
    }
    return s;
  });
}

/**
 * An address other members and clients connect to: a host:port whose host is not a wildcard (Patroni's
 * validator refuses "*", "0.0.0.0" too; loopback stays allowed here, for clusters on one machine).
 */
function connectAddress() {
  return hostPort(false).superRefine((s, ctx) => {
    const host = splitHostPort(s)?.host;
    if (host === '*' || host === '0.0.0.0' || host === '::') {
      ctx.addIssue({ code: 'custom', message: `must be an address others can connect to, not the wildcard ${show(host)} (that is for listen)` });
    }
  });
}

function validHosts(hostPart: string, multi: boolean): boolean {
  const hosts = multi ? hostPart.split(',').map((h) => h.trim()) : [hostPart];
  if (hosts.length > 1 && hosts.includes('*')) return false; // validator.py: "expecting '*' alone"
  return hosts.every(validHost);
}

/** A host name or address; one with ':' must be an IPv6 address (Patroni splits at the last ':'). */
function validHost(h: string): boolean {
  if (h === '' || /[\s,/]/.test(h)) return false;
  return !h.includes(':') || isIP(h) === 6;
}

/** A scalar written into a config file of another program (initdb options, labels): kept as text. */
const scalarText = z
  .union([z.string(), z.number(), z.boolean()], { error: expected('a string, number or boolean') })
  .transform(String);

const pgParam = z.union([z.string(), z.number(), z.boolean()], { error: expected('a string, number or boolean') });

/** initdb / pg_basebackup options: `- data-checksums` or `- encoding: UTF8` (Patroni's `[Or(str, dict)]`). */
const toolOption = z.union([str, z.record(z.string(), scalarText)], {
  error: expected('an option name or a mapping of option to value'),
});

// ---------------------------------------------------------------------------------------------
// etcd3

/** etcd's client port, Patroni's default for hosts written without one (dcs/etcd.py). */
export const ETCD_DEFAULT_PORT = 2379;

const etcd3Input = z.object({
  host: text.optional(),
  hosts: z
    .union([z.string(), z.array(text)], { error: expected('a list of "host:port" or a comma-separated string') })
    .optional(),
  port: port.optional(),
  url: str.optional(),
  protocol: z.enum(['http', 'https'], { error: expected('"http" or "https"') }).optional(),
  username: text.optional(),
  password: text.optional(),
  /** TLS (Patroni's etcd `cacert`, `cert`, `key`): the CA to verify etcd with, our client certificate and key. */
  cacert: str.optional(),
  cert: str.optional(),
  key: str.optional(),
});

type Etcd3Input = z.output<typeof etcd3Input>;
export interface Etcd3Settings {
  hosts: string[];
  protocol?: 'http' | 'https';
  username?: string;
  password?: string;
  cacert?: string;
  cert?: string;
  key?: string;
}

/**
 * One list of "host:port". Patroni's precedence (dcs/etcd.py `get_etcd_client`): `url` over `hosts`
 * over `host`; `port` is the default port of hosts written without one.
 */
function normaliseEtcd3(e: Etcd3Input, ctx: Ctx): Etcd3Settings {
  const auth = { username: e.username, password: e.password, ...(e.cacert ? { cacert: e.cacert } : {}), ...(e.cert ? { cert: e.cert } : {}), ...(e.key ? { key: e.key } : {}) };
  if (e.url !== undefined) return { ...auth, ...fromEtcdUrl(e.url, ctx) };
  const [key, list] =
    e.hosts !== undefined ? (['hosts', splitList(e.hosts)] as const) : (['host', e.host === undefined ? [] : [e.host]] as const);
  if (list.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'required: `hosts` (a list of "host:port"), `host` or `url`' });
  }
  const hosts = list.map((h, i) => etcdHost(h, e.port ?? ETCD_DEFAULT_PORT, key === 'hosts' ? [key, i] : [key], ctx));
  return { ...auth, hosts, protocol: e.protocol };
}

function splitList(hosts: string | string[]): string[] {
  return (Array.isArray(hosts) ? hosts : hosts.split(',')).map((h) => h.trim()).filter(Boolean);
}

function etcdHost(h: string, defaultPort: number, path: PropertyKey[], ctx: Ctx): string {
  const hp = splitHostPort(h, defaultPort);
  if (!hp || !validHost(hp.host)) {
    ctx.addIssue({ code: 'custom', path, message: `expected "host:port", got ${show(h)}` });
    return h;
  }
  if (!validPort(hp.port)) ctx.addIssue({ code: 'custom', path, message: `port must be from 1 to 65535, got ${show(h)}` });
  return joinHostPort(hp.host, hp.port);
}

function fromEtcdUrl(url: string, ctx: Ctx): Omit<Etcd3Settings, 'username' | 'password'> & Partial<Etcd3Settings> {
  let u: URL | null = null;
  try {
    u = new URL(url);
  } catch {
    u = null;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) {
    ctx.addIssue({ code: 'custom', path: ['url'], message: `expected a URL like "http://host:2379", got ${show(url)}` });
    return { hosts: [] };
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    hosts: [joinHostPort(host, u.port ? Number(u.port) : ETCD_DEFAULT_PORT)],
    protocol: u.protocol === 'https:' ? 'https' : 'http',
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// kubernetes: the keys DESIGN.md §3 promises are checked (validator.py), the rest is kept as given.

const kubernetes = z.looseObject({
  namespace: str.optional(),
  /** Required: Patroni's kubernetes.py reads `config['labels']` unconditionally. */
  labels: z.record(z.string(), scalarText, { error: expected('a mapping of label to value') }),
  scope_label: str.optional(),
  role_label: str.optional(),
  use_endpoints: patroniBool.optional(),
  bypass_api_service: patroniBool.optional(),
  pod_ip: str.refine((ip) => isIP(ip) !== 0, { error: (i) => `expected an IPv4 or IPv6 address, got ${show(i.input)}` }).optional(),
  ports: z.array(z.object({ name: str, port }), { error: expected('a list of {name, port}') }).optional(),
  retriable_http_codes: z.union([integer, z.array(integer)]).optional(),
  context: str.optional(),
  cacert: str.optional(),
  /** Patroni 4: the role label's values (3.0.2 wrote master/replica). */
  leader_label_value: str.optional(),
  follower_label_value: str.optional(),
  standby_leader_label_value: str.optional(),
});

// ---------------------------------------------------------------------------------------------
// bootstrap

/**
 * `bootstrap.dcs` is kept as written (the first leader copies it to the store's `config` key), but
 * the keys the daemon interprets are type-checked now, with the very reader used for the stored
 * config later: a typo then stops the first start instead of silently becoming a default.
 */
const bootstrapDcs = z.record(z.string(), z.unknown(), { error: expected('a mapping') }).superRefine((d, ctx) => {
  for (const p of interpretDynamic(d).problems) ctx.addIssue({ code: 'custom', path: p.path.split('.'), message: p.reason });
});

const bootstrap = z.object({
  dcs: bootstrapDcs.default({}),
  initdb: z.array(toolOption, { error: expected('a list of options') }).default([]),
  pg_hba: stringList.optional(),
  users: z
    .record(z.string(), z.object({ password: text.optional(), options: stringList.optional() }), {
      error: expected('a mapping of user name to {password, options}'),
    })
    .optional(),
  /** Script run after initdb with a connection string to the new primary (Patroni's post_bootstrap / post_init). */
  post_bootstrap: text.optional(),
  post_init: text.optional(),
  /** A custom bootstrap: the name of the `bootstrap.<method>` section to run instead of initdb. */
  method: text.optional(),
});

// ---------------------------------------------------------------------------------------------
// postgresql

/** The connection keys Patroni keeps from an authentication entry (config.py `_AUTH_ALLOWED_PARAMETERS`). */
const credentials = z.object({
  username: text,
  password: text.optional(),
  sslmode: str.optional(),
  sslcert: str.optional(),
  sslkey: str.optional(),
  sslpassword: text.optional(),
  sslrootcert: str.optional(),
  sslcrl: str.optional(),
  sslcrldir: str.optional(),
  gssencmode: str.optional(),
  channel_binding: str.optional(),
});

const createReplicaMethods = z
  .union([stringList, z.string().transform((m) => splitList(m))], { error: expected('a list of method names') })
  .default(['basebackup']);

const postgresql = z.object({
  listen: hostPort(true),
  connect_address: connectAddress().optional(),
  data_dir: nonEmpty,
  bin_dir: str.optional(),
  config_dir: str.optional(),
  pgpass: str.optional(),
  authentication: z.object({ superuser: credentials, replication: credentials, rewind: credentials.optional() }),
  parameters: z.record(z.string(), pgParam, { error: expected('a mapping') }).default({}),
  pg_hba: stringList.optional(),
  use_pg_rewind: patroniBool.optional(),
  remove_data_directory_on_rewind_failure: patroniBool.default(false),
  remove_data_directory_on_diverged_timelines: patroniBool.default(false),
  create_replica_methods: createReplicaMethods,
  basebackup: z
    .union([z.array(toolOption), z.record(z.string(), scalarText)], { error: expected('a list of options or a mapping') })
    .optional(),
  /** Patroni's callbacks: a command per action, run as `<command> <action> <role> <scope>`. */
  callbacks: z
    .object({ on_start: text.optional(), on_stop: text.optional(), on_restart: text.optional(), on_reload: text.optional(), on_role_change: text.optional() })
    .optional(),
  /** Fencing script run before a promotion; a non-zero exit cancels it. */
  pre_promote: text.optional(),
});

// ---------------------------------------------------------------------------------------------
// REST API TLS, ctl, log

/** restapi.verify_client, in any case (Patroni lower-cases it). */
const verifyClient = z.unknown().transform((v, ctx) => {
  const m = typeof v === 'string' ? v.toLowerCase() : v;
  if (m === 'none' || m === 'optional' || m === 'required') return m;
  ctx.addIssue({ code: 'custom', message: `expected none, optional or required, got ${show(v)}` });
  return 'none' as const;
});

/** The `ctl:` section (patroni/request.py): TLS and credentials for requests to members' REST APIs. */
const ctl = z.object({
  insecure: patroniBool.optional(),
  cacert: str.optional(),
  certfile: str.optional(),
  keyfile: str.optional(),
  keyfile_password: text.optional(),
  authentication: z.object({ username: text, password: text }).optional(),
});

/** Python logging level names as Patroni takes them (log.level), in any case. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL', 'FATAL'] as const;
const logLevel = z.unknown().transform((v, ctx) => {
  const l = typeof v === 'string' ? v.toUpperCase() : '';
  if ((LOG_LEVELS as readonly string[]).includes(l)) return l;
  ctx.addIssue({ code: 'custom', message: `expected one of ${LOG_LEVELS.join(', ')}, got ${show(v)}` });
  return 'INFO';
});

// ---------------------------------------------------------------------------------------------
// the whole file

export const daemonSchema = z.object({
  scope: nonEmpty,
  name: nonEmpty,
  /** Patroni's default prefix of every store key (dcs/__init__.py: '/service/'). */
  namespace: str.default('/service/'),
  restapi: z.object({
    listen: hostPort(false),
    connect_address: connectAddress().optional(),
    authentication: z.object({ username: text, password: text }).optional(),
    certfile: str.optional(),
    keyfile: str.optional(),
    /** The passphrase of an encrypted keyfile. */
    keyfile_password: text.optional(),
    /** CA certificates that client certificates must chain to (verify_client). */
    cafile: str.optional(),
    /** OpenSSL cipher list for the REST API's TLS. */
    ciphers: str.optional(),
    /** Patroni's client certificate rule: required for every request, optional (required for unsafe methods), none. */
    verify_client: verifyClient.optional(),
  }),
  /** How this member (and `ctl`) talks to members' REST APIs: Patroni's PatroniRequest, falling back to restapi.*. */
  ctl: ctl.optional(),
  /** Logging: the level only (Patroni's other log keys are warned about). */
  log: z.object({ level: logLevel.optional() }).optional(),
  etcd3: etcd3Input.transform(normaliseEtcd3).optional(),
  kubernetes: kubernetes.optional(),
  bootstrap: bootstrap.default({ dcs: {}, initdb: [] }),
  postgresql,
  /** Patroni publishes tags as given, unknown ones included (__main__.py `get_tags`). */
  tags: z
    .looseObject({
      nofailover: patroniBool.optional(),
      noloadbalance: patroniBool.optional(),
      clonefrom: patroniBool.optional(),
      nosync: patroniBool.optional(),
      replicatefrom: str.optional(),
    })
    .default({}),
  /** Patroni's watchdog (patroni/watchdog/base.py): mode off|automatic|required (and aliases), default automatic. */
  watchdog: z
    .object({
      mode: z
        .unknown()
        .refine((v) => parseWatchdogMode(v) !== null, { error: (i) => `expected off, automatic or required, got ${show(i.input)}` })
        .optional(),
      device: str.optional(),
      safety_margin: integer.optional(),
      driver: z.enum(['default', 'testing'], { error: expected('default or testing') }).optional(),
    })
    .optional(),
});

export type DaemonConfigInput = z.input<typeof daemonSchema>;
export type DaemonConfigParsed = z.output<typeof daemonSchema>;
