/**
 * The daemon config schema (Patroni 3.0.2 YAML keys we implement). Parsed once at start-up; every
 * problem is reported with its key path. Keys outside this schema are warnings (see load.ts).
 */
import { z } from 'zod';

/** Patroni's parse_bool: true/false, on/off, yes/no, 1/0 (also as strings). */
export const patroniBool = z.preprocess((v) => {
  const b = toBool(v);
  return b === null ? v : b;
}, z.boolean({ error: (i) => `expected a boolean, got ${show(i.input)}` }));

/** Patroni's split_host_port: everything before the last ':' is the host (IPv6 may be bracketed). */
export function splitHostPort(s: string): { host: string; port: number } | null {
  const i = s.lastIndexOf(':');
  if (i < 0) return null;
  const host = s.slice(0, i).trim();
  const portText = s.slice(i + 1).trim();
  if (!/^\d+$/.test(portText)) return null;
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(portText) };
}

/** "host:port" (or "h1,h2:port" when `multi`, as postgresql.listen allows). */
function hostPort(multi: boolean) {
  return z.unknown().transform((v, ctx) => {
    if (typeof v !== 'string' && typeof v !== 'number') {
      ctx.addIssue({ code: 'custom', message: v === undefined ? 'required' : `expected "host:port", got ${show(v)}` });
      return z.NEVER;
    }
    const s = String(v).trim();
    const hp = splitHostPort(s);
    const hosts = hp ? (multi ? hp.host.split(',').map((h) => h.trim()) : [hp.host]) : [];
    if (!hp || hosts.some((h) => h === '' || /[\s,]/.test(h)) || (hosts.length > 1 && hosts.includes('*'))) {
      ctx.addIssue({ code: 'custom', message: `expected "host:port", got ${show(v)}` });
      return z.NEVER;
    }
    if (!(hp.port >= 1 && hp.port <= 65535)) {
      ctx.addIssue({ code: 'custom', message: `port must be from 1 to 65535, got ${show(v)}` });
      return z.NEVER;
    }
    return s;
  });
}

const str = z.string({ error: (i) => (i.input === undefined ? 'required' : `expected a string, got ${show(i.input)}`) });
const optStr = z.union([z.string(), z.number()]).transform(String).optional();

const credentials = z
  .object({ username: str, password: optStr })
  .catchall(z.union([z.string(), z.number(), z.boolean()]).transform(String));

/** etcd hosts: a list or "h1:2379,h2:2379"; a host without a port gets etcd's 2379 (as Patroni does). */
const hostList = z
  .union([z.string(), z.array(z.union([z.string(), z.number()]).transform(String))], {
    error: (i) => `expected a list of "host:port" or a comma-separated string, got ${show(i.input)}`,
  })
  .transform((v) =>
    (Array.isArray(v) ? v : v.split(','))
      .map((h) => h.trim())
      .filter(Boolean)
      .map((h) => (h.includes(':') ? h : `${h}:2379`)),
  );

const pgParam = z.union([z.string(), z.number(), z.boolean()], {
  error: (i) => `expected a string, number or boolean, got ${show(i.input)}`,
});

const initdbOption = z.union([z.string(), z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))]);

const DCS_NUMBERS = [
  'ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'primary_start_timeout', 'primary_stop_timeout',
  'master_start_timeout', 'master_stop_timeout', 'synchronous_node_count', 'max_timelines_history',
] as const;
const DCS_BOOLS = ['synchronous_mode_strict', 'pause', 'check_timeline'] as const;

/** Patroni accepts numbers written as strings ("30"). */
export function toNumber(v: unknown): number | null {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

/** Patroni's parse_bool (null when it is not a boolean). */
export function toBool(v: unknown): boolean | null {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v === 1 ? true : v === 0 ? false : null;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', 'on', 'yes', '1'].includes(s)) return true;
    if (['false', 'off', 'no', '0'].includes(s)) return false;
  }
  return null;
}

/**
 * `bootstrap.dcs`: kept as written (it is copied to the store), but its well-known keys are
 * type-checked here so that a typo stops the first start instead of silently becoming a default.
 */
