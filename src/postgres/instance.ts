/**
 * One local PostgreSQL, driven through its own programs (initdb, postgres, pg_basebackup, pg_rewind,
 * pg_controldata, pg_waldump) and a superuser connection. Never deletes a data directory: a failed copy
 * is cleaned only when the directory was empty before; anything else is moved aside.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import pg from 'pg';
import type { DaemonConfig, DynamicConfig } from '../config/types.js';
import { isTruthy } from '../config/values.js';
import type { Clock } from '../util/clock.js';
import { CopyCancelledError, PostgresError, PromoteCancelledError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { processStartTime } from '../util/proc.js';
import { findBinDir } from './bin.js';
import { conninfoValue, defaultSocketDir, listenParts, pgHbaConf, postgresqlConf, sanitizeAutoConf, type StandbySettings } from './conf.js';
import { parseControlData, type ControlData } from './controldata.js';
import { formatLsn, parseLsn } from './lsn.js';
import { BASEBACKUP_NOT_ALLOWED, INITDB_NOT_ALLOWED, fastSyncArgs, replicaMethodWorksWithoutLeader, toolArgs } from './options.js';
import { isLivePostgres, lockFilePid, postmasterReady, processesIn, runningPostmaster } from './postmaster.js';
import { historyFilePath, localPosition, needsRewind, parseHistoryFile, parseWaldumpEnd } from './rewind.js';
import { CallbackRunner, splitCommand, type CallbackAction, type CallbackRole } from './callbacks.js';
import { chownToPg, ensureDir, runPg, spawnServer, writableByPg, writePgFile, type RunResult } from './runas.js';
import type { PgObservation, PostgresControl, ReplicationRow, StopMode, UpstreamConn } from './types.js';
import { PgSlots, type SlotsPort } from './slots.js';

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
  replayTimestamp: null,
  replayPaused: false,
  standbySignal: false,
  upstream: null,
  streaming: false,
  serverVersion: null,
  pendingRestart: false,
  postmasterStartTime: null,
  replication: [],
};

/** The current timeline of a primary, right after promotion too (pg_control lags until a checkpoint). */
const PRIMARY_TIMELINE_SQL = "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int";

/** What the standby settings in force are: null for a primary. */
type Standby = { upstream: UpstreamConn | null } | null;

/** Restores, archive recovery and replica methods may take long; still bounded. */
const LONG_OPERATION_MS = 24 * 3600_000;

/** A fencing script gets this long; one that hangs must not hold a promotion forever. */
const PRE_PROMOTE_TIMEOUT_MS = 60_000;
/** How often a start looks whether the server is ready (pg_ctl -w: every 100 ms). */
const READY_POLL_MS = 10;

const STOP_SIGNALS: Readonly<Record<StopMode, NodeJS.Signals>> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };

export class LocalPostgres implements PostgresControl {
  private readonly cfg: DaemonConfig;
  private dynamic: DynamicConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly bin: string;
  readonly dataDir: string;
  /** The server log: outside the data dir, because pg_basebackup and pg_rewind copy the data dir wholesale. */
  readonly logFile: string;
  private client: pg.Client | null = null;
  private cachedControl: ControlData | null = null;
  /** synchronous_standby_names managed by the HA loop in synchronous_mode (undefined: not managed). */
  private syncNames: string | undefined = undefined;
  /** The standby settings we last wrote (undefined: not written by this process yet). */
  private standby: Standby | undefined = undefined;
  private readonly callbacks: CallbackRunner;
  /** The role callbacks last reported (null: not known yet), to tell on_role_change from on_start. */
  private cbRole: CallbackRole | null = null;
  private binMajor: Promise<number> | null = null;
  /** The data dir is a pg_basebackup copy we synced and have not started yet. */
  private freshCopy = false;
  /** The createReplica() in progress, for cancelCopy(). */
  private copying: AbortController | null = null;
  /** Connect through the Unix socket, not TCP (a custom bootstrap before our passwords are set). */
  private viaSocket = false;
  /** Archive recovery settings while a custom bootstrap recovers (null otherwise). */
  private recoveryParams: Record<string, string | number | boolean> | null = null;
  /** The upstream the last follow() applied (JSON) and to which postmaster: a standby leader's repeat is skipped. */
  private followed: string | null = null;
  private followedPid: number | null = null;
  /** hot_standby_feedback forced on for permanent logical slots on a replica (src/postgres/slots.ts). */
  private hotStandbyFeedback = false;
  /** Replication slot effects (src/postgres/slots.ts). */
  readonly replicationSlots: SlotsPort;

  constructor(o: LocalPostgresOptions) {
    this.cfg = o.config;
    this.dynamic = o.dynamic;
    this.log = o.log;
    this.clock = o.clock;
    this.bin = findBinDir(o.config.postgresql.bin_dir);
    this.dataDir = resolve(o.config.postgresql.data_dir);
    this.logFile = join(dirname(this.dataDir), `${basename(this.dataDir)}.postgresql.log`);
    this.callbacks = new CallbackRunner({ callbacks: () => this.cfg.postgresql.callbacks, scope: this.cfg.scope, log: this.log });
    this.replicationSlots = new PgSlots({
      query: (sql, params) => this.query(sql, params),
      clientConfig: (database) => ({ ...this.connParams(), database }),
      superuser: this.cfg.postgresql.authentication.superuser,
      dataDir: this.dataDir,
      restartWith: (whileStopped, timeoutMs) => this.restart(timeoutMs, whileStopped),
      setHotStandbyFeedback: async (on) => {
        if (on === this.hotStandbyFeedback) return;
        this.hotStandbyFeedback = on;
        this.log.info({ hot_standby_feedback: on ? 'on (permanent logical slots)' : '(as configured)' }, 'hot_standby_feedback changed');
        await this.reloadConfig();
      },
      log: this.log,
    });
  }

  private callback(action: CallbackAction, role: CallbackRole): void {
    this.cbRole = role;
    this.callbacks.call(action, role);
  }

  configure(dynamic: DynamicConfig): void {
    this.dynamic = dynamic;
  }

