/**
 * The daemon config schema (Patroni 3.0.2 YAML keys we implement). Parsed once at start-up; every
 * problem is reported with its key path. Keys outside this schema are warnings (see load.ts).
 */
import { z } from 'zod';

/** Patroni's parse_bool: true/false, on/off, yes/no, 1/0 (also as strings). */
export const patroniBool = z.preprocess((v) => {
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', 'on', 'yes', '1', 'y'].includes(s)) return true;
    if (['false', 'off', 'no', '0', 'n'].includes(s)) return false;
  }
  if (v === 1) return true;
  if (v === 0) return false;
  return v;
}, z.boolean({ error: (i) => `expected a boolean, got ${show(i.input)}` }));

const hostPort = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const s = String(v).trim();
    const m = /^(\[[^\]]+\]|[^:\s]+|\*|):(\d+)$/.exec(s);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) {
      ctx.addIssue({ code: 'custom', message: `expected "host:port" with a port from 1 to 65535, got ${show(v)}` });
      return z.NEVER;
    }
    return s;
  });

const str = z.string({ error: (i) => (i.input === undefined ? 'required' : `expected a string, got ${show(i.input)}`) });
const optStr = z.union([z.string(), z.number()]).transform(String).optional();

const credentials = z
  .object({ username: str, password: optStr })
  .catchall(z.union([z.string(), z.number(), z.boolean()]).transform(String));

const hostList = z.union([z.string(), z.array(z.string())]).transform((v) =>
  (Array.isArray(v) ? v : v.split(',')).map((h) => h.trim()).filter(Boolean),
);

const pgParam = z.union([z.string(), z.number(), z.boolean()]);

const initdbOption = z.union([z.string(), z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))]);

export const daemonSchema = z.object({
  scope: str,
  name: str,
  namespace: z.string().default('/service/'),
  restapi: z.object({
    listen: hostPort,
    connect_address: hostPort.optional(),
    authentication: z.object({ username: str, password: str }).optional(),
    certfile: z.string().optional(),
    keyfile: z.string().optional(),
  }),
  etcd3: z
    .object({
      host: z.string().optional(),
      hosts: hostList.optional(),
      protocol: z.enum(['http', 'https']).optional(),
      username: z.string().optional(),
      password: optStr,
    })
    .optional(),
  kubernetes: z.record(z.string(), z.unknown()).optional(),
  bootstrap: z
    .object({
      dcs: z.record(z.string(), z.unknown()).default({}),
      initdb: z.array(initdbOption).default([]),
      pg_hba: z.array(z.string()).optional(),
      users: z
        .record(z.string(), z.object({ password: optStr, options: z.array(z.string()).optional() }))
        .optional(),
    })
    .default({ dcs: {}, initdb: [] }),
  postgresql: z.object({
    listen: hostPort,
    connect_address: hostPort.optional(),
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
    create_replica_methods: z.array(z.string()).default(['basebackup']),
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
