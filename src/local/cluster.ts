/**
 * A whole pgwarden cluster on one machine: a real etcd and N `pgwarden daemon` processes, each
 * managing a real PostgreSQL on loopback. Used by `pgwarden local`, the end-to-end tests and the
 * benchmarks. State (PIDs with their start times, ports, dirs) lives in `<dir>/state.json`, so a
 * later `pgwarden local status|down` finds what `up` started — and signals only processes that
 * are provably still ours (PIDs wrap quickly).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../util/net.js';
import { packageRoot } from '../util/package-root.js';
import { isSameProcess, processStartTime, waitForExit } from '../util/proc.js';
import { pgOsUser } from '../util/users.js';
import { startEtcd, type EtcdProcess } from './etcd.js';

export interface LocalMember {
  name: string;
  pgPort: number;
  apiPort: number;
  dataDir: string;
  configFile: string;
  logFile: string;
  pid: number | null;
  startTime: string | null;
}

export interface LocalState {
  dir: string;
  scope: string;
  superuser: { username: string; password: string };
  replication: { username: string; password: string };
  timing: { ttl: number; loop_wait: number; retry_timeout: number };
  etcd: { clientPort: number; peerPort: number; pid: number | null; startTime: string | null };
  members: LocalMember[];
  /** Which daemon runs the members: ours, or Debian's Patroni (benchmarks and conformance tests). */
  engine?: 'pgwarden' | 'patroni';
  /** Members on the Kubernetes store instead of etcd: the API server's kubeconfig, and Endpoints or ConfigMap mode. */
  kube?: { kubeconfig: string; context: string; useEndpoints: boolean; namespace: string };
  /** Extra `bootstrap.dcs` / `postgresql` settings merged into each member's config. */
  extra?: {
    dcs?: Record<string, unknown>;
    postgresql?: Record<string, unknown>;
    tags?: Record<string, Record<string, unknown>>;
    /** Whole top-level sections per member (e.g. `watchdog:`), by member name. */
    sections?: Record<string, Record<string, unknown>>;
  };
}

export interface CreateOptions {
  dir: string;
  members: number;
  scope?: string;
  ttl?: number;
  loopWait?: number;
  retryTimeout?: number;
  extra?: LocalState['extra'];
  engine?: LocalState['engine'];
  kube?: LocalState['kube'];
  /** Reuse another cluster's passwords (a standby cluster copies its remote with them). */
  credentials?: Pick<LocalState, 'superuser' | 'replication'>;
}

const BIN = join(packageRoot(), 'bin/pgwarden');
/**
 * The node flags a member's daemon runs with: bin/pgwarden's own, read from its shebang (which explains
 * them), so the two cannot drift apart. On etcd also `--jitless`: 3-4 MB less RSS each
 * (bench/RESULTS.md). It turns WebAssembly off, which the Kubernetes store's client needs, so the
 * shebang cannot carry it; here the store is known. `--no-expose-wasm` says what `--jitless` implies,
 * which V8 would otherwise warn about in every daemon's log.
 */
export function daemonNodeFlags(store: 'etcd' | 'kubernetes'): string[] {
  const shebang = readFileSync(BIN, 'utf8').split('\n', 1)[0]!;
  const words = shebang.split(/\s+/);
  if (words[0] !== '#!/usr/bin/env' || words[1] !== '-S' || words[2] !== 'node') {
    throw new Error(`${BIN}: expected a first line "#!/usr/bin/env -S node <flags>", found ${JSON.stringify(shebang)}`);
  }
  const flags = words.slice(3).filter(Boolean);
  return store === 'etcd' ? [...flags, '--jitless', '--no-expose-wasm'] : flags;
}

