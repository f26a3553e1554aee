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
// zod/mini: the same checks as zod's classic API in a tree-shakable form; the classic one (all of it,
// locales included) cost every daemon some 5 MB of memory for a file read once.
import * as z from 'zod/mini';
import { interpretDynamic } from './dynamic.js';
import type { Etcd3Settings } from './types.js';
import { joinHostPort, parseWatchdogMode, show, splitHostPort, toBool, toInt, validPort } from './values.js';

/** What our conversions report problems through (zod's classic transform context, cut to what we use). */
interface Ctx {
  addIssue(issue: { code: 'custom'; message: string; path?: PropertyKey[] }): void;
}

/** A conversion that may report problems (zod/mini's transform gives only the issue list). */
function convert<I, O>(fn: (v: I, ctx: Ctx) => O) {
  return z.transform<I, O>((v, payload) =>
    fn(v, { addIssue: ({ message, path }) => payload.issues.push({ code: 'custom', message, input: v, path: path ?? [] }) }),
  );
}

/** The wording every type error uses: "required" when absent, else what was expected and what came. */
function expected(what: string) {
  return (i: { input?: unknown }) => (i.input === undefined ? 'required' : `expected ${what}, got ${show(i.input)}`);
}

const str = z.string({ error: expected('a string') });
const nonEmpty = str.check(z.minLength(1, { error: 'must not be empty' }));
/** Secrets and names that YAML may have read as numbers (`password: 1234`): Patroni formats them as text. */
const text = z.pipe(z.union([z.string(), z.number()], { error: expected('a string') }), z.transform(String));
const stringList = z.array(str, { error: expected('a list of strings') });

/** Patroni's parse_bool (utils.py): true/false, on/off, yes/no, 1/0, in any case. */
export const patroniBool = convert((v: unknown, ctx) => {
  const b = toBool(v);
  if (b === null) ctx.addIssue({ code: 'custom', message: expected('a boolean')({ input: v }) });
  return b ?? false;
});

const integer = convert((v: unknown, ctx) => {
  const n = typeof v === 'boolean' ? null : toInt(v);
  if (n === null) ctx.addIssue({ code: 'custom', message: expected('an integer')({ input: v }) });
  return n ?? 0;
});

const port = integer.check(z.refine(validPort, { error: (i) => `port must be from 1 to 65535, got ${show(i.input)}` }));

/**
 * "host:port" (validator.py `validate_host_port`). `multi` allows "h1,h2:port" and "*:port", as
 * postgresql.listen does (it becomes listen_addresses).
 */
function hostPort(multi: boolean) {
  return convert((v: unknown, ctx) => {
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
  return hostPort(false).check(
    z.superRefine((s, ctx) => {
      const host = splitHostPort(s)?.host;
      if (host === '*' || host === '0.0.0.0' || host === '::') {
        ctx.addIssue({ code: 'custom', message: `must be an address others can connect to, not the wildcard ${show(host)} (that is for listen)` });
      }
    }),
  );
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
const scalarText = z.pipe(
  z.union([z.string(), z.number(), z.boolean()], { error: expected('a string, number or boolean') }),
  z.transform(String),
);

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
  host: z.optional(text),
  hosts: z.optional(z.union([z.string(), z.array(text)], { error: expected('a list of "host:port" or a comma-separated string') })),
  port: z.optional(port),
  url: z.optional(str),
  protocol: z.optional(z.enum(['http', 'https'], { error: expected('"http" or "https"') })),
  username: z.optional(text),
  password: z.optional(text),
  /** TLS (Patroni's etcd `cacert`, `cert`, `key`): the CA to verify etcd with, our client certificate and key. */
  cacert: z.optional(str),
  cert: z.optional(str),
  key: z.optional(str),
});

type Etcd3Input = z.output<typeof etcd3Input>;

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
  namespace: z.optional(str),
  /** Required: Patroni's kubernetes.py reads `config['labels']` unconditionally. */
  labels: z.record(z.string(), scalarText, { error: expected('a mapping of label to value') }),
  scope_label: z.optional(str),
  role_label: z.optional(str),
  use_endpoints: z.optional(patroniBool),
  bypass_api_service: z.optional(patroniBool),
  pod_ip: z.optional(str.check(z.refine((ip) => isIP(ip) !== 0, { error: (i) => `expected an IPv4 or IPv6 address, got ${show(i.input)}` }))),
  ports: z.optional(z.array(z.object({ name: str, port }), { error: expected('a list of {name, port}') })),
  retriable_http_codes: z.optional(z.union([integer, z.array(integer)])),
  context: z.optional(str),
  cacert: z.optional(str),
  /** Patroni 4: the role label's values (3.0.2 wrote master/replica). */
  leader_label_value: z.optional(str),
  follower_label_value: z.optional(str),
  standby_leader_label_value: z.optional(str),
});