  private run(name: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<RunResult> {
    return runPg(join(this.bin, name), args, { timeoutMs, env, ...(signal ? { signal } : {}) });
  }

  private async mustRun(name: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
    const r = await this.run(name, args, timeoutMs, env);
    if (r.code !== 0) throw new PostgresError(`${name} failed (${exitText(r)}): ${lastLines(r.stderr || r.stdout, 5)}`);
    return r;
  }

  // ---------- observation ----------

  private dataDirState(): PgObservation['dataDir'] {
    let entries: string[];
    try {
      entries = readdirSync(this.dataDir);
    } catch (e) {
      // Only a missing directory is empty: a file in its place, or one we cannot read, is not ours to fill.
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'empty' : 'invalid';
    }
    if (entries.length === 0) return 'empty';
    return entries.includes('PG_VERSION') && existsSync(join(this.dataDir, 'global', 'pg_control')) ? 'initialized' : 'invalid';
  }

  async controlData(): Promise<ControlData | null> {
    const r = await this.run('pg_controldata', ['-D', this.dataDir], 10_000).catch(() => null);
    return r?.code === 0 ? parseControlData(r.stdout) : null;
  }

  /** The postmaster's PID if postmaster.pid names a live postgres process of this data dir. */
  postmasterPid(): number | null {
    return runningPostmaster(this.dataDir);
  }

  async observe(): Promise<PgObservation> {
    const dataDir = this.dataDirState();
    if (dataDir !== 'initialized') {
      this.cachedControl = null;
      await this.disconnect();
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
    if (!running) {
      await this.disconnect();
      return base;
    }
    try {
      const o = { ...base, ...(await this.queryState()) };
      // A server this process found running (a daemon restart): callbacks start from its role.
      if (this.cbRole === null && o.inRecovery !== undefined && o.inRecovery !== null) this.cbRole = o.inRecovery ? 'replica' : 'master';
      return o;
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
        to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"+00:00"') AS started,
        CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS cur,
        CASE WHEN pg_is_in_recovery() THEN NULL ELSE ${PRIMARY_TIMELINE_SQL} END AS ptl,
        pg_last_wal_receive_lsn()::text AS recv,
        pg_last_wal_replay_lsn()::text AS replay,
        CASE WHEN pg_is_in_recovery() THEN to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END AS replay_ts,
        CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS replay_paused,
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
    const positions = [recv, replay].filter((v): v is number => v !== null);
    return {
      accepting: true,
      inRecovery,
      serverVersion: Number(row.ver),
      postmasterStartTime: (row.started as string | null) ?? null,
      timeline: inRecovery ? Number(row.rtli ?? row.ctl) || null : Number(row.ptl) || null,
      walPosition: inRecovery ? (positions.length ? Math.max(...positions) : null) : parseLsn(row.cur as string | null),
      receiveLsn: recv,
      replayLsn: replay,
      replayTimestamp: (row.replay_ts as string | null) ?? null,
      replayPaused: row.replay_paused === true,
      streaming: row.streaming === true,
      upstream: inRecovery ? ((row.sender as string | null) ?? conninfoHostPort(String(row.conninfo ?? ''))) : null,
      pendingRestart: row.pending === true,
      replication: inRecovery ? [] : await this.replicationRows(c),
    };
  }

  private async replicationRows(c: pg.Client): Promise<ReplicationRow[]> {
    const rr = await c.query(`SELECT usename::text, application_name, host(client_addr) AS client_addr, state, sync_state,
      sync_priority, flush_lsn::text AS flush, replay_lsn::text AS replay FROM pg_stat_replication ORDER BY application_name`);
    return rr.rows.map((x: Record<string, unknown>) => ({
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

  private connParams(): pg.ClientConfig {
    const su = this.cfg.postgresql.authentication.superuser;
    const { addresses, port } = listenParts(this.cfg.postgresql.listen);
    // TCP to the listen address (loopback when it listens on all of them): the same path remote members use.
    const first = addresses.split(',')[0]!.trim();
    const tcpHost = ['*', '0.0.0.0', '', 'localhost'].includes(first) ? '127.0.0.1' : first === '::' ? '::1' : first;
    // A restored cluster knows the backup's passwords until we set ours: the local socket (trust) meanwhile.
    const host = this.viaSocket ? this.effectiveSocketDirs().split(',')[0]!.trim() : tcpHost;
    return {
      host,
      port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      application_name: 'pgwarden',
      connectionTimeoutMillis: 3000,
      // statement_timeout bounds a busy server; query_timeout a frozen one (SIGSTOP, a hung disk).
      statement_timeout: 10_000,
      query_timeout: 15_000,
      keepAlive: true,
    };
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = new pg.Client(this.connParams());
    c.on('error', () => {
      if (this.client === c) this.client = null;
    });
    try {
      await c.connect();
    } catch (e) {
      void endWithin(c, 1000);
      throw e;
    }
    this.client = c;
    return c;
  }

  private async disconnect(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await endWithin(c, 1000);
  }

  /** One query on the reused superuser connection; reconnects next time after any failure. */
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

  private writeConfig(standby: Standby): void {
    const settings: StandbySettings | null = standby ? { upstream: standby.upstream, useSlots: this.dynamic.postgresql.use_slots } : null;
    writePgFile(
      join(this.dataDir, 'postgresql.conf'),
      postgresqlConf(this.cfg, this.dynamic, {
        includeBase: existsSync(join(this.dataDir, 'postgresql.base.conf')),
        socketDir: this.socketDir(),
        standby: settings,
        ...(this.syncNames !== undefined ? { synchronousStandbyNames: this.syncNames } : {}),
        ...(this.recoveryParams ? { recoveryParameters: this.recoveryParams } : {}),
        ...(this.hotStandbyFeedback && standby ? { hotStandbyFeedback: true } : {}),
      }),
    );
    writePgFile(join(this.dataDir, 'pg_hba.conf'), pgHbaConf(this.cfg, this.dynamic));
    this.sanitizeAutoConf();
    const signal = join(this.dataDir, 'standby.signal');
    if (standby) writePgFile(signal, '');
    else rmSync(signal, { force: true });
    this.standby = standby;
  }

  private sanitizeAutoConf(): void {
    const file = join(this.dataDir, 'postgresql.auto.conf');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    const clean = sanitizeAutoConf(text);
    if (clean === null) return;
    this.log.info('removing recovery settings from postgresql.auto.conf (pgwarden writes them)');
    writePgFile(file, clean);
  }

  /**
   * The default socket directory is the data dir's parent; when the PostgreSQL user cannot write
   * there, or the socket path would be too long for sun_path (107 bytes), /var/run/postgresql or /tmp.
   */
  private socketDir(): string {
    const { port } = listenParts(this.cfg.postgresql.listen);
    const parent = defaultSocketDir(this.cfg);
    const fits = (d: string) => writableByPg(d) && `${d}/.s.PGSQL.${port}.lock`.length < 100;
    if (fits(parent)) return parent;
    const fallback = ['/var/run/postgresql', '/tmp'].find(fits) ?? '/tmp';
    this.log.warn({ parent, using: fallback }, 'data dir parent is not usable for the unix socket');
    return fallback;
  }

  private effectiveSocketDirs(): string {
    const p = this.cfg.postgresql.parameters.unix_socket_directories ?? this.dynamic.postgresql.parameters.unix_socket_directories;
    return p !== undefined ? String(p) : this.socketDir();
  }

  /** What the running server's standby settings are, for a process that did not write them itself. */
  private async currentStandby(): Promise<Standby> {
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

  // ---------- bootstrap and copies ----------

  async bootstrap(): Promise<string> {
    const custom = this.cfg.bootstrap.method_config;
    if (custom) return this.customBootstrap(custom);
    const options = toolArgs('bootstrap.initdb', this.cfg.bootstrap.initdb, INITDB_NOT_ALLOWED);
    this.assertEmpty();
    ensureDir(this.dataDir, 0o700);
    const su = this.cfg.postgresql.authentication.superuser;
    const pwfile = su.password !== undefined ? writeSecretFile(`${su.password}\n`) : null;
    const sync = fastSyncArgs(options);
    try {
      const args = ['-D', this.dataDir, `--username=${su.username}`, ...(pwfile ? [`--pwfile=${pwfile}`] : []), ...sync.args, ...options];
      this.log.info({ options }, 'running initdb');
      await this.mustRun('initdb', args, 600_000);
    } finally {
      if (pwfile) rmSync(pwfile, { force: true });
    }
    // The syncfs runs while the server starts and gets its roles (PostgreSQL does not sync at a start after
    // a clean shutdown, and syncfs also takes what it writes meanwhile); the bootstrap ends, and the
    // cluster is announced, only once it is done.
    const synced = sync.syncAfter ? this.syncFileSystem() : Promise.resolve();
    synced.catch(() => undefined);
    try {
      renameSync(join(this.dataDir, 'postgresql.conf'), join(this.dataDir, 'postgresql.base.conf'));
      this.writeConfig(null);
      await this.clearStaleLocks(60_000);
      await this.startServer(300_000);
      await this.waitAccepting(60_000);
      await this.createRoles();
    } catch (e) {
      await synced.catch(() => undefined);
      throw e;
    }
    await synced;
    return this.finishBootstrap('initdb');
  }

  /** Both bootstrap paths end alike: the post_bootstrap script, the system identifier, on_start. */
  private async finishBootstrap(what: string): Promise<string> {
    await this.postBootstrap();
    const cd = await this.controlData();
    if (!cd?.sysid) throw new PostgresError(`${what} done, but pg_controldata shows no system identifier`);
    this.callback('on_start', 'master');
    return cd.sysid;
  }

  /**
   * Patroni's call_post_bootstrap: `<script> <connstring>` to the new primary as the superuser (password
   * in a pgpass file, synchronous_commit=local), waited for; a non-zero exit fails the bootstrap.
   */
  private async postBootstrap(): Promise<void> {
    const cmd = this.cfg.bootstrap.post_bootstrap ?? this.cfg.bootstrap.post_init;
    if (!cmd) return;
    const su = this.cfg.postgresql.authentication.superuser;
    const { port } = listenParts(this.cfg.postgresql.listen);
    const host = this.effectiveSocketDirs().split(',')[0]!.trim();
    const connstring = `dbname=postgres user=${conninfoValue(su.username)} host=${conninfoValue(host)} port=${port}`;
    // libpq matches a connection through a socket directory against that directory in the pgpass host field.
    const pgpass = writePgpass(host, port, su);
    const argv = [...splitCommand(cmd), connstring];
    this.log.info({ script: argv[0] }, 'running post_bootstrap script');
    try {
      const r = await runPg(argv[0]!, argv.slice(1), { timeoutMs: 24 * 3600_000, env: { PGPASSFILE: pgpass, PGOPTIONS: '-c synchronous_commit=local' } });
      if (r.code !== 0) throw new PostgresError(`post_bootstrap script ${cmd} failed (${exitText(r)}): ${lastLines(r.stderr || r.stdout, 3)}`);
    } finally {
      rmSync(pgpass, { force: true });
    }
  }

  /**
   * Patroni's custom bootstrap: `command --scope=… --datadir=…` creates the data dir (a restore from a
   * backup tool, say); then archive recovery runs with `recovery_conf` (e.g. restore_command and a
   * target) until PostgreSQL ends it, and the new primary gets our roles and the post_bootstrap script.
   */
  private async customBootstrap(m: NonNullable<DaemonConfig['bootstrap']['method_config']>): Promise<string> {
    this.assertEmpty();
    ensureDir(this.dataDir, 0o700);
    const argv = [...splitCommand(m.command), ...(m.no_params ? [] : [`--scope=${this.cfg.scope}`, `--datadir=${this.dataDir}`])];
    this.log.info({ command: argv[0], method: this.cfg.bootstrap.method }, 'running custom bootstrap script');
    const r = await runPg(argv[0]!, argv.slice(1), { timeoutMs: LONG_OPERATION_MS });
    if (r.code !== 0) throw new PostgresError(`custom bootstrap ${m.command} failed (${exitText(r)}): ${lastLines(r.stderr || r.stdout, 3)}`);
    if (this.dataDirState() !== 'initialized') throw new PostgresError(`custom bootstrap ${m.command} left no PostgreSQL data directory in ${this.dataDir}`);
    // Its postgresql.conf becomes the base ours includes, as after initdb.
    const conf = join(this.dataDir, 'postgresql.conf');
    if (existsSync(conf) && !existsSync(join(this.dataDir, 'postgresql.base.conf'))) renameSync(conf, join(this.dataDir, 'postgresql.base.conf'));
    const recoverySignal = join(this.dataDir, 'recovery.signal');
    if (m.recovery_conf) {
      this.recoveryParams = m.recovery_conf;
      writePgFile(recoverySignal, '');
    } else if (!m.keep_existing_recovery_conf) {
      rmSync(recoverySignal, { force: true });
    }
    this.writeConfig(null);
    await this.clearStaleLocks(60_000);
    await this.disconnect();
    this.viaSocket = true;
    try {
      await this.startServer(LONG_OPERATION_MS);
      await this.waitAccepting(LONG_OPERATION_MS);
      await this.endRecoveryAfterRestore();
      await this.createRoles({ superuser: true });
    } finally {
      await this.disconnect();
      this.viaSocket = false;
    }
    return this.finishBootstrap('custom bootstrap');
  }

  /** Wait (bounded) until the archive recovery of a custom bootstrap ends, then drop its settings. */
  private async endRecoveryAfterRestore(): Promise<void> {
    const deadline = this.clock.now() + LONG_OPERATION_MS;
    while ((await this.query('SELECT pg_is_in_recovery() AS r'))[0]?.r === true) {
      if (this.clock.now() > deadline) throw new PostgresError('custom bootstrap: archive recovery did not end');
      await this.clock.sleep(200);
    }
    this.log.info('custom bootstrap: recovery ended, running as primary');
    this.recoveryParams = null;
    this.writeConfig(null);
    await this.query('SELECT pg_reload_conf()');
  }

  private assertEmpty(): void {
    const state = this.dataDirState();
    if (state !== 'empty') throw new PostgresError(`data directory ${this.dataDir} is not empty (${state}): refusing to overwrite it`);
  }

  /**
   * Patroni bootstrap.py `post_bootstrap`: the replication user, the rewind user with the functions
   * pg_rewind calls (so it need not be a superuser), then `bootstrap.users`. On a connection of its
   * own that logs no statements: they carry passwords.
   */
  private async createRoles(opts: { superuser?: boolean } = {}): Promise<void> {
    const { superuser, replication, rewind } = this.cfg.postgresql.authentication;
    const c = new pg.Client({ ...this.connParams(), statement_timeout: 60_000, query_timeout: 65_000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      for (const s of ['SET log_statement TO none', 'SET log_min_duration_statement TO -1', "SET log_min_error_statement TO 'log'", "SET synchronous_commit TO 'local'"]) {
        await c.query(s);
      }
      const role = async (name: string, password: string | undefined, options: string[]) => {
        const opts = options.map((o) => o.toUpperCase());
        if (!opts.includes('LOGIN') && !opts.includes('NOLOGIN')) opts.push('LOGIN');
        if (password !== undefined) opts.push(`PASSWORD ${c.escapeLiteral(password)}`);
        const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount;
        await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${c.escapeIdentifier(name)} WITH ${opts.join(' ')}`);
      };
      // A restored cluster keeps the backup's superuser password: make it the configured one.
      if (opts.superuser) await role(superuser.username, superuser.password, ['SUPERUSER']);
      if (replication.username !== superuser.username) await role(replication.username, replication.password, ['REPLICATION']);
      if (rewind && rewind.username !== superuser.username) {
        await role(rewind.username, rewind.password, []);
        for (const f of ['pg_ls_dir(text, boolean, boolean)', 'pg_stat_file(text, boolean)', 'pg_read_binary_file(text)', 'pg_read_binary_file(text, bigint, bigint, boolean)']) {
          await c.query(`GRANT EXECUTE ON FUNCTION pg_catalog.${f} TO ${c.escapeIdentifier(rewind.username)}`);
        }
      }
      const reserved = new Set([superuser.username, replication.username, rewind?.username]);
      for (const [name, u] of Object.entries(this.cfg.bootstrap.users ?? {})) {
        if (!reserved.has(name)) await role(name, u.password, u.options ?? []);
      }
    } finally {
      await endWithin(c, 1000);
    }
  }

  /**
   * Patroni's create_replica: the methods of `create_replica_methods` in order until one succeeds —
   * `basebackup` built in, any other a command of ours to run. Without a running source only methods
   * marked no_leader/no_master are tried.
   */
  async createReplica(from: UpstreamConn | null, methodsOverride?: readonly string[]): Promise<void> {
    const configured = methodsOverride ?? (this.cfg.postgresql.create_replica_methods.length ? this.cfg.postgresql.create_replica_methods : ['basebackup']);
    const methods = from ? configured : configured.filter((m) => replicaMethodWorksWithoutLeader(this.cfg, m));
    if (methods.length === 0) throw new PostgresError('no replica method works without a running member to copy from');
    let last: unknown = null;
    const copying = new AbortController();
    this.copying = copying;
    try {
      for (const method of methods) {
        try {
          if (method === 'basebackup') await this.basebackup(from!, copying.signal);
          else await this.customReplicaMethod(method, from, copying.signal);
          this.log.info({ method }, `replica has been created using ${method}`);
          this.cachedControl = null;
          return;
        } catch (e) {
          if (copying.signal.aborted) throw new CopyCancelledError(`${method} cancelled: the daemon is shutting down`, { cause: e });
          last = e;
          this.log.error({ method, err: errorMessage(e) }, 'replica method failed');
        }
      }
    } finally {
      this.copying = null;
    }
    throw new PostgresError(`no replica method succeeded (last: ${errorMessage(last)})`);
  }

  cancelCopy(): void {
    if (!this.copying || this.copying.signal.aborted) return;
    this.log.info('cancelling the replica copy in progress');
    this.copying.abort();
  }

  /**
   * A user-defined replica method (Patroni: `<command> --scope=… --role=replica --datadir=… --connstring=…`
   * plus its own options as `--key=value`), run as the PostgreSQL user with the replication password
   * in a pgpass file. A data dir it finds non-empty is moved aside first (never deleted) unless keep_data.
   */
  private async customReplicaMethod(method: string, from: UpstreamConn | null, signal: AbortSignal): Promise<void> {
    const options: Record<string, unknown> = { ...(this.cfg.postgresql.replica_methods?.[method] ?? {}) };
    const command = typeof options.command === 'string' ? options.command : method;
    delete options.command;
    if (this.dataDirState() !== 'empty') {
      if (isTruthy(options.keep_data)) this.log.info('leaving data directory uncleaned (keep_data)');
      else this.log.warn({ movedTo: await this.moveDataDirAside(`before-${method}`) }, 'data directory moved aside before the replica method');
    }
    const repl = this.cfg.postgresql.authentication.replication;
    const connstring = from ? `dbname=postgres user=${conninfoValue(repl.username)} host=${conninfoValue(from.host)} port=${from.port}` : '';
    if (isTruthy(options.no_params)) {
      for (const k of ['no_params', 'no_master', 'no_leader', 'keep_data']) delete options[k];
    } else {
      Object.assign(options, { scope: this.cfg.scope, role: 'replica', datadir: this.dataDir, connstring });
    }
    const argv = [...splitCommand(command), ...Object.entries(options).map(([k, v]) => `--${k}=${pythonStr(v)}`)];
    const pgpass = from ? writePgpass(from.host, from.port, repl) : null;
    this.log.info({ method, command: argv[0] }, 'running replica method');
    try {
      const r = await runPg(argv[0]!, argv.slice(1), { timeoutMs: 24 * 3600_000, env: { ...(pgpass ? { PGPASSFILE: pgpass } : {}), PGAPPNAME: this.cfg.name }, signal });
      if (r.code !== 0) throw new PostgresError(`${method}: ${command} exited with ${exitText(r)}: ${lastLines(r.stderr || r.stdout, 3)}`);
    } finally {
      if (pgpass) rmSync(pgpass, { force: true });
    }
    if (this.dataDirState() !== 'initialized') throw new PostgresError(`${method} finished but left no PostgreSQL data directory in ${this.dataDir}`);
  }

  private async basebackup(from: UpstreamConn, signal: AbortSignal): Promise<void> {
    const options = toolArgs('postgresql.basebackup', this.cfg.postgresql.basebackup, BASEBACKUP_NOT_ALLOWED);
    this.assertEmpty();
    ensureDir(this.dataDir, 0o700);
    const repl = this.cfg.postgresql.authentication.replication;
    const sync = fastSyncArgs(options);
    const args = ['-D', this.dataDir, '-h', from.host, '-p', String(from.port), '-U', repl.username, '-X', 'stream', '-c', 'fast', '--no-password', ...sync.args, ...options];
    this.log.info({ from: `${from.host}:${from.port}`, options }, 'running pg_basebackup');
    // The copy's first start needs the version of our programs: asked meanwhile, not after the copy.
    this.toolsMajor().catch(() => undefined);
    const r = await this.run('pg_basebackup', args, 24 * 3600_000, { PGPASSWORD: repl.password ?? '', PGAPPNAME: this.cfg.name }, signal);
    if (r.code !== 0) {
      // The directory was empty before (checked above): whatever is in it now is pg_basebackup's partial copy.
      for (const e of readdirSync(this.dataDir)) rmSync(join(this.dataDir, e), { recursive: true, force: true });
      throw new PostgresError(`pg_basebackup failed (${exitText(r)}): ${lastLines(r.stderr, 3)}`);
    }
    if (sync.syncAfter) await this.syncFileSystem();
    this.freshCopy = true;
  }

  /**
   * The major version of the PostgreSQL programs in our bin dir (`initdb --version`), asked once; a failure
   * is asked again next time.
   */
  private toolsMajor(): Promise<number> {
    if (this.binMajor === null) {
      const asked = this.mustRun('initdb', ['--version'], 30_000).then((r) => {
        const m = /\(PostgreSQL\)\s+(\d+)/.exec(r.stdout);
        if (!m) throw new PostgresError(`cannot tell the PostgreSQL version from initdb --version: ${r.stdout.trim()}`);
        return Number(m[1]);
      });
      asked.catch(() => {
        if (this.binMajor === asked) this.binMajor = null;
      });
      this.binMajor = asked;
    }
    return this.binMajor;
  }

  /** A fresh data dir copied or created with --no-sync is made durable with one syncfs of its file system. */
  private async syncFileSystem(): Promise<void> {
    const r = await runPg('sync', ['-f', this.dataDir], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new PostgresError(`could not sync the new data directory to disk (sync -f ${this.dataDir}: ${exitText(r)}): ${lastLines(r.stderr, 3)}`);
  }

  // ---------- lifecycle ----------

  /**
   * `upstream: null` starts a standby without anyone to stream from (read-only), never a primary: a
   * member becomes primary only through promote(), after it holds the leader lock.
   */
  async start(opts: { upstream: UpstreamConn | null; timeoutMs: number }): Promise<void> {
    // Already running (started by an earlier daemon, or still starting): only wait for it to be ready.
    if (this.postmasterPid() !== null) return this.waitAccepting(opts.timeoutMs);
    if (this.dataDirState() !== 'initialized') throw new PostgresError(`cannot start: ${this.dataDir} holds no initialized cluster`);
    const deadline = this.clock.now() + opts.timeoutMs;
    // The role before this start: observe() may see the new server in recovery (and note 'replica')
    // before we get to the callback below, which must not turn on_start into on_role_change.
    const before = this.cbRole;
    await this.clearStaleLocks(opts.timeoutMs);
    this.writeConfig({ upstream: opts.upstream });
    // The first start of a copy (backup_label) fsyncs the whole data dir before recovery; it was just
    // synced, and one syncfs (PostgreSQL 14+) does that part in a fraction of the time.
    const syncfs = this.freshCopy && (await this.toolsMajor()) >= 14 ? ['recovery_init_sync_method=syncfs'] : [];
    await this.startServer(Math.max(1000, deadline - this.clock.now()), syncfs);
    this.freshCopy = false;
    await this.waitAccepting(Math.max(1000, deadline - this.clock.now()));
    // A primary restarting as a replica changes role (Patroni's follow: on_role_change, not on_start),
    // as does a replica starting as a standby cluster's standby leader.
    const role = standbyRole(opts.upstream);
    this.callback(before !== null && before !== role ? 'on_role_change' : 'on_start', role);
  }

  /**
   * A killed postmaster leaves postmaster.pid and the socket lock files behind. PostgreSQL itself
   * ignores them when their PID is gone, but not when the PID is a zombie nobody reaped or (PIDs wrap)
   * another process: then we remove them, but only once no backend of the old server still works in
   * the data dir (removing postmaster.pid drops PostgreSQL's own shared-memory interlock).
   */
  private async clearStaleLocks(timeoutMs: number): Promise<void> {
    const pidFile = join(this.dataDir, 'postmaster.pid');
    const { port } = listenParts(this.cfg.postgresql.listen);
    const sockets = this.effectiveSocketDirs()
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => join(d, `.s.PGSQL.${port}.lock`));
    const namesAProcess = (f: string) => {
      const pid = lockFilePid(f);
      return pid !== null && processStartTime(pid) !== null;
    };
    // postmaster.pid: stale unless it names our live postmaster. A socket lock: stale unless it names a
    // live postgres (possibly another server on the same port, which must keep it).
    const stale = [
      ...(namesAProcess(pidFile) && this.postmasterPid() === null ? [pidFile] : []),
      ...sockets.filter((f) => namesAProcess(f) && !isLivePostgres(lockFilePid(f)!)),
    ];
    if (stale.length === 0) return;
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const orphans = processesIn(this.dataDir);
      if (orphans.length === 0) break;
      if (this.clock.now() > deadline) throw new PostgresError(`processes of a killed postmaster still run in ${this.dataDir}: ${orphans.join(', ')}`);
      await this.clock.sleep(100);
    }
    for (const f of stale) {
      this.log.warn({ file: f }, 'removing a stale lock file (its PID is a zombie or another process)');
      rmSync(f, { force: true });
    }
  }

  /**
   * Start the postmaster and return once postmaster.pid says it is ready (or a hot standby), looked at
   * every 10 ms (`pg_ctl start -w` looks every 100 ms, after two shells and a `postgres -V`, ~60 ms).
   * `settings`: extra `name=value` settings for this start only (postgres -c). Past the timeout, like
   * pg_ctl, it fails and leaves the server starting.
   */
  private async startServer(timeoutMs: number, settings: string[] = []): Promise<void> {
    closeSync(openSync(this.logFile, 'a', 0o600));
    chownToPg(this.logFile);
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const from = statSync(this.logFile).size;
      const server = spawnServer(join(this.bin, 'postgres'), ['-D', this.dataDir, ...settings.flatMap((x) => ['-c', x])], this.logFile);
      const r = await this.untilReadyOrExit(server.exited, deadline);
      if (r === 'ready') return;
      if (r === 'timeout') {
        throw new PostgresError(`postgresql (pid ${server.pid}) is not ready after ${Math.round(timeoutMs / 1000)} s; it goes on starting: ${this.logTail(from)}`);
      }
      const log = this.logTail(from);
      // Backends of a killed postmaster keep its shared memory until they notice and exit.
      if (/pre-existing shared memory block .* is still in use/.test(log) && this.clock.now() < deadline) {
        this.log.info('shared memory of a killed postmaster still in use: waiting for its processes to exit');
        await this.clock.sleep(200);
        continue;
      }
      throw new PostgresError(`postgresql failed to start (${r.stderr || exitText(r)}): ${log}`);
    }
  }

  private async untilReadyOrExit(exited: Promise<RunResult>, deadline: number): Promise<RunResult | 'ready' | 'timeout'> {
    const outcome = exited.catch((e: unknown) => {
      throw new PostgresError(`cannot start postgres: ${errorMessage(e)}`);
    });
    let settled = false;
    const watch = outcome.then(
      () => (settled = true),
      () => (settled = true),
    );
    while (!settled) {
      if (postmasterReady(this.dataDir)) return 'ready';
      if (this.clock.now() > deadline) return 'timeout';
      await Promise.race([watch, this.clock.sleep(READY_POLL_MS)]);
    }
    return outcome;
  }

  private logTail(from = 0): string {
    try {
      return lastLines(readFileSync(this.logFile).subarray(from).toString('utf8'), 5);
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
        // Wrong credentials do not get better by waiting (28P01 invalid_password, 28000 invalid authorization).
        const code = (e as { code?: string }).code;
        if (this.clock.now() > deadline || this.postmasterPid() === null || code === '28P01' || code === '28000') {
          throw new PostgresError(`postgresql does not accept connections: ${errorMessage(e)}; log: ${this.logTail()}`);
        }
        await this.clock.sleep(100);
      }
    }
  }

  /**
   * Signal the postmaster as pg_ctl does (smart SIGTERM, fast SIGINT, immediate SIGQUIT) and watch it
   * exit closely: pg_ctl -w looks only every 100 ms, and on a switchover every millisecond here is a
   * millisecond without a primary. Escalates to immediate when `mode` does not finish in time.
   */
  async stop(mode: StopMode, timeoutMs: number): Promise<void> {
    await this.stopServer(mode, timeoutMs);
  }

  private async stopServer(mode: StopMode, timeoutMs: number, callbacks = true): Promise<void> {
    await this.disconnect();
    this.cachedControl = null;
    const pid = this.postmasterPid();
    if (pid === null) return;
    const role = this.cbRole ?? (this.standby === null ? 'master' : 'replica');
    try {
      await this.signalAndWait(pid, mode, timeoutMs);
    } finally {
      if (callbacks && this.postmasterPid() === null) this.callback('on_stop', role);
    }
  }

  private async signalAndWait(pid: number, mode: StopMode, timeoutMs: number): Promise<void> {
    if (this.signalPostmaster(pid, STOP_SIGNALS[mode]) && (await this.waitPostmasterGone(pid, timeoutMs))) return;
    if (mode !== 'immediate') {
      this.log.warn({ mode }, `${mode} shutdown did not finish in time: stopping immediately`);
      if (this.signalPostmaster(pid, STOP_SIGNALS.immediate) && (await this.waitPostmasterGone(pid, Math.min(timeoutMs, 30_000)))) return;
    }
    if (this.postmasterPid() === null) return;
    // Patroni's terminate_postmaster: then SIGKILL, the postmaster and every server process of this data dir.
    if (this.signalPostmaster(pid, 'SIGKILL')) {
      this.log.warn({ pid }, 'postgresql did not stop: sending SIGKILL to the postmaster and its children');
      for (const child of processesIn(this.dataDir)) {
        try {
          process.kill(child, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      if (await this.waitPostmasterGone(pid, 10_000)) return;
    }
    if (this.postmasterPid() === null) return;
    throw new PostgresError(`postgresql (pid ${pid}) did not stop (${mode}) within ${Math.round(timeoutMs / 1000)} s`);
  }

  /** false when the postmaster is already gone. */
  private signalPostmaster(pid: number, sig: NodeJS.Signals): boolean {
    // Re-checked right before signalling: the PID must still be our data dir's postmaster.
    if (this.postmasterPid() !== pid) return false;
    try {
      process.kill(pid, sig);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw e;
    }
  }

  private async waitPostmasterGone(pid: number, timeoutMs: number): Promise<boolean> {
    const start = this.clock.now();
    while (this.postmasterPid() === pid) {
      const waited = this.clock.now() - start;
      if (waited > timeoutMs) return false;
      await this.clock.sleep(waited < 2000 ? 5 : 100);
    }
    return true;
  }

  async checkpoint(timeoutMs: number): Promise<void> {
    const c = new pg.Client({ ...this.connParams(), statement_timeout: timeoutMs, query_timeout: timeoutMs + 1000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('CHECKPOINT');
    } finally {
      await endWithin(c, 1000);
    }
  }

  /** Restart with the same role and standby settings (REST POST /restart, scheduled restarts). */
  async restart(timeoutMs: number, whileStopped?: () => void): Promise<void> {
    if (this.postmasterPid() === null) throw new PostgresError('restart: postgresql is not running');
    const standby = this.standby !== undefined ? this.standby : await this.currentStandby();
    const deadline = this.clock.now() + timeoutMs;
    await this.stopServer('fast', timeoutMs, false);
    whileStopped?.();
    await this.clearStaleLocks(Math.max(1000, deadline - this.clock.now()));
    this.writeConfig(standby);
    await this.startServer(Math.max(1000, deadline - this.clock.now()));
    await this.waitAccepting(Math.max(1000, deadline - this.clock.now()));
    this.callback('on_restart', standby === null ? 'master' : standbyRole(standby.upstream));
  }

  async promote(timeoutMs: number): Promise<void> {
    // pg_ctl's own wait polls every 100 ms at best; we watch pg_is_in_recovery() closely instead:
    // every millisecond here is a millisecond without a primary.
    // Fencing first (Patroni's pre_promote): a non-zero exit cancels the promotion.
    if (!(await this.callbacks.prePromote(this.cfg.postgresql.pre_promote, PRE_PROMOTE_TIMEOUT_MS))) {
      throw new PromoteCancelledError('pre_promote script failed: promotion cancelled');
    }
    // pg_promote() on the connection we already have: no pg_ctl process to spawn first.
    await this.query('SELECT pg_promote(false)').catch(async (e: unknown) => {
      this.log.warn({ err: errorMessage(e) }, 'pg_promote() failed: using pg_ctl promote');
      await this.mustRun('pg_ctl', ['promote', '-D', this.dataDir, '-W'], 30_000);
    });
    const deadline = this.clock.now() + timeoutMs;
    while ((await this.query('SELECT pg_is_in_recovery() AS r'))[0]?.r === true) {
      if (this.clock.now() > deadline) throw new PostgresError('promote: still in recovery');
      await this.clock.sleep(10);
    }
    this.writeConfig(null);
    this.callback('on_role_change', 'master');
    this.checkpointInBackground();
  }

  /**
   * pg_rewind of other members reads our timeline from the control file, which only a checkpoint
   * updates (Patroni's checkpoint_after_promote). Writes are accepted meanwhile, so nobody waits for
   * it; rewind() makes sure of it on the source before running pg_rewind.
   */
  private checkpointInBackground(): void {
    const c = new pg.Client({ ...this.connParams(), statement_timeout: 0, query_timeout: undefined });
    c.on('error', () => undefined);
    void c
      .connect()
      .then(() => c.query('CHECKPOINT'))
      .then(() => this.log.info('checkpoint after promote done'))
      .catch((e: unknown) => this.log.warn({ err: errorMessage(e) }, 'checkpoint after promote failed'))
      .finally(() => void endWithin(c, 1000));
  }

  /**
   * Point a running replica at another upstream. PostgreSQL 13+ applies primary_conninfo and
   * primary_slot_name on reload; older servers need a restart.
   */
  async follow(upstream: UpstreamConn): Promise<void> {
    // A standby leader is told its remote every tick (Patroni's check_recovery_conf): reload only on a change.
    const key = JSON.stringify(upstream);
    if (upstream.remote && this.followed === key && this.postmasterPid() === this.followedPid) return;
    const rows = await this.query("SELECT pg_is_in_recovery() AS r, current_setting('server_version_num')::int AS v");
    if (rows[0]?.r !== true) throw new PostgresError('follow: postgresql is not running as a replica (demote it first)');
    this.writeConfig({ upstream });
    if (Number(rows[0]?.v) >= 130000) {
      await this.query('SELECT pg_reload_conf()');
      this.followed = key;
      this.followedPid = this.postmasterPid();
      // Becoming (or ceasing to be) a standby cluster's standby leader is a role change (Patroni's follow).
      const role = standbyRole(upstream);
      if (this.cbRole !== null && this.cbRole !== role) this.callback('on_role_change', role);
      return;
    }
    this.log.info('restarting to follow a new upstream (PostgreSQL < 13 reads primary_conninfo at start only)');
    await this.stop('fast', 60_000);
    await this.start({ upstream, timeoutMs: 300_000 });
  }

  async setSynchronousStandbyNames(value: string | undefined): Promise<void> {
    if (value === this.syncNames) return;
    this.syncNames = value;
    this.log.info({ synchronous_standby_names: value ?? '(not managed)' }, 'synchronous_standby_names changed');
    await this.reloadConfig();
  }

  async reloadConfig(): Promise<void> {
    if (this.postmasterPid() === null) return;
    if (this.standby === undefined) this.standby = await this.currentStandby();
    this.writeConfig(this.standby);
    await this.query('SELECT pg_reload_conf()');
    this.callbacks.call('on_reload', this.standby === null ? 'master' : standbyRole(this.standby.upstream));
  }

  // ---------- rejoin ----------

  /** A short-lived superuser connection to another member. */
  private async withSource<T>(from: UpstreamConn, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const su = this.cfg.postgresql.authentication.superuser;
    const c = new pg.Client({
      host: from.host,
      port: from.port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      connectionTimeoutMillis: 5000,
      statement_timeout: 10_000,
      query_timeout: 15_000,
    });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return await fn(c);
    } finally {
      await endWithin(c, 1000);
    }
  }

  async rewindNeeded(from: UpstreamConn): Promise<boolean> {
    const cd = await this.controlData();
    if (!cd?.timeline) throw new PostgresError('pg_controldata did not give a timeline');
    const { tl, history } = await this.withSource(from, async (c) => {
      const r = await c.query(`SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
        ELSE ${PRIMARY_TIMELINE_SQL} END AS tl`);
      const tl = Number(r.rows[0]?.tl);
      // The history file is needed only when the source is on a later timeline than ours.
      if (!(tl > cd.timeline!)) return { tl, history: '' };
      const h = await c.query('SELECT pg_read_file($1) AS h', [historyFilePath(tl)]);
      return { tl, history: String(h.rows[0]?.h ?? '') };
    });
    const pos = localPosition(cd);
    const end = pos && !pos.inRecovery && tl > pos.timeline ? await this.checkpointEnd(pos.timeline, pos.lsn) : null;
    const needed = needsRewind(cd, tl, history, end);
    this.log.info({ local: pos ? `${pos.timeline}@${formatLsn(pos.lsn)}` : `${cd.state}@${cd.timeline}`, sourceTimeline: tl, needed }, 'rewind check');
    return needed;
  }

  /**
   * Where the checkpoint record at `lsn` ends (Patroni reads it with pg_waldump: the record after a
   * shutdown checkpoint is missing, and the error names where it would have started). null if unknown.
   */
  private async checkpointEnd(timeline: number, lsn: number): Promise<number | null> {
    const args = ['-p', join(this.dataDir, 'pg_wal'), '-t', String(timeline), '-s', formatLsn(lsn), '-n', '2'];
    const r = await this.run('pg_waldump', args, 30_000).catch(() => null);
    return r ? parseWaldumpEnd(r.stdout, r.stderr, lsn) : null;
  }

  /** pg_rewind reads the source's timeline from its pg_control: it must have checkpointed since promotion. */
  private async ensureSourceCheckpoint(from: UpstreamConn): Promise<void> {
    await this.withSource(from, async (c) => {
      const r = await c.query(`SELECT pg_is_in_recovery() AS rec,
          NOT pg_is_in_recovery() AND ${PRIMARY_TIMELINE_SQL} = timeline_id AS ok
        FROM pg_control_checkpoint()`);
      if (r.rows[0]?.rec === true) throw new PostgresError(`rewind source ${from.host}:${from.port} is in recovery`);
      if (r.rows[0]?.ok !== true) {
        this.log.info('rewind source has not checkpointed since its promotion: running CHECKPOINT there');
        await c.query('SET statement_timeout = 0');
        await c.query({ text: 'CHECKPOINT', query_timeout: 600_000 } as pg.QueryConfig);
      }
    });
  }

  async rewind(from: UpstreamConn): Promise<void> {
    if (this.postmasterPid() !== null) throw new PostgresError('rewind: postgresql is running (stop it first)');
    const { superuser, rewind } = this.cfg.postgresql.authentication;
    const user = rewind ?? superuser;
    await this.clearStaleLocks(60_000);
    await this.ensureSourceCheckpoint(from);
    // pg_rewind (13+) brings a crashed target to a clean shutdown in single-user mode first, which
    // refuses to run with standby.signal present (Patroni ensure_clean_shutdown removes it too).
    for (const f of ['standby.signal', 'recovery.signal']) rmSync(join(this.dataDir, f), { force: true });
    this.cleanupArchiveStatus();
    const src = `host=${conninfoValue(from.host)} port=${from.port} user=${conninfoValue(user.username)} dbname=postgres`;
    this.log.info({ from: `${from.host}:${from.port}` }, 'running pg_rewind');
    const r = await this.run('pg_rewind', [`--target-pgdata=${this.dataDir}`, `--source-server=${src}`, '--progress'], 3600_000, {
      PGPASSWORD: user.password ?? '',
      PGCONNECT_TIMEOUT: '10',
    });
    this.cachedControl = null;
    if (r.code !== 0) throw new PostgresError(`pg_rewind failed (${exitText(r)}): ${lastLines(r.stderr, 3)}`);
    // pg_rewind copied the source's config files and archive status: ours are written again, as a standby.
    this.cleanupArchiveStatus();
    this.writeConfig({ upstream: from });
  }

  /**
   * .ready/.done markers copied from elsewhere would make our archiver skip or repeat segments
   * (Patroni rewind.py `cleanup_archive_status`).
   */
  private cleanupArchiveStatus(): void {
    const dir = join(this.dataDir, 'pg_wal', 'archive_status');
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) rmSync(join(dir, e), { force: true });
  }

  async moveDataDirAside(reason: string): Promise<string> {
    if (this.postmasterPid() !== null) throw new PostgresError('cannot move the data directory aside while postgresql runs in it');
    await this.disconnect();
    this.cachedControl = null;
    const stamp = this.clock.wallNow().toISOString().replace(/[:.]/g, '-');
    const base = `${this.dataDir}.${reason.replace(/[^A-Za-z0-9_-]/g, '_')}.${stamp}`;
    let target = base;
    for (let i = 1; existsSync(target); i++) target = `${base}.${i}`;
    renameSync(this.dataDir, target);
    this.log.warn({ from: this.dataDir, to: target }, 'data directory moved aside');
    return target;
  }

  async timelineHistory(): Promise<Array<[number, number, string]>> {
    const rows = await this.query(`SELECT ${PRIMARY_TIMELINE_SQL} AS tl`);
    const tl = Number(rows[0]?.tl);
    if (!(tl > 1)) return [];
    const h = await this.query('SELECT pg_read_file($1) AS h', [historyFilePath(tl)]);
    return parseHistoryFile(String(h[0]?.h ?? ''));
  }

  async close(): Promise<void> {
    await this.disconnect();
  }
}

/**
 * End a client, but never wait more than `ms` for a server that does not answer (a frozen server
 * never closes its side): then the socket is destroyed.
 */
function endWithin(c: pg.Client, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      // pg.Client keeps its socket on the (undeclared) `connection.stream`.
      (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      resolve();
    }, ms);
    c.end()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        resolve();
      });
  });
}

/**
 * A file only the PostgreSQL user can read, for a secret a program reads from a file (initdb --pwfile).
 * Created exclusively under a random name in the temp dir; the caller removes it.
 */
function writeSecretFile(content: string): string {
  const path = join(tmpdir(), `pgwarden-secret-${process.pid}-${randomBytes(8).toString('hex')}`);
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  chownToPg(path);
  return path;
}

/** Python's str() of an option value, as Patroni formats `--key=value`. */
function pythonStr(v: unknown): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v === null || v === undefined) return 'None';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A one-line pgpass file (owned by the PostgreSQL user, 0600) for `user` at host:port; the caller removes it. */
function writePgpass(host: string, port: number, user: { username: string; password?: string }): string {
  return writeSecretFile(`${pgpassField(host)}:${port}:*:${pgpassField(user.username)}:${pgpassField(user.password ?? '')}\n`);
}

/** A field of a .pgpass line: ':' and '\\' escaped. */
function pgpassField(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

function exitText(r: RunResult): string {
  return r.timedOut ? 'timed out' : `exit ${r.code}`;
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/** The callback role of a server in recovery: streaming from a standby cluster's remote makes it the standby leader. */
function standbyRole(upstream: UpstreamConn | null): CallbackRole {
  return upstream?.remote ? 'standby_leader' : 'replica';
}

function conninfoHostPort(conninfo: string): string | null {
  const host = /(?:^|\s)host=('?)([^'\s]+)\1/.exec(conninfo)?.[2];
  const port = /(?:^|\s)port=('?)(\d+)\1/.exec(conninfo)?.[2];
  return host ? `${host}:${port ?? '5432'}` : null;
}

