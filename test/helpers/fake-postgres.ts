/** An in-memory PostgreSQL for HA loop tests: the PostgresControl port, no processes. */
import type { DynamicConfig } from '../../src/config/types.js';
import type { LocalSlot } from '../../src/ha/slots.js';
import type { CopiedSlot, SlotsPort } from '../../src/postgres/slots.js';
import type { PgObservation, PostgresControl, StopMode, UpstreamConn } from '../../src/postgres/types.js';

/** Physical slots in memory (no logical decoding, no leader to copy from): what the HA loop tests need. */
class FakeSlots implements SlotsPort {
  readonly physical = new Map<string, LocalSlot>();

  constructor(private readonly lsn: () => number) {}

  async list(): Promise<LocalSlot[]> {
    return [...this.physical.values()];
  }

  async drop(name: string): Promise<{ active: boolean; dropped: boolean }> {
    return { active: false, dropped: this.physical.delete(name) };
  }

  async createPhysical(name: string): Promise<void> {
    if (this.physical.has(name)) return;
    const at = this.lsn();
    this.physical.set(name, {
      name,
      type: 'physical',
      plugin: null,
      database: null,
      active: false,
      xmin: null,
      catalogXmin: null,
      restartLsn: at,
      confirmedFlushLsn: null,
      walStatus: 'reserved',
    });
  }

  async createLogical(name: string): Promise<void> {
    throw new Error(`fake: no logical slots (${name})`);
  }

  async advance(name: string, lsn: number): Promise<void> {
    const s = this.physical.get(name);
    if (s) this.physical.set(name, { ...s, restartLsn: lsn });
  }

  async readFromLeader(): Promise<CopiedSlot[]> {
    return [];
  }

  async leaderCatalogXmins(): Promise<Map<string, number | null>> {
    return new Map();
  }

  async install(): Promise<void> {}

  async setHotStandbyFeedback(): Promise<void> {}

  async hotStandbyFeedback(): Promise<boolean> {
    return false;
  }
}

export interface FakeCluster {
  sysid: string;
  /** Shared WAL "position" of the primary, advanced by writes. */
  instances: Map<string, FakePostgres>;
}

export class FakePostgres implements PostgresControl {
  dataDir: 'empty' | 'initialized' = 'empty';
  running = false;
  inRecovery = true;
  wal = 0;
  timeline = 1;
  sysid: string | null = null;
  upstream: UpstreamConn | null = null;
  readonly replicationSlots = new FakeSlots(() => this.wal);
  calls: string[] = [];
  /** Set to make the next start fail. */
  failStart = false;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly world: FakeCluster,
  ) {
    world.instances.set(name, this);
  }

  configure(_dynamic: DynamicConfig): void {}

  async observe(): Promise<PgObservation> {
    const up = this.running;
    return {
      dataDir: this.dataDir,
      sysid: this.sysid,
      controlState: this.dataDir === 'empty' ? null : this.inRecovery ? 'shut down in recovery' : 'shut down',
      controlTimeline: this.dataDir === 'empty' ? null : this.timeline,
      controlCheckpointLsn: this.dataDir === 'empty' ? null : this.wal,
      running: up,
      accepting: up,
      inRecovery: up ? this.inRecovery : null,
      timeline: up ? this.timeline : null,
      walPosition: up ? this.wal : null,
      receiveLsn: up && this.inRecovery ? this.wal : null,
      replayLsn: up && this.inRecovery ? this.wal : null,
      replayTimestamp: null,
      replayPaused: false,
      standbySignal: this.inRecovery,
      upstream: up && this.inRecovery && this.upstream ? `${this.upstream.host}:${this.upstream.port}` : null,
      streaming: up && this.inRecovery && this.upstream !== null,
      serverVersion: up ? 150000 : null,
      pendingRestart: false,
      postmasterStartTime: null,
      replication: [],
    };
  }

  async bootstrap(): Promise<string> {
    this.calls.push('bootstrap');
    this.dataDir = 'initialized';
    this.sysid = this.world.sysid;
    this.running = true;
    this.inRecovery = false;
    this.wal = 100;
    return this.sysid;
  }

  private source(from: UpstreamConn): FakePostgres {
    const s = [...this.world.instances.values()].find((i) => i.port === from.port);
    if (!s || !s.running) throw new Error(`no running server at ${from.port}`);
    return s;
  }

  async createReplica(from: UpstreamConn | null): Promise<void> {
    this.calls.push('createReplica');
    const s = this.source(from!);
    this.dataDir = 'initialized';
    this.sysid = s.sysid;
    this.wal = s.wal;
    this.timeline = s.timeline;
    this.inRecovery = true;
  }

  cancelCopy(): void {
    this.calls.push('cancelCopy');
  }

  async start(opts: { upstream: UpstreamConn | null }): Promise<void> {
    this.calls.push(`start:${opts.upstream?.port ?? 'none'}`);
    if (this.failStart) throw new Error('start failed (test fault)');
    this.running = true;
    this.inRecovery = true;
    this.upstream = opts.upstream;
  }

  async stop(mode: StopMode): Promise<void> {
    if (this.running) this.calls.push(`stop:${mode}`);
    this.running = false;
  }

  syncNames: string | undefined = undefined;

  async setSynchronousStandbyNames(v: string | undefined): Promise<void> {
    this.syncNames = v;
  }

  async checkpoint(): Promise<void> {
    this.calls.push('checkpoint');
  }

  async restart(): Promise<void> {
    if (!this.running) throw new Error('restart: not running');
    this.calls.push('restart');
  }

  async promote(): Promise<void> {
    this.calls.push('promote');
    this.inRecovery = false;
    this.timeline += 1;
    this.upstream = null;
  }

  async follow(upstream: UpstreamConn): Promise<void> {
    this.calls.push(`follow:${upstream.port}`);
    this.upstream = upstream;
  }

  async rewindNeeded(from: UpstreamConn): Promise<boolean> {
    return this.source(from).timeline !== this.timeline;
  }

  async rewind(from: UpstreamConn): Promise<void> {
    this.calls.push('rewind');
    this.timeline = this.source(from).timeline;
  }

  async moveDataDirAside(): Promise<string> {
    this.dataDir = 'empty';
    return '/moved';
  }

  /** Names of the physical slots this server has. */
  get slots(): string[] {
    return [...this.replicationSlots.physical.keys()];
  }

  async reloadConfig(): Promise<void> {}

  async close(): Promise<void> {}
}