const dcsSection = z.record(z.string(), z.unknown()).superRefine((d, ctx) => {
  for (const k of DCS_NUMBERS) {
    const v = d[k];
    if (v === undefined || v === null) continue;
    const n = toNumber(v);
    if (n === null) ctx.addIssue({ code: 'custom', path: [k], message: `expected a number, got ${show(v)}` });
    else if (n < 0) ctx.addIssue({ code: 'custom', path: [k], message: `must not be negative, got ${show(v)}` });
  }
  for (const k of DCS_BOOLS) {
    const v = d[k];
    if (v !== undefined && v !== null && toBool(v) === null) {
      ctx.addIssue({ code: 'custom', path: [k], message: `expected a boolean, got ${show(v)}` });
    }
  }
  const sm = d.synchronous_mode;
  if (sm !== undefined && sm !== null && sm !== 'quorum' && toBool(sm) === null) {
    ctx.addIssue({ code: 'custom', path: ['synchronous_mode'], message: `expected a boolean or "quorum", got ${show(sm)}` });
  }
  const pg = d.postgresql;
  if (pg === undefined || pg === null) return;
  if (typeof pg !== 'object' || Array.isArray(pg)) {
    ctx.addIssue({ code: 'custom', path: ['postgresql'], message: `expected a mapping, got ${show(pg)}` });
    return;
  }
  const p = pg as Record<string, unknown>;
  for (const k of ['use_pg_rewind', 'use_slots']) {
    const v = p[k];
    if (v !== undefined && v !== null && toBool(v) === null) {
      ctx.addIssue({ code: 'custom', path: ['postgresql', k], message: `expected a boolean, got ${show(v)}` });
    }
  }
  const params = p.parameters;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) {
      ctx.addIssue({ code: 'custom', path: ['postgresql', 'parameters'], message: `expected a mapping, got ${show(params)}` });
    } else {
      for (const [k, v] of Object.entries(params)) {
        if (v !== null && !['string', 'number', 'boolean'].includes(typeof v)) {
          ctx.addIssue({ code: 'custom', path: ['postgresql', 'parameters', k], message: `expected a string, number or boolean, got ${show(v)}` });
        }
      }
    }
  }
});

export const daemonSchema = z.object({
  scope: str,
  name: str,
  namespace: z.string().default('/service/'),
  restapi: z.object({
    listen: hostPort(false),
    connect_address: hostPort(false).optional(),
    authentication: z.object({ username: str, password: str }).optional(),
    certfile: z.string().optional(),
    keyfile: z.string().optional(),
  }),
  etcd3: z
    .object({
      host: hostList.optional(),
      hosts: hostList.optional(),
      protocol: z.enum(['http', 'https'], { error: (i) => `expected "http" or "https", got ${show(i.input)}` }).optional(),
      username: z.string().optional(),
      password: optStr,
    })
    .optional(),
  kubernetes: z.record(z.string(), z.unknown()).optional(),
  bootstrap: z
    .object({
      dcs: dcsSection.default({}),
      initdb: z.array(initdbOption).default([]),
      pg_hba: z.array(z.string()).optional(),
      users: z
        .record(z.string(), z.object({ password: optStr, options: z.array(z.string()).optional() }))
        .optional(),
    })
    .default({ dcs: {}, initdb: [] }),
  postgresql: z.object({
    listen: hostPort(true),
    connect_address: hostPort(false).optional(),
    data_dir: str,
    bin_dir: z.string().optional(),
    config_dir: z.string().optional(),
    pgpass: z.string().optional(),
    authentication: z.object({
      superuser: credentials,
      replication: credentials,
      rewind: credentials.optional(),
    }),
    parameters: z.record(z.string(), pgParam).default({}),
    pg_hba: z.array(z.string()).optional(),
    use_pg_rewind: patroniBool.optional(),
    remove_data_directory_on_rewind_failure: patroniBool.default(false),
    remove_data_directory_on_diverged_timelines: patroniBool.default(false),
    create_replica_methods: z
      .union([z.array(z.string()), z.string().transform((m) => m.split(',').map((x) => x.trim()).filter(Boolean))], {
        error: (i) => `expected a list of method names, got ${show(i.input)}`,
      })
      .default(['basebackup']),
    basebackup: z
      .union([z.array(initdbOption), z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))])
      .optional(),
  }),
  tags: z
    .object({
      nofailover: patroniBool.optional(),
      noloadbalance: patroniBool.optional(),
      clonefrom: patroniBool.optional(),
      nosync: patroniBool.optional(),
      replicatefrom: z.string().optional(),
    })
    .catchall(z.unknown())
    .default({}),
});

export type DaemonConfigInput = z.input<typeof daemonSchema>;

/** Every key path the schema knows (for "not supported yet" warnings). Open objects end in `.*`. */
export const KNOWN_KEYS: readonly string[] = [
  'scope', 'name', 'namespace',
  'restapi', 'restapi.listen', 'restapi.connect_address', 'restapi.authentication', 'restapi.authentication.username',
  'restapi.authentication.password', 'restapi.certfile', 'restapi.keyfile',
  'etcd3', 'etcd3.host', 'etcd3.hosts', 'etcd3.protocol', 'etcd3.username', 'etcd3.password',
  'kubernetes.*',
  'bootstrap', 'bootstrap.dcs.*', 'bootstrap.initdb', 'bootstrap.pg_hba', 'bootstrap.users.*',
  'postgresql', 'postgresql.listen', 'postgresql.connect_address', 'postgresql.data_dir', 'postgresql.bin_dir',
  'postgresql.config_dir', 'postgresql.pgpass', 'postgresql.authentication', 'postgresql.authentication.superuser.*',
  'postgresql.authentication.replication.*', 'postgresql.authentication.rewind.*', 'postgresql.parameters.*',
  'postgresql.pg_hba', 'postgresql.use_pg_rewind', 'postgresql.remove_data_directory_on_rewind_failure',
  'postgresql.remove_data_directory_on_diverged_timelines', 'postgresql.create_replica_methods',
  'postgresql.basebackup', 'postgresql.basebackup.*',
  'tags.*',
];

export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