/** Lay out a new cluster: ports, passwords, dirs and one Patroni-format config per member. */
export async function createLocalCluster(opts: CreateOptions): Promise<LocalState> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // The daemons run as the PostgreSQL user: they must be able to enter the cluster dir (mkdtemp makes it 0700).
  chmodSync(dir, 0o755);
  const members: LocalMember[] = [];
  for (let i = 1; i <= opts.members; i++) {
    const name = `member-${i}`;
    members.push({
      name,
      pgPort: await freePort(),
      apiPort: await freePort(),
      dataDir: join(dir, name, 'data'),
      configFile: join(dir, name, 'pgwarden.yml'),
      logFile: join(dir, `${name}.log`),
      pid: null,
      startTime: null,
    });
  }
  const state: LocalState = {
    dir,
    scope: opts.scope ?? 'demo',
    superuser: opts.credentials ? { ...opts.credentials.superuser } : { username: 'postgres', password: secret() },
    replication: opts.credentials ? { ...opts.credentials.replication } : { username: 'replicator', password: secret() },
    timing: { ttl: opts.ttl ?? 15, loop_wait: opts.loopWait ?? 2, retry_timeout: opts.retryTimeout ?? 4 },
    etcd: { clientPort: await freePort(), peerPort: await freePort(), pid: null, startTime: null },
    members,
    extra: opts.extra,
    engine: opts.engine ?? 'pgwarden',
    ...(opts.kube ? { kube: opts.kube } : {}),
  };
  for (const m of members) writeMemberConfig(state, m);
  saveState(state);
  return state;
}

/** The Patroni YAML of one member (pure): what a Patroni user would write for an etcd3 cluster. */
export function memberConfig(state: LocalState, m: LocalMember): Record<string, unknown> {
  const extra = state.extra ?? {};
  return {
    scope: state.scope,
    name: m.name,
    restapi: { listen: `127.0.0.1:${m.apiPort}`, connect_address: `127.0.0.1:${m.apiPort}` },
    ...(state.kube
      ? {
          kubernetes: {
            namespace: state.kube.namespace,
            labels: { application: 'pgwarden' },
            context: state.kube.context,
            use_endpoints: state.kube.useEndpoints,
            ports: [{ name: 'postgresql', port: m.pgPort }],
          },
        }
      : { etcd3: { hosts: [`127.0.0.1:${state.etcd.clientPort}`] } }),
    bootstrap: {
      dcs: {
        ...state.timing,
        maximum_lag_on_failover: 1048576,
        ...extra.dcs,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: { wal_log_hints: 'on', max_connections: 100 },
          ...((extra.dcs?.postgresql as Record<string, unknown> | undefined) ?? {}),
        },
      },
      initdb: [{ encoding: 'UTF8' }, 'data-checksums'],
      pg_hba: [
        'local all all trust',
        `host replication ${state.replication.username} 127.0.0.1/32 scram-sha-256`,
        'host all all 127.0.0.1/32 scram-sha-256',
      ],
    },
    postgresql: {
      listen: `127.0.0.1:${m.pgPort}`,
      connect_address: `127.0.0.1:${m.pgPort}`,
      data_dir: m.dataDir,
      authentication: {
        superuser: state.superuser,
        replication: state.replication,
        rewind: { username: 'rewind_user', password: state.superuser.password },
      },
      parameters: { unix_socket_directories: join(state.dir, m.name) },
      ...extra.postgresql,
    },
    tags: extra.tags?.[m.name] ?? {},
    ...(extra.sections?.[m.name] ?? {}),
  };
}

function writeMemberConfig(state: LocalState, m: LocalMember): void {
  const user = pgOsUser();
  const home = join(state.dir, m.name);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(m.configFile, stringify(memberConfig(state, m)), { mode: 0o600 });
  if (user) {
    chownSync(home, user.uid, user.gid);
    chownSync(m.configFile, user.uid, user.gid);
  }
}

export function loadState(dir: string): LocalState {
  const file = join(resolve(dir), 'state.json');
  if (!existsSync(file)) throw new Error(`no local cluster in ${resolve(dir)} (run \`pgwarden local up\` first)`);
  return JSON.parse(readFileSync(file, 'utf8')) as LocalState;
}

