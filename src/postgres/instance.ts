/**
 * One local PostgreSQL, driven through its own programs (initdb, pg_ctl, pg_basebackup, pg_rewind,
 * pg_controldata) and a superuser connection. Never deletes a data directory: a failed copy is
 * cleaned only when the directory was empty before; anything else is moved aside.
 */
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import pg from 'pg';
import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import type { Clock } from '../util/clock.js';
import { PostgresError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { findBinDir } from './bin.js';
import { conninfoValue, defaultSocketDir, listenParts, pgHbaConf, postgresqlConf } from './conf.js';
import { parseControlData, type ControlData } from './controldata.js';
import { formatLsn, parseLsn } from './lsn.js';
import { processStartTime } from '../util/proc.js';
import { chownToPg, ensureDir, runPg, writableByPg, writePgFile, type RunResult } from './run.js';
import type { PgObservation, PostgresControl, ReplicationRow, StopMode, UpstreamConn } from './types.js';

export interface LocalPostgresOptions {
  config: DaemonConfig;
  dynamic: DynamicConfig;
  log: Logger;
  clock: Clock;
}

const EMPTY_OBS: Omit<PgObservation, 'dataDir'> = {
  sysid: null,
  controlState: null,
  controlTimeline: null,
  controlCheckpointLsn: null,
  running: false,
  accepting: false,
  inRecovery: null,
  timeline: null,
  walPosition: null,
  receiveLsn: null,
  replayLsn: null,
  standbySignal: false,
  upstream: null,
  streaming: false,
  serverVersion: null,
  pendingRestart: false,
  postmasterStartTime: null,
  replication: [],
};

export class LocalPostgres implements PostgresControl {
  private readonly cfg: DaemonConfig;
  private dynamic: DynamicConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly bin: string;
  readonly dataDir: string;
  readonly logFile: string;
  private client: pg.Client | null = null;
  private cachedControl: ControlData | null = null;
  /** The standby settings we last wrote (null: primary; undefined: not written by this process yet). */
  private standby: { upstream: UpstreamConn | null } | null | undefined = undefined;

  constructor(o: LocalPostgresOptions) {
    this.cfg = o.config;
    this.dynamic = o.dynamic;
    this.log = o.log;
    this.clock = o.clock;
    this.bin = findBinDir(o.config.postgresql.bin_dir);
    this.dataDir = resolve(o.config.postgresql.data_dir);
    // Outside the data dir: pg_basebackup and pg_rewind copy the data dir wholesale.
    this.logFile = join(dirname(this.dataDir), `${basename(this.dataDir)}.postgresql.log`);
  }

  configure(dynamic: DynamicConfig): void {
    this.dynamic = dynamic;
  }

  private prog(name: string): string {
    return join(this.bin, name);
  }

  private async run(name: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
    const r = await runPg(this.prog(name), args, { timeoutMs, env });
    return r;
  }

  private async mustRun(name: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
    const r = await this.run(name, args, timeoutMs, env);
    if (r.code !== 0) {
      throw new PostgresError(`${name} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`);
    }
    return r;
  }

  // ---------- observation ----------

  private dataDirState(): PgObservation['dataDir'] {
    let entries: string[];
    try {
      entries = readdirSync(this.dataDir);
    } catch {
      return 'empty';
    }
    if (entries.length === 0) return 'empty';
    return entries.includes('PG_VERSION') && existsSync(join(this.dataDir, 'global', 'pg_control')) ? 'initialized' : 'invalid';
  }

  async controlData(): Promise<ControlData | null> {
    const r = await this.run('pg_controldata', ['-D', this.dataDir], 10_000);
    return r.code === 0 ? parseControlData(r.stdout) : null;
  }

  /** The postmaster's PID if postmaster.pid names a live postgres process of this data dir. */
  postmasterPid(): number | null {
    const pid = lockFilePid(join(this.dataDir, 'postmaster.pid'));
    if (pid === null || !isLivePostgres(pid)) return null;
    const cwd = cwdOf(pid);
    // (cwd is unreadable only for another user's process when we are not root: comm is all we can check)
    return cwd === null || cwd === this.dataDir ? pid : null;
  }

  async observe(): Promise<PgObservation> {
    const dataDir = this.dataDirState();
    if (dataDir !== 'initialized') {
      this.cachedControl = null;
      return { ...EMPTY_OBS, dataDir };
    }
    const running = this.postmasterPid() !== null;
    // pg_control changes under a running server only at checkpoints, and what the HA loop needs from it
    // (system identifier, state at shutdown) matters while it is stopped: read it then, not every tick.
    const cd = running && this.cachedControl ? this.cachedControl : await this.controlData();
    this.cachedControl = running ? cd : null;
    const base: PgObservation = {
      ...EMPTY_OBS,
      dataDir,
      sysid: cd?.sysid ?? null,
      controlState: cd?.state ?? null,
      controlTimeline: cd?.timeline ?? null,
      controlCheckpointLsn: cd?.checkpointLsn ?? null,
      standbySignal: existsSync(join(this.dataDir, 'standby.signal')),
      running,
    };
    if (!base.running) {
      await this.disconnect();
      return base;
    }
    try {
      return { ...base, ...(await this.queryState()) };
    } catch (e) {
      this.log.debug({ err: errorMessage(e) }, 'postgresql not answering');
      await this.disconnect();
      return base;
    }
  }

  private async queryState(): Promise<Partial<PgObservation>> {
    const c = await this.connect();
    const r = await c.query(`
      SELECT pg_is_in_recovery() AS rec,
        current_setting('server_version_num')::int AS ver,
        to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS started,
        CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS cur,
        CASE WHEN pg_is_in_recovery() THEN NULL
             ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS ptl,
        pg_last_wal_receive_lsn()::text AS recv,
        pg_last_wal_replay_lsn()::text AS replay,
        (SELECT timeline_id FROM pg_control_checkpoint()) AS ctl,
        EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart) AS pending,
        current_setting('primary_conninfo') AS conninfo,
        (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver WHERE sender_host IS NOT NULL LIMIT 1) AS sender,
        (SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming') AS rtli,
        (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming') > 0 AS streaming`);
    const row = r.rows[0] as Record<string, unknown>;
    const inRecovery = row.rec === true;
    const recv = parseLsn(row.recv as string | null);
    const replay = parseLsn(row.replay as string | null);
    const cur = parseLsn(row.cur as string | null);
    let replication: ReplicationRow[] = [];
    if (!inRecovery) {
      const rr = await c.query(`SELECT usename::text, application_name, host(client_addr) AS client_addr, state, sync_state, sync_priority,
        flush_lsn::text AS flush, replay_lsn::text AS replay FROM pg_stat_replication ORDER BY application_name`);
      replication = rr.rows.map((x: Record<string, unknown>) => ({
        usename: String(x.usename ?? ''),
        application_name: String(x.application_name ?? ''),
        client_addr: (x.client_addr as string | null) ?? null,
        state: String(x.state ?? ''),
        sync_state: String(x.sync_state ?? ''),
        sync_priority: Number(x.sync_priority ?? 0),
        flush_lsn: parseLsn(x.flush as string | null),
        replay_lsn: parseLsn(x.replay as string | null),
      }));
    }
    const positions = [recv, replay].filter((v): v is number => v !== null);
    return {
      accepting: true,
      inRecovery,
      serverVersion: Number(row.ver),
      postmasterStartTime: (row.started as string | null) ?? null,
      timeline: inRecovery ? Number(row.rtli ?? row.ctl) || null : Number(row.ptl) || null,
      walPosition: inRecovery ? (positions.length ? Math.max(...positions) : null) : cur,
      receiveLsn: recv,
      replayLsn: replay,
      streaming: row.streaming === true,
      upstream: inRecovery ? ((row.sender as string | null) ?? conninfoHostPort(String(row.conninfo ?? ''))) : null,
      pendingRestart: row.pending === true,
      replication,
    };
  }

  private connParams(): pg.ClientConfig {
    const su = this.cfg.postgresql.authentication.superuser;
    const { addresses, port } = listenParts(this.cfg.postgresql.listen);
    // TCP to the listen address (loopback when it listens on all of them): the same path remote members use.
    const first = addresses.split(',')[0]!.trim();
    const host = ['*', '0.0.0.0', '', 'localhost'].includes(first) ? '127.0.0.1' : first === '::' ? '::1' : first;
    return {
      host,
      port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      connectionTimeoutMillis: 3000,
      statement_timeout: 10_000,
      application_name: 'pgwarden',
    };
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = new pg.Client(this.connParams());
    c.on('error', () => {
      if (this.client === c) this.client = null;
    });
    await c.connect();
    this.client = c;
    return c;
  }

  private async disconnect(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  async query(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
    try {
      const c = await this.connect();
      return (await c.query(sql, params)).rows as Record<string, unknown>[];
    } catch (e) {
      await this.disconnect();
      throw new PostgresError(`query failed: ${errorMessage(e)}`, { cause: e });
    }
  }

  // ---------- config files ----------

  private writeConfig(standby: { upstream: UpstreamConn | null } | null): void {
    const base = join(this.dataDir, 'postgresql.base.conf');
    writePgFile(
      join(this.dataDir, 'postgresql.conf'),
      postgresqlConf(this.cfg, this.dynamic, {
        includeBase: existsSync(base),
        socketDir: this.socketDir(),
        standby: standby ? { upstream: standby.upstream, useSlots: this.dynamic.postgresql.use_slots } : null,
      }),
    );
    writePgFile(join(this.dataDir, 'pg_hba.conf'), pgHbaConf(this.cfg, this.dynamic));
    const signal = join(this.dataDir, 'standby.signal');
    if (standby) writePgFile(signal, '');
    else rmSync(signal, { force: true });
    this.standby = standby;
  }

  /**
   * The default socket directory is the data dir's parent; when the PostgreSQL user cannot write
   * there, or the socket path would be too long for sun_path (107 bytes), /tmp instead.
   */
  private socketDir(): string {
    const parent = defaultSocketDir(this.cfg);
    const { port } = listenParts(this.cfg.postgresql.listen);
    if (writableByPg(parent) && `${parent}/.s.PGSQL.${port}.lock`.length < 100) return parent;
    this.log.warn({ parent }, 'data dir parent is not usable for the unix socket: using /tmp');
    return '/tmp';
  }

  /** What the running server's standby settings are, for a process that did not write them itself. */
  private async currentStandby(): Promise<{ upstream: UpstreamConn | null } | null> {
    const rows = await this.query(
      "SELECT pg_is_in_recovery() AS rec, current_setting('primary_conninfo') AS ci, current_setting('primary_slot_name') AS slot",
    );
    const r = rows[0] ?? {};
    if (r.rec !== true) return null;
    const hp = conninfoHostPort(String(r.ci ?? ''));
    if (!hp) return { upstream: null };
    const i = hp.lastIndexOf(':');
    const slot = String(r.slot ?? '');
    return { upstream: { host: hp.slice(0, i), port: Number(hp.slice(i + 1)), ...(slot ? { slotName: slot } : {}) } };
  }

  // ---------- lifecycle ----------

  async bootstrap(): Promise<string> {
    this.assertEmpty();
    ensureDir(this.dataDir, 0o700);
    const su = this.cfg.postgresql.authentication.superuser;
    const pwfile = join(dirname(this.dataDir), `.pgwarden-pwfile-${process.pid}`);
    writePgFile(pwfile, `${su.password ?? ''}\n`);
    try {
      const args = ['-D', this.dataDir, '-U', su.username, ...(su.password ? [`--pwfile=${pwfile}`] : []), ...initdbArgs(this.cfg.bootstrap.initdb)];
      this.log.info({ args: args.filter((a) => !a.startsWith('--pwfile')) }, 'running initdb');
      await this.mustRun('initdb', args, 300_000);
    } finally {
      rmSync(pwfile, { force: true });
    }
    renameSync(join(this.dataDir, 'postgresql.conf'), join(this.dataDir, 'postgresql.base.conf'));
    this.writeConfig(null);
    await this.pgCtlStart(300_000);
    await this.waitAccepting(60_000);
    await this.createRoles();
    const cd = await this.controlData();
    if (!cd?.sysid) throw new PostgresError('initdb done, but pg_controldata shows no system identifier');
    return cd.sysid;
  }

  private assertEmpty(): void {
    if (this.dataDirState() !== 'empty') throw new PostgresError(`data directory ${this.dataDir} is not empty: refusing to overwrite it`);
  }

  private async createRoles(): Promise<void> {
    const { superuser, replication, rewind } = this.cfg.postgresql.authentication;
    const c = await this.connect();
    const role = async (name: string, password: string | undefined, options: string[]) => {
      const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount;
      const pw = password !== undefined ? ` PASSWORD ${c.escapeLiteral(password)}` : '';
      await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${c.escapeIdentifier(name)} WITH ${['LOGIN', ...options].join(' ')}${pw}`);
    };
    await role(replication.username, replication.password, ['REPLICATION']);
    if (rewind && rewind.username !== superuser.username) {
      await role(rewind.username, rewind.password, []);
      for (const f of [
        'pg_ls_dir(text, boolean, boolean)',
        'pg_stat_file(text, boolean)',
        'pg_read_binary_file(text)',
        'pg_read_binary_file(text, bigint, bigint, boolean)',
      ]) {
        await c.query(`GRANT EXECUTE ON FUNCTION pg_catalog.${f} TO ${c.escapeIdentifier(rewind.username)}`);
      }
    }
    const reserved = new Set([superuser.username, replication.username, rewind?.username]);
    for (const [name, u] of Object.entries(this.cfg.bootstrap.users ?? {})) {
      if (!reserved.has(name)) await role(name, u.password, (u.options ?? []).map((o) => o.toUpperCase()));
    }
  }

  async createReplica(from: UpstreamConn): Promise<void> {
    this.assertEmpty();
    ensureDir(this.dataDir, 0o700);
    const repl = this.cfg.postgresql.authentication.replication;
    const args = ['-D', this.dataDir, '-h', from.host, '-p', String(from.port), '-U', repl.username, '-X', 'stream', '-c', 'fast', '--no-password', ...basebackupArgs(this.cfg.postgresql.basebackup)];
    this.log.info({ from: `${from.host}:${from.port}` }, 'running pg_basebackup');
    const r = await this.run('pg_basebackup', args, 24 * 3600_000, { PGPASSWORD: repl.password ?? '', PGAPPNAME: this.cfg.name });
    if (r.code !== 0) {
      // The directory was empty before: what is in it now is pg_basebackup's partial copy.
      for (const e of readdirSync(this.dataDir)) rmSync(join(this.dataDir, e), { recursive: true, force: true });
      throw new PostgresError(`pg_basebackup failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
  }

  async start(opts: { upstream: UpstreamConn | null; timeoutMs: number }): Promise<void> {
    if (this.postmasterPid() !== null) return;
    await this.clearStaleLocks(opts.timeoutMs);
    this.writeConfig({ upstream: opts.upstream });
    await this.pgCtlStart(opts.timeoutMs);
    await this.waitAccepting(opts.timeoutMs);
  }

  /**
   * A killed postmaster leaves postmaster.pid and the socket lock files behind. PostgreSQL itself
   * ignores them when their PID is gone, but not when the PID is a zombie nobody reaped or (PIDs wrap)
   * another process: then we remove them, but only once no backend of the old server still works in
   * the data dir (removing postmaster.pid drops PostgreSQL's own shared-memory interlock).
   */
  private async clearStaleLocks(timeoutMs: number): Promise<void> {
    const pidFile = join(this.dataDir, 'postmaster.pid');
    const sockets = String(this.effectiveSocketDirs())
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => join(d, `.s.PGSQL.${listenParts(this.cfg.postgresql.listen).port}.lock`));
    const exists = (f: string) => {
      const pid = lockFilePid(f);
      return pid !== null && processStartTime(pid) !== null;
    };
    // postmaster.pid: stale unless it names our live postmaster. A socket lock: stale unless it names a
    // live postgres (possibly another server on the same port, which must keep it).
    const stale = [
      ...(exists(pidFile) && this.postmasterPid() === null ? [pidFile] : []),
      ...sockets.filter((f) => exists(f) && !isLivePostgres(lockFilePid(f)!)),
    ];
    if (stale.length === 0) return;
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const orphans = processesIn(this.dataDir);
      if (orphans.length === 0) break;
      if (this.clock.now() > deadline) {
        throw new PostgresError(`processes of a killed postmaster still run in ${this.dataDir}: ${orphans.join(', ')}`);
      }
      await this.clock.sleep(100);
    }
    for (const f of stale) {
      this.log.warn({ file: f }, 'removing a stale lock file (its PID is a zombie or another process)');
      rmSync(f, { force: true });
    }
  }

  private effectiveSocketDirs(): string {
    const p = this.cfg.postgresql.parameters.unix_socket_directories ?? this.dynamic.postgresql.parameters.unix_socket_directories;
    return p !== undefined ? String(p) : this.socketDir();
  }

  private async pgCtlStart(timeoutMs: number): Promise<void> {
    closeSync(openSync(this.logFile, 'a'));
    chownToPg(this.logFile);
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const from = statSync(this.logFile).size;
      const secs = String(Math.max(1, Math.ceil((deadline - this.clock.now()) / 1000)));
      const r = await this.run('pg_ctl', ['start', '-D', this.dataDir, '-w', '-t', secs, '-l', this.logFile], timeoutMs + 10_000);
      if (r.code === 0) return;
      const log = this.logTail(from);
      // Backends of a killed postmaster keep its shared memory until they notice and exit.
      if (/pre-existing shared memory block .* is still in use/.test(log) && this.clock.now() < deadline) {
        this.log.info('shared memory of a killed postmaster still in use: waiting for its processes to exit');
        await this.clock.sleep(200);
        continue;
      }
      throw new PostgresError(`pg_ctl start failed (exit ${r.code}): ${log || (r.stderr || r.stdout).trim()}`);
    }
  }

  private logTail(from = 0): string {
    try {
      const text = readFileSync(this.logFile).subarray(from).toString('utf8');
      return text.trim().split('\n').slice(-5).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  private async waitAccepting(timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      try {
        await this.query('SELECT 1');
        return;
      } catch (e) {
        if (this.clock.now() > deadline || this.postmasterPid() === null) {
          throw new PostgresError(`postgresql does not accept connections: ${errorMessage(e)}; log: ${this.logTail()}`);
        }
        await this.clock.sleep(100);
      }
    }
  }

  async stop(mode: StopMode, timeoutMs: number): Promise<void> {
    await this.disconnect();
    if (this.postmasterPid() === null) return;
    // Round down: a demotion's deadline is a promise (our lock may expire then), not a suggestion.
    const secs = String(Math.max(1, Math.floor(timeoutMs / 1000)));
    const r = await this.run('pg_ctl', ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', secs], timeoutMs + 5000);
    if (r.code === 0 || this.postmasterPid() === null) return;
    if (mode !== 'immediate') {
      this.log.warn({ mode }, `pg_ctl stop -m ${mode} did not finish in time: stopping immediately`);
      const r2 = await this.run('pg_ctl', ['stop', '-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30'], 35_000);
      if (r2.code === 0 || this.postmasterPid() === null) return;
    }
    throw new PostgresError(`pg_ctl stop failed: ${r.stderr.trim()}`);
  }

  async promote(timeoutMs: number): Promise<void> {
    // pg_ctl's own wait polls slowly; we watch pg_is_in_recovery() closely instead: every
    // millisecond here is a millisecond without a primary.
    await this.mustRun('pg_ctl', ['promote', '-D', this.dataDir, '-W'], 30_000);
    const deadline = this.clock.now() + timeoutMs;
    while ((await this.query('SELECT pg_is_in_recovery() AS r'))[0]?.r === true) {
      if (this.clock.now() > deadline) throw new PostgresError('promote: still in recovery');
      await this.clock.sleep(10);
    }
    this.writeConfig(null);
    this.checkpointInBackground();
  }

  /**
   * pg_rewind of other members reads our timeline from the control file, which a checkpoint updates
   * (Patroni's checkpoint_after_promote). Writes are accepted meanwhile, so nobody waits for it.
   */
  private checkpointInBackground(): void {
    const c = new pg.Client({ ...this.connParams(), statement_timeout: 0 });
    c.on('error', () => undefined);
    void c
      .connect()
      .then(() => c.query('CHECKPOINT'))
      .then(() => this.log.info('checkpoint after promote done'))
      .catch((e: unknown) => this.log.warn({ err: errorMessage(e) }, 'checkpoint after promote failed'))
      .finally(() => void c.end().catch(() => undefined));
  }

  async follow(upstream: UpstreamConn): Promise<void> {
    const rows = await this.query('SELECT pg_is_in_recovery() AS r');
    if (rows[0]?.r !== true) throw new PostgresError('follow: postgresql is not running as a replica');
    this.writeConfig({ upstream });
    await this.query('SELECT pg_reload_conf()');
  }

  async reloadConfig(): Promise<void> {
    if (this.postmasterPid() === null) return;
    if (this.standby === undefined) this.standby = await this.currentStandby();
    this.writeConfig(this.standby);
    await this.query('SELECT pg_reload_conf()');
  }

  // ---------- rejoin ----------

  private async withSource<T>(from: UpstreamConn, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const su = this.cfg.postgresql.authentication.superuser;
    const c = new pg.Client({ host: from.host, port: from.port, user: su.username, password: su.password, database: 'postgres', connectionTimeoutMillis: 5000, statement_timeout: 10_000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async rewindNeeded(from: UpstreamConn): Promise<boolean> {
    const cd = await this.controlData();
    if (!cd?.timeline) throw new PostgresError('pg_controldata did not give a timeline');
    const { tl, history } = await this.withSource(from, async (c) => {
      const r = await c.query(`SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
        ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tl`);
      const tl = Number(r.rows[0]?.tl);
      if (tl <= cd.timeline!) return { tl, history: '' };
      const h = await c.query('SELECT pg_read_file($1) AS h', [`pg_wal/${tl.toString(16).toUpperCase().padStart(8, '0')}.history`]);
      return { tl, history: String(h.rows[0]?.h ?? '') };
    });
    const pos = localPosition(cd);
    const end = pos && !pos.inRecovery ? await this.checkpointEnd(pos.timeline, pos.lsn) : null;
    return needsRewind(cd, tl, history, end);
  }

  /**
   * Where the checkpoint record at `lsn` ends (Patroni reads it with pg_waldump: the record after a
   * shutdown checkpoint is missing, and the error names where it would have started). null if unknown.
   */
  private async checkpointEnd(timeline: number, lsn: number): Promise<number | null> {
    const args = ['-p', join(this.dataDir, 'pg_wal'), '-t', String(timeline), '-s', formatLsn(lsn), '-n', '2'];
    const r = await this.run('pg_waldump', args, 30_000).catch(() => null);
    if (!r) return null;
    return parseWaldumpEnd(r.stdout, r.stderr, lsn);
  }

  /** pg_rewind reads the source's timeline from its pg_control: it must have checkpointed since promotion. */
  private async ensureSourceCheckpoint(from: UpstreamConn): Promise<void> {
    await this.withSource(from, async (c) => {
      const r = await c.query(`SELECT pg_is_in_recovery() AS rec, NOT pg_is_in_recovery()
          AND ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int = timeline_id AS ok
        FROM pg_control_checkpoint()`);
      if (r.rows[0]?.rec === true) throw new PostgresError(`rewind source ${from.host}:${from.port} is in recovery`);
      if (r.rows[0]?.ok !== true) {
        this.log.info('rewind source has not checkpointed since its promotion: running CHECKPOINT there');
        await c.query('SET statement_timeout = 0');
        await c.query('CHECKPOINT');
      }
    });
  }

  async rewind(from: UpstreamConn): Promise<void> {
    const { superuser, rewind } = this.cfg.postgresql.authentication;
    const user = rewind ?? superuser;
    await this.clearStaleLocks(60_000);
    await this.ensureSourceCheckpoint(from);
    const src = `host=${conninfoValue(from.host)} port=${from.port} user=${conninfoValue(user.username)} dbname=postgres`;
    this.log.info({ from: `${from.host}:${from.port}` }, 'running pg_rewind');
    const r = await this.run('pg_rewind', [`--target-pgdata=${this.dataDir}`, `--source-server=${src}`, '--progress'], 3600_000, { PGPASSWORD: user.password ?? '' });
    if (r.code !== 0) throw new PostgresError(`pg_rewind failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    // pg_rewind copied the source's config files: ours are written again on the next start.
    this.writeConfig({ upstream: from });
  }

  async moveDataDirAside(reason: string): Promise<string> {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const target = `${this.dataDir}.${reason}.${stamp}`;
    renameSync(this.dataDir, target);
    return target;
  }

  async timelineHistory(): Promise<Array<[number, number, string]>> {
    const rows = await this.query(`SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tl`);
    const tl = Number(rows[0]?.tl);
    if (!(tl > 1)) return [];
    const h = await this.query('SELECT pg_read_file($1) AS h', [`pg_wal/${tl.toString(16).toUpperCase().padStart(8, '0')}.history`]);
    return parseHistoryFile(String(h[0]?.h ?? ''));
  }

  async syncSlots(names: readonly string[]): Promise<void> {
    const rows = await this.query("SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical'");
    const have = new Map(rows.map((r) => [String(r.slot_name), r.active === true]));
    for (const n of names) {
      if (!have.has(n)) {
        await this.query('SELECT pg_create_physical_replication_slot($1, true)', [n]);
        this.log.info({ slot: n }, 'created replication slot');
      }
    }
    for (const [n, active] of have) {
      if (!names.includes(n) && !active) {
        await this.query('SELECT pg_drop_replication_slot($1)', [n]);
        this.log.info({ slot: n }, 'dropped replication slot of a member that left');
      }
    }
  }

  async close(): Promise<void> {
    await this.disconnect();
  }
}

export interface LocalPosition {
  inRecovery: boolean;
  timeline: number;
  lsn: number;
}

/**
 * Patroni rewind.py `_get_local_timeline_lsn_from_controldata`: a stopped replica counts from its
 * minimum recovery point, a cleanly stopped primary from its shutdown checkpoint; null when it crashed.
 */
export function localPosition(cd: ControlData): LocalPosition | null {
  let state = cd.state;
  if (state === 'shut down in recovery' || state === 'in archive recovery') {
    if (cd.minRecoveryLsn && cd.minRecoveryTimeline) return { inRecovery: true, timeline: cd.minRecoveryTimeline, lsn: cd.minRecoveryLsn };
    state = 'shut down'; // it was a primary when it stopped
  }
  if (state === 'shut down' && cd.timeline && cd.checkpointLsn !== null) return { inRecovery: false, timeline: cd.timeline, lsn: cd.checkpointLsn };
  return null;
}

/**
 * Patroni rewind.py `_check_timeline_and_lsn`, from our pg_control, the source's current timeline and
 * its history file. `checkpointEnd`: where our shutdown checkpoint record ends (a former primary is in
 * sync only when the switch point is exactly there). A crashed data dir (no clean position) needs a
 * rewind whenever its timeline differs from the source's.
 */
export function needsRewind(cd: ControlData, sourceTl: number, historyFile: string, checkpointEnd: number | null = null): boolean {
  const pos = localPosition(cd);
  if (!pos) return (cd.timeline ?? 0) !== sourceTl;
  if (pos.timeline > sourceTl) return true;
  if (pos.timeline === sourceTl) return false;
  for (const [parent, switchpoint] of parseHistoryFile(historyFile)) {
    if (parent === pos.timeline) {
      if (pos.inRecovery) return pos.lsn > switchpoint;
      if (pos.lsn >= switchpoint) return true;
      return switchpoint !== checkpointEnd;
    }
    if (parent > pos.timeline) return true;
  }
  return true;
}

/**
 * The end of the record at `lsn` from `pg_waldump -s lsn -n 2` on a stopped cluster: one record is
 * printed, then reading the next fails with "error in WAL record at <lsn>: invalid record length at <end>".
 */
export function parseWaldumpEnd(stdout: string, stderr: string, lsn: number): number | null {
  const out = stdout.trim().split('\n').filter(Boolean);
  if (out.length !== 1) return null;
  const m = /error in WAL record at ([0-9A-Fa-f]+\/[0-9A-Fa-f]+): invalid record length at ([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(stderr);
  if (!m || parseLsn(m[1]) !== lsn) return null;
  return parseLsn(m[2]);
}

export function parseHistoryFile(text: string): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)\s*(.*)$/.exec(line);
    if (m) out.push([Number(m[1]), parseLsn(m[2]!)!, m[3]!.trim()]);
  }
  return out;
}

/** The PID on the first line of postmaster.pid or a socket lock file. */
function lockFilePid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** A running (not zombie) process named postgres. */
function isLivePostgres(pid: number): boolean {
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return false;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function cwdOf(pid: number): string | null {
  try {
    return resolve(readlinkSync(`/proc/${pid}/cwd`));
  } catch {
    return null;
  }
}

/** Live postgres processes working in `dataDir` (every server process has the data dir as its cwd). */
function processesIn(dataDir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (pid > 0 && isLivePostgres(pid) && cwdOf(pid) === dataDir) out.push(pid);
  }
  return out;
}

function conninfoHostPort(conninfo: string): string | null {
  const host = /(?:^|\s)host=('?)([^'\s]+)\1/.exec(conninfo)?.[2];
  const port = /(?:^|\s)port=('?)(\d+)\1/.exec(conninfo)?.[2];
  return host ? `${host}:${port ?? '5432'}` : null;
}

function initdbArgs(opts: DaemonConfig['bootstrap']['initdb']): string[] {
  const out: string[] = [];
  for (const o of opts) {
    if (typeof o === 'string') out.push(`--${o}`);
    else for (const [k, v] of Object.entries(o)) out.push(`--${k}=${v}`);
  }
  return out;
}

function basebackupArgs(opts: DaemonConfig['postgresql']['basebackup']): string[] {
  if (!opts) return [];
  const list = Array.isArray(opts) ? opts : [opts];
  return initdbArgs(list);
}
