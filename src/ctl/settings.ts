/**
 * Where `ctl` finds the cluster and how it talks to it, from `-c <config.yml>` (the daemon's
 * Patroni-format config, PATRONI_* variables applied) and/or `--dcs-url` + `--scope` (+ `--namespace`).
 * Like patronictl, a config that is not a complete daemon config (a patronictl.yaml with only `scope`,
 * `etcd3` and `ctl`) is read for the keys ctl needs. `ctl.*` (insecure, cacert, certfile, keyfile,
 * authentication) is read here: the daemon's schema does not carry it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { daemonSchema, environmentConfig, loadConfig, parseYaml, toBool, type DaemonConfig } from '../config/index.js';
import { ConfigError, errorMessage } from '../util/errors.js';
import { parseDcsUrl } from './args.js';
import { isObj, patchConfig, type Obj } from './editconfig.js';
import type { HttpSettings } from './http.js';
import { requestSettings } from '../api/tls.js';
import type { EtcdSettings } from './store.js';

export interface CtlOptions {
  configFile?: string;
  dcsUrl?: string;
  scope?: string;
  namespace?: string;
  insecure?: boolean;
}

export interface CtlSettings {
  /** null: neither the config nor --scope names one (a positional cluster name may then). */
  scope: string | null;
  namespace: string;
  /** null: no store configured. */
  etcd: EtcdSettings | null;
  /** The `kubernetes:` section, when the store is Kubernetes (and no etcd3/--dcs-url is given). */
  kubernetes: Obj | null;
  http: HttpSettings;
}

/** The config file (or directory of *.yml, merged in name order) as one object; {} without a file. */
export function readConfigSource(file: string | undefined): Obj {
  if (file === undefined) return {};
  let files: string[];
  try {
    files = statSync(file).isDirectory()
      ? readdirSync(file)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
          .map((f) => join(file, f))
      : [file];
  } catch (e) {
    throw new ConfigError('', `cannot read config file ${file}: ${errorMessage(e)}`);
  }
  let out: Obj = {};
  for (const f of files) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new ConfigError('', `cannot read config file ${f}: ${errorMessage(e).split('\n')[0]}`);
    }
    if (doc !== null && doc !== undefined && !isObj(doc)) throw new ConfigError('', `${f} must be a YAML mapping of keys`);
    out = patchConfig(out, (doc ?? {}) as Obj);
  }
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
}

function credentials(v: unknown): { username: string; password: string } | undefined {
  if (!isObj(v)) return undefined;
  const username = str(v.username);
  return username !== undefined ? { username, password: str(v.password) ?? '' } : undefined;
}

/** The etcd3 section through the daemon's own reader (same hosts/url/port rules), or a ConfigError. */
function etcdFromRaw(raw: Obj): EtcdSettings | null {
  if (raw.etcd3 === undefined) {
    if ('etcd' in raw) throw new ConfigError('etcd', 'pgwarden speaks etcd v3 only: rename the section to `etcd3:` or pass --dcs-url');
    return null;
  }
  const r = daemonSchema.shape.etcd3.safeParse(raw.etcd3);
  if (!r.success || !r.data) {
    const i = r.success ? undefined : r.error.issues[0];
    throw new ConfigError(['etcd3', ...(i?.path ?? []).map(String)].join('.'), i?.message ?? 'invalid');
  }
  return r.data;
}

/**
 * The settings from the merged raw config (file + environment), the daemon config when the file is a
 * complete one, and the command-line options (which win). Pure.
 */
export function settingsFromRaw(raw: Obj, daemon: DaemonConfig | null, opts: CtlOptions): CtlSettings {
  const ctl = isObj(raw.ctl) ? raw.ctl : {};
  const restapi = isObj(raw.restapi) ? raw.restapi : {};
  const etcd = opts.dcsUrl ? parseDcsUrl(opts.dcsUrl) : (daemon?.etcd3 ?? etcdFromRaw(raw));
  // The daemon's PatroniRequest rule (ctl.<key> else restapi.<key>), with ctl's own --insecure and, between the
  // two credentials, the daemon config's parsed restapi.authentication.
  const http: HttpSettings = requestSettings(ctl, restapi, opts.insecure === true || toBool(ctl.insecure) === true);
  const auth = credentials(ctl.authentication) ?? daemon?.restapi.authentication ?? credentials(restapi.authentication);
  if (auth) http.auth = auth;
  return {
    scope: opts.scope ?? daemon?.scope ?? str(raw.scope) ?? null,
    namespace: opts.namespace ?? daemon?.namespace ?? str(raw.namespace) ?? '/service/',
    etcd: etcd ?? null,
    kubernetes: !etcd && isObj(raw.kubernetes) ? raw.kubernetes : null,
    http,
  };
}

/**
 * Read the config (file, then PATRONI_* from `env` over it) and combine it with the options. A file that
 * loads as a daemon config is taken through loadConfig, exactly as the daemon reads it.
 */
export function resolveSettings(opts: CtlOptions, env: NodeJS.ProcessEnv): CtlSettings {
  const fileRaw = readConfigSource(opts.configFile);
  const raw = patchConfig(fileRaw, environmentConfig(env, fileRaw));
  let daemon: DaemonConfig | null = null;
  if (opts.configFile !== undefined) {
    try {
      daemon = loadConfig({ file: opts.configFile, env }).config;
    } catch (e) {
      // Not a complete daemon config: fine for ctl, which needs only the store, scope and REST settings.
      if (!(e instanceof ConfigError)) throw e;
    }
  }
  return settingsFromRaw(raw, daemon, opts);
}
