/** Builders of HA observations for decision-table tests: a sane default, overridden per case. */
import { loadConfig } from '../../src/config/load.js';
import type { Cluster, Member, MemberData } from '../../src/dcs/types.js';
import { emptyCluster } from '../../src/dcs/types.js';
import type { PgObservation } from '../../src/postgres/types.js';
import type { HaObservation, HaSettings, PeerStatus } from '../../src/ha/types.js';
import { initialMemory } from '../../src/ha/types.js';

export const NOW = 1_000_000;
/** Wall clock of the observation: 2026-11-25T12:00:00Z. */
export const WALL_NOW = Date.parse('2026-11-25T12:00:00Z');

export const settings: HaSettings = {
  ttl: 30,
  loopWait: 10,
  maximumLagOnFailover: 1048576,
  usePgRewind: true,
  removeDataDirectoryOnRewindFailure: false,
  removeDataDirectoryOnDivergedTimelines: false,
  pause: false,
  synchronousMode: false,
  quorumCommit: false,
  replicaWithoutLeader: false,
};

export function member(name: string, data: Partial<MemberData> = {}): Member {
  const port = { m1: 5001, m2: 5002, m3: 5003 }[name] ?? 5999;
  return {
    name,
    version: 1,
    data: {
      conn_url: `postgres://127.0.0.1:${port}/postgres`,
      api_url: `http://127.0.0.1:${port + 3000}/patroni`,
      state: 'running',
      role: 'replica',
      version: '0.1.0',
      xlog_location: 100,
      timeline: 1,
      ...data,
    },
  };
}

export function cluster(c: Partial<Cluster> = {}): Cluster {
  return {
    ...emptyCluster,
    initialize: '7000000000000000001',
    members: [member('m1', { role: 'master' }), member('m2'), member('m3')],
    leader: { name: 'm1', version: 1 },
    ...c,
  };
}

export const pgPrimary: PgObservation = {
  dataDir: 'initialized',
  sysid: '7000000000000000001',
  controlState: 'in production',
  controlTimeline: 1,
  controlCheckpointLsn: 50,
  running: true,
  accepting: true,
  inRecovery: false,
  timeline: 1,
  walPosition: 100,
  receiveLsn: null,
  replayLsn: null,
  replayTimestamp: null,
  replayPaused: false,
  standbySignal: false,
  upstream: null,
  streaming: false,
  serverVersion: 150000,
  pendingRestart: false,
  postmasterStartTime: null,
  replication: [],
};

export const pgReplica: PgObservation = {
  ...pgPrimary,
  controlState: 'in archive recovery',
  inRecovery: true,
  walPosition: 100,
  receiveLsn: 100,
  replayLsn: 100,
  standbySignal: true,
  upstream: '127.0.0.1:5001',
  streaming: true,
};

export const pgStopped: PgObservation = {
  ...pgPrimary,
  controlState: 'shut down in recovery',
  running: false,
  accepting: false,
  inRecovery: null,
  timeline: null,
  walPosition: null,
  standbySignal: true,
};

export const pgEmpty: PgObservation = {
  ...pgStopped,
  dataDir: 'empty',
  sysid: null,
  controlState: null,
  controlTimeline: null,
  controlCheckpointLsn: null,
  standbySignal: false,
};

export function peer(name: string, p: Partial<PeerStatus> = {}): PeerStatus {
  return { name, reachable: true, inRecovery: true, walPosition: 100, nofailover: false, ...p };
}

/** An observation of member `me` (default m2, a streaming replica of m1). */
export function obs(o: Partial<HaObservation> & { cluster?: Cluster } = {}): HaObservation {
  const { cluster: c, ...rest } = o;
  return {
    now: NOW,
    wallNow: WALL_NOW,
    me: { name: 'm2', tags: {} },
    settings,
    dcs: { ok: true, cluster: c ?? cluster() },
    sessionValidUntil: NOW + 30_000,
    pg: pgReplica,
    memory: initialMemory,
    peers: null,
    ...rest,
  };
}

/** A loaded daemon config of member m1 (port 5001) for REST API tests. */
export const memberConfig = loadConfig({
  text: `scope: demo
name: m1
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
etcd3: {hosts: 127.0.0.1:2379}
postgresql:
  listen: 127.0.0.1:5001
  connect_address: 127.0.0.1:5001
  data_dir: /d
  authentication: {superuser: {username: postgres, password: p}, replication: {username: rep, password: r}}
`,
  env: {},
}).config;
