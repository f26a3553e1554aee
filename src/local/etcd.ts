/**
 * A real etcd process for tests, benchmarks and `pgwarden local`: one member, its own data dir and log
 * file under `dir`, loopback ports. Every signal goes through a start-time check, because PIDs wrap.
 */
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { freePort } from '../util/net.js';
import { processStartTime, processState, signalIfSame, stopProcess } from '../util/proc.js';

export interface EtcdProcess {
  /** The current process (a restart changes it). */
  readonly pid: number;
  /** `/proc/<pid>/stat` start time of the current process, to check before signalling it. */
  readonly startTime: string;
  /** `http://<host>:<clientPort>` */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly logFile: string;
  /** SIGTERM (SIGKILL after a bound); resolves once the process is gone. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGSTOP: etcd keeps its sockets but answers nothing (a frozen store) until resume(). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Stop, then start again on the same data dir and ports (the data survives). */
  restart(): Promise<void>;
}

export interface EtcdOptions {
  /** Holds the data dir (`data/`) and the log (`etcd.log`); created if missing. */
  dir: string;
  /** Free ports are chosen when not given. */
  clientPort?: number;
  peerPort?: number;
  name?: string;
  /** Address to listen on; loopback by default. */
  host?: string;
  /** Outlive the caller (`pgwarden local up`): detached from our process group. */
  detached?: boolean;
  /** How long to wait for etcd to serve requests; 30 s by default. */
  startTimeoutMs?: number;
  /** Serve clients over TLS (tests of etcd3.cacert/cert/key): etcd's certificate, key and the CA of client certificates. */
  tls?: { cert: string; key: string; ca: string; clientCertAuth: boolean };
}

const STOP_GRACE_MS = 10_000;

/** The etcd binary on PATH (or the Debian location). */
export function findEtcd(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean).concat(['/usr/bin', '/usr/local/bin']);
  for (const d of dirs) {
    const p = join(d, 'etcd');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new Error('etcd not found: apt-get install etcd-server');
}

export async function startEtcd(opts: EtcdOptions): Promise<EtcdProcess> {
  const host = opts.host ?? '127.0.0.1';
  const clientPort = opts.clientPort ?? (await freePort(host));
  const peerPort = opts.peerPort ?? (await freePort(host));
  const bin = findEtcd();
  mkdirSync(opts.dir, { recursive: true });
  const spec: LaunchSpec = {
    bin,
    args: etcdArgs({ name: opts.name ?? 'pgwarden', dataDir: join(opts.dir, 'data'), host, clientPort, peerPort, tls: opts.tls }),
    logFile: join(opts.dir, 'etcd.log'),
    endpoint: `${opts.tls ? 'https' : 'http'}://${urlHost(host)}:${clientPort}`,
    tls: opts.tls,
    detached: opts.detached ?? false,
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
  };
  let proc = await launch(spec);

  const stop = async (): Promise<void> => {
    await stopProcess(proc.pid, proc.startTime, { graceMs: STOP_GRACE_MS });
  };
  return {
    get pid() {
      return proc.pid;
    },
    get startTime() {
      return proc.startTime;
    },
    endpoint: spec.endpoint,
    clientPort,
    peerPort,
    logFile: spec.logFile,
    stop,
    pause: () => {
      if (!signalIfSame(proc.pid, proc.startTime, 'SIGSTOP')) throw new Error(`etcd (pid ${proc.pid}) is not running: cannot pause it`);
      waitStoppedSync(proc.pid, 5000);
    },
    resume: () => {
      signalIfSame(proc.pid, proc.startTime, 'SIGCONT');
    },
    restart: async () => {
      await stop();
      proc = await launch(spec);
    },
  };
}

interface LaunchSpec {
  bin: string;
  args: string[];
  logFile: string;
  endpoint: string;
  detached: boolean;
  startTimeoutMs: number;
  tls?: EtcdOptions['tls'];
}

function etcdArgs(o: { name: string; dataDir: string; host: string; clientPort: number; peerPort: number; tls?: EtcdOptions['tls'] }): string[] {
  const h = urlHost(o.host);
  const client = `${o.tls ? 'https' : 'http'}://${h}:${o.clientPort}`;
  const tls = o.tls
    ? ['--cert-file', o.tls.cert, '--key-file', o.tls.key, '--trusted-ca-file', o.tls.ca, ...(o.tls.clientCertAuth ? ['--client-cert-auth'] : [])]
    : [];
  const peer = `http://${h}:${o.peerPort}`;
  return [
    '--name', o.name,
    '--data-dir', o.dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `${o.name}=${peer}`,
    '--initial-cluster-state', 'new',
    '--enable-v2=false',
    ...tls,
  ];
}

/** Spawn etcd and wait until it serves; on failure kill what we started and report the log tail. */
async function launch(spec: LaunchSpec): Promise<{ pid: number; startTime: string }> {
  const out = openSync(spec.logFile, 'a');
  let child;
  try {
    child = spawn(spec.bin, spec.args, { stdio: ['ignore', out, out], detached: spec.detached, env: etcdEnv() });
  } finally {
    closeSync(out);
  }
  // A failed spawn is reported through the missing pid below; the event must not crash the caller.
  child.on('error', () => undefined);
  const pid = child.pid;
  if (!pid) throw new Error(`could not spawn ${spec.bin}`);
  child.unref();
  const startTime = processStartTime(pid) ?? '';
  try {
    await waitServing(spec.endpoint, spec.tls, spec.startTimeoutMs, () => startTime !== '' && processStartTime(pid) === startTime && processState(pid) !== 'Z');
  } catch (e) {
    await stopProcess(pid, startTime, { graceMs: 2000, signal: 'SIGKILL' });
    throw new Error(`${(e as Error).message}\n--- last lines of ${spec.logFile} ---\n${logTail(spec.logFile)}`);
  }
  return { pid, startTime };
}

/** etcd 3.4 refuses to run on architectures other than amd64/ppc64le unless told to. */
function etcdEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const goArch: Record<string, string> = { arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le' };
  const arch = goArch[process.arch];
  if (arch && !env.ETCD_UNSUPPORTED_ARCH) env.ETCD_UNSUPPORTED_ARCH = arch;
  return env;
}

async function waitServing(endpoint: string, tls: EtcdOptions['tls'], timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await healthy(endpoint, tls)) return;
    } catch {
      // not listening yet
    }
    if (!alive()) throw new Error(`etcd exited before serving on ${endpoint}`);
    if (performance.now() > deadline) throw new Error(`etcd did not serve on ${endpoint} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET /health; over TLS with the CA and, when etcd asks for one, a client certificate (its own will do). */
async function healthy(endpoint: string, tls: EtcdOptions['tls']): Promise<boolean> {
  if (!tls) return (await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) })).ok;
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(`${endpoint}/health`, { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * SIGSTOP reaches a multi-threaded process asynchronously: pause() returns only once the kernel shows the
 * process stopped, so the caller's next request cannot be answered any more. Synchronous because pause()
 * is; the wait is a few milliseconds.
 */
function waitStoppedSync(pid: number, timeoutMs: number): void {
  const deadline = performance.now() + timeoutMs;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (processState(pid) !== 'T' && performance.now() < deadline) Atomics.wait(cell, 0, 0, 2);
}

function logTail(file: string, lines = 20): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '(no log)';
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
