/**
 * A small, bounded Kubernetes REST client for the daemon's store (and ctl): `@kubernetes/client-node`
 * loads the connection settings — in a pod the service account (token file re-read as it rotates, the
 * cluster CA), outside one a kubeconfig (`KUBECONFIG` or ~/.kube/config, any context, every auth method
 * the library knows) — and each request is sent with node:http(s) under one deadline that covers its
 * retries, as the store contract requires (`retry_timeout`). Watches are long GETs read line by line.
 *
 * The library is imported lazily: it costs ~90 MB of RSS, which an etcd3 member should not pay.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { DcsError, ExitError, errorMessage } from '../util/errors.js';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Pause between retries of a request that failed in a retryable way (Patroni: max_delay 1 s). */
const RETRY_PAUSE_MS = 200;
/** Patroni's retriable codes (plus `retriable_http_codes`). */
const RETRIABLE = new Set([500, 503, 504]);

export interface KubeConnectOptions {
  /** A kubeconfig file to use instead of the in-pod account, KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  /** kubeconfig context (outside a pod); default: the kubeconfig's current context. */
  context?: string;
  /** CA bundle for the in-pod connection (Patroni: kubernetes.cacert / PATRONI_KUBERNETES_CACERT). */
  cacert?: string;
  /** Extra HTTP codes to retry. */
  retriableCodes?: readonly number[];
  env?: NodeJS.ProcessEnv;
  /** Tests: where `/var/run/secrets/kubernetes.io/serviceaccount` lives (a prefix, as client-node's loadFromCluster takes). */
  rootPrefix?: string;
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

/** A Kubernetes `Status` answer (or a transport failure) as an error with the HTTP code. */
export class KubeApiError extends DcsError {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, any>;
}

export interface WatchHandle {
  /** Resolves when the stream ended (server closed it, error, or abort). */
  readonly done: Promise<void>;
  abort(): void;
}

type HttpsOptions = Omit<https.RequestOptions, 'headers'> & { headers?: Record<string, string> };

export class KubeClient {
  private readonly retriable: Set<number>;

  private constructor(
    /** e.g. https://10.0.0.1:443 */
    readonly server: string,
    /** The namespace of the pod (in-cluster) or of the kubeconfig context, when it names one. */
    readonly defaultNamespace: string | undefined,
    private readonly apply: (opts: HttpsOptions) => Promise<void>,
    retriableCodes: readonly number[],
  ) {
    this.retriable = new Set([...RETRIABLE, ...retriableCodes]);
  }

  /** In a pod (service-account token + KUBERNETES_SERVICE_HOST) as Patroni does first, else a kubeconfig. */
  static async connect(o: KubeConnectOptions = {}): Promise<KubeClient> {
    const env = o.env ?? process.env;
    // client-node pulls in Node's undici, which parses HTTP with WebAssembly: under --jitless (which
    // `pgwarden local` gives daemons on etcd) it would crash the process later, from inside undici.
    if (typeof WebAssembly === 'undefined') {
      throw new ExitError('kubernetes: this needs WebAssembly, which node was started without (--jitless): start it without that flag', 2);
    }
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    let namespace: string | undefined;
    const prefix = o.rootPrefix ?? '';
    const inPod = !o.kubeconfig && Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(`${prefix}${SA_DIR}/token`));
    try {
      if (inPod) {
        kc.loadFromCluster(prefix);
        const cacert = env.PATRONI_KUBERNETES_CACERT || o.cacert;
        if (cacert) {
          const cluster = kc.getCurrentCluster();
          if (cluster) kc.clusters = [{ ...cluster, caFile: cacert }];
        }
      } else {
        const file = o.kubeconfig ?? (env.KUBECONFIG ? undefined : join(env.HOME || homedir(), '.kube', 'config'));
        if (file !== undefined && !existsSync(file)) {
          throw new ExitError(`kubernetes: not in a pod (no KUBERNETES_SERVICE_HOST and service account token) and no kubeconfig at ${file} (set KUBECONFIG)`, 2);
        }
        if (file !== undefined) kc.loadFromFile(file);
        else kc.loadFromDefault();
        if (o.context) {
          if (!kc.getContextObject(o.context)) {
            const known = kc.getContexts().map((c) => c.name);
            throw new ExitError(`kubernetes.context: no context ${o.context} in the kubeconfig (${known.length ? `it has ${known.join(', ')}` : 'it has none'}; set KUBECONFIG or kubernetes.context)`, 2);
          }
          kc.setCurrentContext(o.context);
        }
      }
    } catch (e) {
      if (e instanceof ExitError) throw e;
      throw new ExitError(`kubernetes: cannot load the connection settings: ${errorMessage(e)}`, 2);
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new ExitError('kubernetes: the kubeconfig has no current cluster (set KUBECONFIG or kubernetes.context)', 2);
    namespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? undefined;
    return new KubeClient(cluster.server.replace(/\/+$/, ''), namespace, (opts) => kc.applyToHTTPSOptions(opts), o.retriableCodes ?? []);
  }

