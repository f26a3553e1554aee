/**
 * The local Kubernetes API server (DESIGN.md §5): a test and demo fixture implementing the API subset
 * our code and real third-party clients need (kube-api-subset.md). Started in-process by tests with
 * `startKubeApiServer()` and from the CLI by `pgwarden local kube-apiserver`.
 *
 * By default it serves https with a self-signed certificate made at start and requires one bearer
 * token on every request but /version and the health probes: kubectl sends its token only over TLS,
 * so this is what makes clients send what they would send to a cluster. `tls: false` serves plain
 * http (the kubeconfig then says insecure-skip-tls-verify, which client-node needs for http).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ExitError, errorMessage } from '../../util/errors.js';
import { Faults, type KubeFaults } from './faults.js';
import { handleRequest } from './http.js';
import type { JsonObject } from './json.js';
import { kubeconfigYaml, writeKubeconfig } from './kubeconfig.js';
import { Registry } from './registry.js';
import { Store, type StoreSnapshot } from './store.js';
import { selfSignedCertificate } from './tls.js';
import { Transcript, type TranscriptRecord } from './transcript.js';
import { WatchHub } from './watch.js';

export type { KubeFaults, FaultCode, FaultMatch } from './faults.js';
export type { TranscriptRecord } from './transcript.js';

export interface KubeApiServerOptions {
  /** 0 or absent: the OS picks a free port */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** the one accepted bearer token; random when absent */
  token?: string;
  /** write a kubeconfig for this server here */
  kubeconfigPath?: string;
  /** load state from this JSON file at start (if it exists) and save it there on close() */
  persistFile?: string;
  /** append every request, response and watch event to this file as JSON lines */
  transcriptFile?: string;
  /** keep the transcript in memory even without a file (see `transcript()`) */
  recordTranscript?: boolean;
  /** https with a self-signed certificate (default true) */
  tls?: boolean;
  /** kubeconfig context/cluster/user name (Patroni needs `kubernetes.context` to match); default pgwarden-local */
  context?: string;
  /** change events retained for watch resumes (default 2000); older resumes get 410 Gone */
  historyLimit?: number;
  /** BOOKMARK period for watches that allow them (default 10 s) */
  bookmarkIntervalMs?: number;
  /** unexpected internal errors (default: written to stderr) */
  onInternalError?: (e: unknown) => void;
}

export interface KubeApiServer {
  /** e.g. https://127.0.0.1:43121 */
  url: string;
  token: string;
  port: number;
  host: string;
  /** PEM of the self-signed server certificate (https only) */
  caPem?: string;
  kubeconfigPath?: string;
  /** the kubeconfig text (same as the file, when one was written) */
  kubeconfig(context?: string): string;
  faults: KubeFaults;
  /** recorded requests, responses and watch events (empty unless a transcript was asked for) */
  transcript(): readonly TranscriptRecord[];
  /** the current global resourceVersion */
  resourceVersion(): number;
  /** how many watch streams are open now */
  openWatches(): number;
  /** stops accepting, closes watches and connections, saves state when persistFile is set */
  close(): Promise<void>;
}

const SEED_NAMESPACES = ['default', 'kube-system', 'kube-public'];

function loadSnapshot(file: string): StoreSnapshot | undefined {
  if (!existsSync(file)) return undefined;
  const s = JSON.parse(readFileSync(file, 'utf8')) as StoreSnapshot;
  if (typeof s.resourceVersion !== 'number' || !Array.isArray(s.objects)) throw new Error(`${file}: not a saved API server state`);
  return s;
}