// ---------------------------------------------------------------------------------------------
// bootstrap

/**
 * `bootstrap.dcs` is kept as written (the first leader copies it to the store's `config` key), but
 * the keys the daemon interprets are type-checked now, with the very reader used for the stored
 * config later: a typo then stops the first start instead of silently becoming a default.
 */
const bootstrapDcs = z.record(z.string(), z.unknown(), { error: expected('a mapping') }).check(
  z.superRefine((d, ctx) => {
    for (const p of interpretDynamic(d).problems) ctx.addIssue({ code: 'custom', path: p.path.split('.'), message: p.reason });
  }),
);

const bootstrap = z.object({
  dcs: z._default(bootstrapDcs, {}),
  initdb: z._default(z.array(toolOption, { error: expected('a list of options') }), []),
  pg_hba: z.optional(stringList),
  users: z.optional(
    z.record(z.string(), z.object({ password: z.optional(text), options: z.optional(stringList) }), {
      error: expected('a mapping of user name to {password, options}'),
    }),
  ),
  /** Script run after initdb with a connection string to the new primary (Patroni's post_bootstrap / post_init). */
  post_bootstrap: z.optional(text),
  post_init: z.optional(text),
  /** A custom bootstrap: the name of the `bootstrap.<method>` section to run instead of initdb. */
  method: z.optional(text),
});

// ---------------------------------------------------------------------------------------------
// postgresql

/** The connection keys Patroni keeps from an authentication entry (config.py `_AUTH_ALLOWED_PARAMETERS`). */
const credentials = z.object({
  username: text,
  password: z.optional(text),
  sslmode: z.optional(str),
  sslcert: z.optional(str),
  sslkey: z.optional(str),
  sslpassword: z.optional(text),
  sslrootcert: z.optional(str),
  sslcrl: z.optional(str),
  sslcrldir: z.optional(str),
  gssencmode: z.optional(str),
  channel_binding: z.optional(str),
});

const createReplicaMethods = z._default(
  z.union([stringList, z.pipe(z.string(), z.transform((m) => splitList(m)))], { error: expected('a list of method names') }),
  ['basebackup'],
);

const postgresql = z.object({
  listen: hostPort(true),
  connect_address: z.optional(connectAddress()),
  data_dir: nonEmpty,
  bin_dir: z.optional(str),
  config_dir: z.optional(str),
  pgpass: z.optional(str),
  authentication: z.object({ superuser: credentials, replication: credentials, rewind: z.optional(credentials) }),
  parameters: z._default(z.record(z.string(), pgParam, { error: expected('a mapping') }), {}),
  pg_hba: z.optional(stringList),
  use_pg_rewind: z.optional(patroniBool),
  remove_data_directory_on_rewind_failure: z._default(patroniBool, false),
  remove_data_directory_on_diverged_timelines: z._default(patroniBool, false),
  create_replica_methods: createReplicaMethods,
  basebackup: z.optional(
    z.union([z.array(toolOption), z.record(z.string(), scalarText)], { error: expected('a list of options or a mapping') }),
  ),
  /** Patroni's callbacks: a command per action, run as `<command> <action> <role> <scope>`. */
  callbacks: z.optional(
    z.object({
      on_start: z.optional(text),
      on_stop: z.optional(text),
      on_restart: z.optional(text),
      on_reload: z.optional(text),
      on_role_change: z.optional(text),
    }),
  ),
  /** Fencing script run before a promotion; a non-zero exit cancels it. */
  pre_promote: z.optional(text),
});

