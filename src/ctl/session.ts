/**
 * One `ctl` invocation's ports, built from the command-line options: settings → scope check →
 * store + REST client + terminal; closed again whatever the verb did.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../util/clock.js';
import { failed, usage } from './args.js';
import type { CtlContext } from './context.js';
import { createHttp } from './http.js';
import { resolveSettings, type CtlOptions } from './settings.js';
import { openEtcdStore, openKubernetesStore } from './store.js';
import { createTerminal, readStdin, stdinLines } from './terminal.js';

export interface SessionOptions extends CtlOptions {
  /** Seconds a request that makes members act may take (switchover, restart, reinitialize). */
  requestTimeoutS?: number;
}

/** Short requests (GET /patroni, PATCH /config, reload) are bounded by this. */
const SHORT_REQUEST_MS = 15_000;
/** Every store call is bounded by this (etcd unreachable: the command fails after it). */
const STORE_TIMEOUT_S = 10;

/** patronictl's default config file, used when neither -c nor --dcs-url is given. */
function defaultConfigFile(env: NodeJS.ProcessEnv): string | undefined {
  if (env.PATRONICTL_CONFIG_FILE) return env.PATRONICTL_CONFIG_FILE;
  const f = join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'patroni', 'patronictl.yaml');
  return existsSync(f) ? f : undefined;
}

/**
 * The cluster the command is about: `--scope`, else the config's `scope`, else the positional name.
 * Positional names (patronictl's `<cluster>` arguments) must match it.
 */
export function resolveScope(configured: string | null, given: readonly string[]): string {
  for (const name of given) {
    if (configured !== null && name !== configured) throw failed(`cluster ${name} does not match the configured scope ${configured}`);
  }
  const scope = configured ?? given[0];
  if (!scope) throw usage('no cluster named: pass --scope NAME, a config with `scope`, or the cluster name');
  if (given.some((n) => n !== scope)) throw failed(`only one cluster at a time: ${given.join(', ')}`);
  return scope;
}

export async function withSession(o: SessionOptions, clusters: readonly string[], fn: (ctx: CtlContext) => Promise<void>): Promise<void> {
  const env = process.env;
  const configFile = o.configFile ?? (o.dcsUrl ? undefined : defaultConfigFile(env));
  const settings = resolveSettings({ ...o, configFile }, env);
  const scope = resolveScope(settings.scope, clusters);
  if (!settings.etcd && !settings.kubernetes) throw usage('no store configured: pass -c <config.yml> with an `etcd3:` or `kubernetes:` section, or --dcs-url http://host:2379');
  const requestTimeoutS = o.requestTimeoutS ?? 120;
  if (!(requestTimeoutS > 0)) throw usage('--request-timeout: expected a number of seconds > 0');
  const http = createHttp(settings.http, SHORT_REQUEST_MS);
  const store = settings.etcd
    ? openEtcdStore({ etcd: settings.etcd, namespace: settings.namespace, scope, retryTimeoutS: STORE_TIMEOUT_S })
    : await openKubernetesStore({ kubernetes: settings.kubernetes ?? {}, scope, retryTimeoutS: STORE_TIMEOUT_S });
  const write = (s: string): void => void process.stdout.write(s);
  const term = createTerminal(write, stdinLines(), readStdin);
  const ctx: CtlContext = {
    scope,
    store,
    http,
    term,
    out: (text) => write(`${text}\n`),
    clear: () => {
      if (process.stdout.isTTY) write('\x1b[H\x1b[2J');
    },
    clock: systemClock,
    actionTimeoutMs: requestTimeoutS * 1000,
  };
  try {
    await fn(ctx);
  } finally {
    term.close();
    await store.close();
  }
}