function saveSnapshot(file: string, s: StoreSnapshot): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(s)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const useTls = opts.tls ?? true;
  const registry = new Registry();
  const store = new Store({ registry, ...(opts.historyLimit === undefined ? {} : { historyLimit: opts.historyLimit }) });
  const saved = opts.persistFile ? loadSnapshot(opts.persistFile) : undefined;
  if (saved) store.restore(saved);
  const nsType = registry.find('', 'v1', 'namespaces')!;
  for (const name of SEED_NAMESPACES) store.ensure(nsType, '', { metadata: { name } } as JsonObject);
  const hub = new WatchHub(store, opts.bookmarkIntervalMs === undefined ? {} : { bookmarkIntervalMs: opts.bookmarkIntervalMs });
  const faults = new Faults(hub);
  const transcript = opts.transcriptFile || opts.recordTranscript ? new Transcript(opts.transcriptFile) : undefined;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  let port = opts.port ?? 0;
  const cert = useTls ? selfSignedCertificate(['127.0.0.1', 'localhost', '::1', ...(host === '0.0.0.0' || host === '::' ? [] : [host])]) : undefined;
  const onInternalError = opts.onInternalError ?? ((e: unknown): void => void process.stderr.write(`kube-apiserver: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));
  const core = { registry, store, hub, faults, token, serverAddress: () => `${hostForUrl}:${port}`, onInternalError, ...(transcript ? { transcript } : {}) };
  const handler = (req: Parameters<typeof handleRequest>[1], res: Parameters<typeof handleRequest>[2]): void => handleRequest(core, req, res);
  const server: Server = cert ? createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, handler) : createHttpServer(handler);
  // Watches are long-lived; only idle keep-alive sockets time out.
  server.requestTimeout = 0;
  port = await listen(server, port, host);
  const url = `${useTls ? 'https' : 'http'}://${hostForUrl}:${port}`;
  const kubeconfig = (context = opts.context): string =>
    kubeconfigYaml({ server: url, token, ...(cert ? { caPem: cert.certPem } : {}), ...(context ? { context } : {}) });
  if (opts.kubeconfigPath) writeKubeconfig(opts.kubeconfigPath, { server: url, token, ...(cert ? { caPem: cert.certPem } : {}), ...(opts.context ? { context: opts.context } : {}) });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      hub.closeAll();
      server.close(() => resolve());
      server.closeAllConnections();
    }).then(() => {
      if (opts.persistFile) saveSnapshot(opts.persistFile, store.snapshot());
    }));
  return {
    url,
    token,
    port,
    host,
    ...(cert ? { caPem: cert.certPem } : {}),
    ...(opts.kubeconfigPath ? { kubeconfigPath: opts.kubeconfigPath } : {}),
    kubeconfig,
    faults,
    transcript: () => transcript?.records ?? [],
    resourceVersion: () => store.resourceVersion,
    openWatches: () => hub.count,
    close,
  };
}

/** Adds `kube-apiserver` to `pgwarden local`: runs a server until SIGINT/SIGTERM. */
export function registerKubeApiServerCommand(local: Command): void {
  local
    .command('kube-apiserver')
    .description('run the local Kubernetes API server (test/demo fixture) and write a kubeconfig for kubectl and client libraries')
    .option('-p, --port <port>', 'port to listen on (0: any free port)', '0')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--kubeconfig <file>', 'where to write the kubeconfig', join(tmpdir(), 'pgwarden-kube-apiserver.kubeconfig'))
    .option('--token <token>', 'bearer token clients must send (random when omitted)')
    .option('--context <name>', 'kubeconfig context name (Patroni needs kubernetes.context set to it)', 'pgwarden-local')
    .option('--persist <file>', 'load state from this JSON file and save it there on a clean shutdown')
    .option('--transcript <file>', 'append every request, response and watch event to this file as JSON lines')
    .option('--http', 'serve plain http instead of https (kubectl then sends no token and gets 401)')
    .action(async (o: { port: string; host: string; kubeconfig: string; token?: string; context: string; persist?: string; transcript?: string; http?: boolean }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ExitError(`--port: expected a port number, got ${o.port}`, 2);
      let srv: KubeApiServer;
      try {
        srv = await startKubeApiServer({
          port,
          host: o.host,
          kubeconfigPath: o.kubeconfig,
          context: o.context,
          tls: !o.http,
          ...(o.token ? { token: o.token } : {}),
          ...(o.persist ? { persistFile: o.persist } : {}),
          ...(o.transcript ? { transcriptFile: o.transcript } : {}),
        });
      } catch (e) {
        throw new ExitError(`kube-apiserver: ${errorMessage(e)}`, 1);
      }
      process.stdout.write(`kube-apiserver listening on ${srv.url}\nkubeconfig: ${o.kubeconfig}\n  kubectl --kubeconfig ${o.kubeconfig} get namespaces\nstop with Ctrl-C\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await srv.close();
      process.stdout.write('kube-apiserver stopped\n');
    });
}