// ---------------------------------------------------------------------------------------------
// REST API TLS, ctl, log

/** restapi.verify_client, in any case (Patroni lower-cases it). */
const verifyClient = convert((v: unknown, ctx) => {
  const m = typeof v === 'string' ? v.toLowerCase() : v;
  if (m === 'none' || m === 'optional' || m === 'required') return m;
  ctx.addIssue({ code: 'custom', message: `expected none, optional or required, got ${show(v)}` });
  return 'none' as const;
});

/** The `ctl:` section (patroni/request.py): TLS and credentials for requests to members' REST APIs. */
const ctl = z.object({
  insecure: z.optional(patroniBool),
  cacert: z.optional(str),
  certfile: z.optional(str),
  keyfile: z.optional(str),
  keyfile_password: z.optional(text),
  authentication: z.optional(z.object({ username: text, password: text })),
});

/** Python logging level names as Patroni takes them (log.level), in any case. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL', 'FATAL'] as const;
const logLevel = convert((v: unknown, ctx) => {
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
  namespace: z._default(str, '/service/'),
  restapi: z.object({
    listen: hostPort(false),
    connect_address: z.optional(connectAddress()),
    authentication: z.optional(z.object({ username: text, password: text })),
    certfile: z.optional(str),
    keyfile: z.optional(str),
    /** The passphrase of an encrypted keyfile. */
    keyfile_password: z.optional(text),
    /** CA certificates that client certificates must chain to (verify_client). */
    cafile: z.optional(str),
    /** OpenSSL cipher list for the REST API's TLS. */
    ciphers: z.optional(str),
    /** Patroni's client certificate rule: required for every request, optional (required for unsafe methods), none. */
    verify_client: z.optional(verifyClient),
  }),
  /** How this member (and `ctl`) talks to members' REST APIs: Patroni's PatroniRequest, falling back to restapi.*. */
  ctl: z.optional(ctl),
  /** Logging: the level only (Patroni's other log keys are warned about). */
  log: z.optional(z.object({ level: z.optional(logLevel) })),
  etcd3: z.optional(z.pipe(etcd3Input, convert(normaliseEtcd3))),
  kubernetes: z.optional(kubernetes),
  bootstrap: z._default(bootstrap, { dcs: {}, initdb: [] }),
  postgresql,
  /** Patroni publishes tags as given, unknown ones included (__main__.py `get_tags`). */
  tags: z._default(
    z.looseObject({
      nofailover: z.optional(patroniBool),
      noloadbalance: z.optional(patroniBool),
      clonefrom: z.optional(patroniBool),
      nosync: z.optional(patroniBool),
      replicatefrom: z.optional(str),
    }),
    {},
  ),
  /** Patroni's watchdog (patroni/watchdog/base.py): mode off|automatic|required (and aliases), default automatic. */
  watchdog: z.optional(
    z.object({
      mode: z.optional(
        z.unknown().check(z.refine((v) => parseWatchdogMode(v) !== null, { error: (i) => `expected off, automatic or required, got ${show(i.input)}` })),
      ),
      device: z.optional(str),
      safety_margin: z.optional(integer),
      driver: z.optional(z.enum(['default', 'testing'], { error: expected('default or testing') })),
    }),
  ),
});

export type DaemonConfigInput = z.input<typeof daemonSchema>;
export type DaemonConfigParsed = z.output<typeof daemonSchema>;