export function saveState(state: LocalState): void {
  writeFileSync(join(state.dir, 'state.json'), JSON.stringify(state, null, 2), { mode: 0o600 });
}

export async function startLocalEtcd(state: LocalState): Promise<EtcdProcess> {
  if (state.etcd.pid && state.etcd.startTime && isSameProcess(state.etcd.pid, state.etcd.startTime)) {
    throw new Error(`etcd of this cluster is already running (pid ${state.etcd.pid})`);
  }
  const etcd = await startEtcd({
    dir: join(state.dir, 'etcd'),
    clientPort: state.etcd.clientPort,
    peerPort: state.etcd.peerPort,
    detached: true,
  });
  state.etcd.pid = etcd.pid;
  state.etcd.startTime = processStartTime(etcd.pid);
  saveState(state);
  return etcd;
}

/** Start one member's daemon, detached, as the PostgreSQL OS user when we are root. */
export function startMember(state: LocalState, name: string, env: NodeJS.ProcessEnv = {}): LocalMember {
  const m = member(state, name);
  if (m.pid && m.startTime && isSameProcess(m.pid, m.startTime)) throw new Error(`${name} is already running (pid ${m.pid})`);
  const user = pgOsUser();
  const out = openSync(m.logFile, 'a');
  if (user) chownSync(m.logFile, user.uid, user.gid);
  const [cmd, args] =
    state.engine === 'patroni' ? ['patroni', [m.configFile]] : [process.execPath, [...daemonNodeFlags(state.kube ? 'kubernetes' : 'etcd'), BIN, 'daemon', m.configFile]];
  const child = spawn(cmd, args, {
    cwd: join(state.dir, m.name),
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, HOME: join(state.dir, m.name), ...kubeEnv(state, m), ...env },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  closeSync(out);
  child.unref();
  if (!child.pid) throw new Error(`could not start the daemon of ${name}`);
  m.pid = child.pid;
  m.startTime = processStartTime(child.pid);
  saveState(state);
  return m;
}

/** Signal a member's daemon if it is still the process we started; optionally wait for it to exit. */
export async function signalMember(state: LocalState, name: string, signal: NodeJS.Signals, waitMs = 0): Promise<boolean> {
  const m = member(state, name);
  if (!m.pid || !m.startTime || !isSameProcess(m.pid, m.startTime)) return false;
  process.kill(m.pid, signal);
  if (waitMs > 0 && !(await waitForExit(m.pid, waitMs))) return false;
  return true;
}

/** The postmaster PID of a member, from postmaster.pid, if that process is alive. */
export function postmasterPid(state: LocalState, name: string): number | null {
  const file = join(member(state, name).dataDir, 'postmaster.pid');
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    if (!(pid > 0)) return null;
    // postmaster.pid outlives a killed postmaster and PIDs wrap: the PID counts only if it is a
    // postgres process running in this data dir.
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return comm === 'postgres' && resolve(cwd) === resolve(member(state, name).dataDir) ? pid : null;
  } catch {
    return null;
  }
}

export function member(state: LocalState, name: string): LocalMember {
  const m = state.members.find((x) => x.name === name);
  if (!m) throw new Error(`no member ${name} in this local cluster`);
  return m;
}

export function connString(state: LocalState, m: LocalMember): string {
  const { username, password } = state.superuser;
  return `postgresql://${username}:${encodeURIComponent(password)}@127.0.0.1:${m.pgPort}/postgres`;
}

/** As a pod's downward API would set them: the pod's IP (the leader Endpoints carry it) and name. */
function kubeEnv(state: LocalState, m: LocalMember): NodeJS.ProcessEnv {
  if (!state.kube) return {};
  return { KUBECONFIG: state.kube.kubeconfig, PATRONI_KUBERNETES_POD_IP: '127.0.0.1', PATRONI_NAME: m.name };
}

function secret(): string {
  return randomBytes(12).toString('base64url');
}
