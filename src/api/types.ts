import type { DaemonConfig } from '../config/types.js';
import type { Cluster } from '../dcs/types.js';
import type { HaView } from '../ha/loop.js';

/** A consistent, cheap snapshot owned by the HA loop, plus identity. */
export interface ApiView extends HaView {
  name: string;
  scope: string;
  version: string;
  config: DaemonConfig;
  paused: boolean;
}

export interface ApiBackend {
  view(): ApiView;
  /** A fresh store read (/cluster and /history force one, as Patroni does). */
  loadCluster(): Promise<Cluster>;
  /** Monotonic ms, for /liveness. */
  now(): number;
  /** POST /reload: re-read the config (SIGHUP equivalent). */
  requestReload?(): void;
}

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  /** text/plain bodies (metrics, plain messages); JSON otherwise. */
  text?: string;
  headers?: Record<string, string>;
}