  /**
   * One API call, retried on connection errors and Patroni's retriable codes until `deadlineMs` (an
   * absolute Date.now() value). Answers 2xx and 4xx (the caller decides what a 404 or 409 means); a
   * 5xx or transport error left at the deadline throws DcsError.
   */
  async request<T = any>(method: string, path: string, deadlineMs: number, body?: unknown, contentType = 'application/json'): Promise<KubeResponse<T>> {
    let last = 'no attempt';
    for (;;) {
      const left = deadlineMs - Date.now();
      if (left <= 0) throw new DcsError(`kubernetes ${method} ${path}: no answer within the retry timeout (${last})`);
      try {
        const r = await this.once<T>(method, path, left, body, contentType);
        if (!this.retriable.has(r.status)) return r;
        last = `HTTP ${r.status}: ${statusMessage(r.body)}`;
      } catch (e) {
        last = errorMessage(e);
      }
      const pause = Math.min(RETRY_PAUSE_MS, deadlineMs - Date.now());
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  }

  private async options(method: string, path: string, timeoutMs: number): Promise<{ url: URL; opts: HttpsOptions }> {
    const url = new URL(this.server + path);
    const opts: HttpsOptions = { method, headers: {} };
    await this.apply(opts);
    opts.timeout = timeoutMs;
    return { url, opts };
  }

  private async once<T>(method: string, path: string, timeoutMs: number, body: unknown, contentType: string): Promise<KubeResponse<T>> {
    const { url, opts } = await this.options(method, path, timeoutMs);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    opts.headers = { ...opts.headers, accept: 'application/json', ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}) };
    const send = url.protocol === 'https:' ? https.request : http.request;
    return new Promise<KubeResponse<T>>((resolve, reject) => {
      const timer = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      const req = send(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end(payload);
    });
  }

  /**
   * A watch stream from `resourceVersion`: one callback per event line. The stream ends when the server
   * closes it (timeoutSeconds), on error, when nothing arrived for `idleMs`, or on abort().
   */
  watch(path: string, onEvent: (e: WatchEvent) => void, idleMs: number, onOpen?: () => void): WatchHandle {
    const ac = new AbortController();
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    void (async () => {
      let req: http.ClientRequest | undefined;
      try {
        const { url, opts } = await this.options('GET', path, idleMs);
        if (ac.signal.aborted) return settle();
        opts.headers = { ...opts.headers, accept: 'application/json' };
        const send = url.protocol === 'https:' ? https.request : http.request;
        req = send(url, { ...opts, signal: ac.signal }, (res) => {
          if (res.statusCode !== 200) {
            // A 410 before the stream starts, or any refusal: surface it as an ERROR event.
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              let obj: Record<string, any> = { code: res.statusCode };
              try {
                obj = { code: res.statusCode, ...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as object) };
              } catch {
                // not JSON
              }
              onEvent({ type: 'ERROR', object: obj });
              settle();
            });
            res.on('error', () => settle());
            return;
          }
          onOpen?.();
          let idle = setTimeout(() => ac.abort(), idleMs);
          const lines = createInterface({ input: res, crlfDelay: Infinity });
          lines.on('line', (line) => {
            clearTimeout(idle);
            idle = setTimeout(() => ac.abort(), idleMs);
            if (!line.trim()) return;
            try {
              onEvent(JSON.parse(line) as WatchEvent);
            } catch {
              ac.abort();
            }
          });
          const end = () => {
            clearTimeout(idle);
            settle();
          };
          lines.on('close', end);
          lines.on('error', end);
          res.on('error', end);
          res.on('close', end);
        });
        req.on('error', () => settle());
        req.on('timeout', () => req?.destroy());
        req.end();
      } catch {
        settle();
      }
    })();
    return { done, abort: () => ac.abort() };
  }
}

export function statusMessage(body: unknown): string {
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  return typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)?.slice(0, 200) ?? '';
}
