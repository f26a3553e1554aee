/** A real etcd process for tests, benchmarks and `pgwarden local`: loopback only, its own data dir. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { freePort } from '../util/net.js';
import { isSameProcess, processStartTime, waitForExit } from '../util/proc.js';

export interface EtcdProcess {
  readonly pid: number;
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  stop(): Promise<void>;
  /** SIGSTOP: etcd stops answering (a frozen store) until resume(). */
  pause(): void;
  resume(): void;
  restart(): Promise<void>;
}

export interface EtcdOptions {
  dir: string;
  clientPort?: number;
  peerPort?: number;
  name?: string;
  /** Outlive the caller (pgwarden local up): detached, unref'd. */
  detached?: boolean;
}

export function findEtcd(): string {
  for (const d of (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/usr/local/bin'])) {
    const p = join(d, 'etcd');
    if (d && existsSync(p)) return p;
  }
  throw new Error('etcd not found: apt-get install etcd-server');
}

export async function startEtcd(opts: EtcdOptions): Promise<EtcdProcess> {
  const clientPort = opts.clientPort ?? (await freePort());
  const peerPort = opts.peerPort ?? (await freePort());
  const name = opts.name ?? 'pgwarden';
  mkdirSync(opts.dir, { recursive: true });
  const logFile = join(opts.dir, 'etcd.log');
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const bin = findEtcd();
  let pid = 0;
  let startTime = '';

  const launch = async (): Promise<void> => {
    const out = openSync(logFile, 'a');
    const child = spawn(
      bin,
      [
        '--name', name,
        '--data-dir', join(opts.dir, 'data'),
        '--listen-client-urls', endpoint,
        '--advertise-client-urls', endpoint,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `${name}=http://127.0.0.1:${peerPort}`,
        '--initial-cluster-state', 'new',
        '--enable-v2=false',
      ],
      { stdio: ['ignore', out, out], detached: opts.detached ?? false, env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' } },
    );
    closeSync(out);
    if (!child.pid) throw new Error('could not spawn etcd');
    child.unref();
    pid = child.pid;
    startTime = processStartTime(pid) ?? '';
    await waitServing(endpoint, logFile, () => processStartTime(pid) !== null);
  };

  const signal = (sig: NodeJS.Signals): boolean => {
    if (!isSameProcess(pid, startTime)) return false;
    process.kill(pid, sig);
    return true;
  };

  const stop = async (): Promise<void> => {
    signal('SIGCONT');
    if (!signal('SIGTERM')) return;
    if (!(await waitForExit(pid, 10_000))) {
      signal('SIGKILL');
      await waitForExit(pid, 5_000);
    }
  };

  await launch();
  return {
    get pid() {
      return pid;
    },
    endpoint,
    clientPort,
    peerPort,
    stop,
    pause: () => {
      if (!signal('SIGSTOP')) throw new Error(`etcd (pid ${pid}) is not running: cannot pause it`);
      // SIGSTOP reaches a multi-threaded process asynchronously: return only once it is really stopped.
      const deadline = performance.now() + 5000;
      while (processState(pid) !== 'T' && performance.now() < deadline) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    },
    resume: () => void signal('SIGCONT'),
    restart: async () => {
      await stop();
      await launch();
    },
  };
}

function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

async function waitServing(endpoint: string, logFile: string, alive: () => boolean): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not yet
    }
    if (!alive() || performance.now() > deadline) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`etcd did not start serving on ${endpoint}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
