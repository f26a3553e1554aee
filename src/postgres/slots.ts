/**
 * Replication slot effects on the local PostgreSQL (Patroni 4's SlotsHandler, the SQL half): list, drop,
 * create, advance, and copy logical slots from the leader. What to do is decided by src/ha/slots.ts.
 *
 * Copying a logical slot (PostgreSQL ≥ 11 has no way to create one on a standby): read the slot's state
 * file on the leader with pg_read_binary_file, stop the replica, write it to pg_replslot/<name>/state
 * (through a .tmp directory, fsynced, renamed), start again; from then on pg_replication_slot_advance keeps
 * it at the position the leader publishes. hot_standby_feedback must be on, so the leader keeps the catalog
 * rows the copy still needs (its slot for us carries our catalog_xmin).
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { LocalSlot } from '../ha/slots.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { formatLsn } from './lsn.js';
import { chownToPg, ensureDir } from './runas.js';

/** A logical slot read from the leader, with its on-disk state. */
export interface CopiedSlot {
  readonly name: string;
  readonly type: string;
  readonly database: string;
  readonly plugin: string;
  readonly catalogXmin: number | null;
  readonly confirmedFlushLsn: number | null;
  readonly state: Buffer;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** What the slot effects need from the local PostgreSQL (LocalPostgres provides it). */
export interface PgSlotsDeps {
  /** A query on the local superuser connection (database postgres). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Connection settings for a short-lived local connection to `database`. */
  clientConfig(database: string): pg.ClientConfig;
  readonly superuser: { readonly username: string; readonly password?: string };
  readonly dataDir: string;
  /** Stop, run `whileStopped`, start again with the same role and standby settings. */
  restartWith(whileStopped: () => void, timeoutMs: number): Promise<void>;
  /** Force hot_standby_feedback on (or stop forcing it): rewrites the config and reloads when it changes. */
  setHotStandbyFeedback(on: boolean): Promise<void>;
  readonly log: Logger;
}

/** The slot operations the HA loop uses (a narrow port, faked in unit tests). */
export interface SlotsPort {
  list(): Promise<LocalSlot[]>;
  drop(name: string): Promise<{ active: boolean; dropped: boolean }>;
  createPhysical(name: string): Promise<void>;
  createLogical(name: string, database: string, plugin: string): Promise<void>;
  /** pg_replication_slot_advance; logical slots are advanced in a connection to their database. */
  advance(name: string, lsn: number, database: string | null): Promise<void>;
  readFromLeader(leader: Endpoint, names: readonly string[]): Promise<CopiedSlot[]>;
  /** catalog_xmin on the leader of `names` (slots missing there are absent from the map). */
  leaderCatalogXmins(leader: Endpoint, names: readonly string[]): Promise<Map<string, number | null>>;
  /** Write the copied slots into pg_replslot while the server is stopped, then start it again. */
  install(slots: readonly CopiedSlot[], timeoutMs: number): Promise<void>;
  setHotStandbyFeedback(on: boolean): Promise<void>;
  hotStandbyFeedback(): Promise<boolean>;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** SQLSTATEs after which a logical copy cannot be advanced any more: copy it again (Patroni 4's sync_slot). */
export const RECOPY_SQLSTATES: readonly string[] = ['58P01' /* WAL file gone */, '55000' /* slot invalidated */];

export class PgSlots implements SlotsPort {
  constructor(private readonly d: PgSlotsDeps) {}

  async list(): Promise<LocalSlot[]> {
    const rows = await this.d.query(
      'SELECT slot_name, slot_type, plugin, database, active, xmin::text AS xmin, catalog_xmin::text AS catalog_xmin,' +
        " pg_wal_lsn_diff(restart_lsn, '0/0')::bigint AS restart_lsn, pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint AS confirmed_flush_lsn," +
        ' wal_status FROM pg_replication_slots WHERE NOT temporary ORDER BY slot_name',
    );
    return rows.map((r) => ({
      name: String(r.slot_name),
      type: r.slot_type === 'logical' ? 'logical' : 'physical',
      plugin: r.plugin == null ? null : String(r.plugin),
      database: r.database == null ? null : String(r.database),
      active: r.active === true,
      xmin: num(r.xmin),
      catalogXmin: num(r.catalog_xmin),
      restartLsn: num(r.restart_lsn),
      confirmedFlushLsn: num(r.confirmed_flush_lsn),
      walStatus: r.wal_status == null ? null : String(r.wal_status),
    }));
  }

  /** Patroni's drop_replication_slot: drop only when inactive, in one statement (no race with a new walsender). */
  async drop(name: string): Promise<{ active: boolean; dropped: boolean }> {
    const rows = await this.d.query(
      'WITH slots AS (SELECT slot_name, active FROM pg_replication_slots WHERE slot_name = $1),' +
        ' dropped AS (SELECT pg_drop_replication_slot(slot_name), true AS dropped FROM slots WHERE NOT active)' +
        ' SELECT active, COALESCE(dropped, false) AS dropped FROM slots FULL OUTER JOIN dropped ON true',
      [name],
    );
    const r = rows[0];
    return r ? { active: r.active === true, dropped: r.dropped === true } : { active: false, dropped: false };
  }

  async createPhysical(name: string): Promise<void> {
    // immediately_reserve: WAL is kept from now on, not only once a replica first connects.
    await this.d.query(
      'SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS' +
        " (SELECT 1 FROM pg_replication_slots WHERE slot_type = 'physical' AND slot_name = $1)",
      [name],
    );
  }

  async createLogical(name: string, database: string, plugin: string): Promise<void> {
    await this.withLocal(database, (c) =>
      c.query(
        'SELECT pg_create_logical_replication_slot($1, $2) WHERE NOT EXISTS' +
          " (SELECT 1 FROM pg_replication_slots WHERE slot_type = 'logical' AND slot_name = $1)",
        [name, plugin],
      ),
    );
  }

  async advance(name: string, lsn: number, database: string | null): Promise<void> {
    const sql = 'SELECT pg_replication_slot_advance($1, $2::pg_lsn)';
    if (database === null) await this.d.query(sql, [name, formatLsn(lsn)]);
    else await this.withLocal(database, (c) => c.query(sql, [name, formatLsn(lsn)]));
  }

  async readFromLeader(leader: Endpoint, names: readonly string[]): Promise<CopiedSlot[]> {
    return this.withLeader(leader, async (c) => {
      const r = await c.query(
        'SELECT slot_name, slot_type, datname, plugin, catalog_xmin::text AS catalog_xmin,' +
          " pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint AS confirmed_flush_lsn," +
          " pg_read_binary_file('pg_replslot/' || slot_name || '/state') AS state" +
          ' FROM pg_get_replication_slots() JOIN pg_database ON datoid = oid WHERE NOT pg_is_in_recovery() AND slot_name = ANY($1)',
        [[...names]],
      );
      return (r.rows as Record<string, unknown>[]).map((row) => ({
        name: String(row.slot_name),
        type: String(row.slot_type),
        database: String(row.datname),
        plugin: String(row.plugin),
        catalogXmin: num(row.catalog_xmin),
        confirmedFlushLsn: num(row.confirmed_flush_lsn),
        state: row.state as Buffer,
      }));
    });
  }

  async leaderCatalogXmins(leader: Endpoint, names: readonly string[]): Promise<Map<string, number | null>> {
    return this.withLeader(leader, async (c) => {
      const r = await c.query(
        'SELECT slot_name, catalog_xmin::text AS catalog_xmin FROM pg_get_replication_slots() WHERE NOT pg_is_in_recovery() AND slot_name = ANY($1)',
        [[...names]],
      );
      return new Map((r.rows as Record<string, unknown>[]).map((row) => [String(row.slot_name), num(row.catalog_xmin)]));
    });
  }

  async install(slots: readonly CopiedSlot[], timeoutMs: number): Promise<void> {
    const dir = join(this.d.dataDir, 'pg_replslot');
    await this.d.restartWith(() => {
      for (const s of slots) {
        const final = join(dir, s.name);
        const tmp = `${final}.tmp`;
        rmSync(tmp, { recursive: true, force: true });
        ensureDir(tmp, 0o700);
        const file = join(tmp, 'state');
        const fd = openSync(file, 'w', 0o600);
        try {
          writeSync(fd, s.state);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        chownToPg(file);
        fsyncDir(tmp);
        // Replacing a slot directory is safe here: the server is stopped and the slot is one we manage.
        if (existsSync(final)) rmSync(final, { recursive: true, force: true });
        renameSync(tmp, final);
        fsyncDir(final);
      }
      fsyncDir(dir);
    }, timeoutMs);
  }

  setHotStandbyFeedback(on: boolean): Promise<void> {
    return this.d.setHotStandbyFeedback(on);
  }

  async hotStandbyFeedback(): Promise<boolean> {
    const r = await this.d.query("SELECT current_setting('hot_standby_feedback')::boolean AS on");
    return r[0]?.on === true;
  }

  private async withLocal<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    return withClient({ ...this.d.clientConfig(database), statement_timeout: 60_000, query_timeout: 65_000 }, fn);
  }

  /** Patroni's _get_leader_connection_cursor: short timeouts, the superuser (it may read the data dir). */
  private async withLeader<T>(leader: Endpoint, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const su = this.d.superuser;
    return withClient(
      {
        host: leader.host,
        port: leader.port,
        user: su.username,
        ...(su.password !== undefined ? { password: su.password } : {}),
        database: 'postgres',
        application_name: 'pgwarden',
        connectionTimeoutMillis: 3000,
        statement_timeout: 2000,
        query_timeout: 5000,
      },
      fn,
    );
  }
}

async function withClient<T>(config: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(config);
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

function fsyncDir(path: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch (e) {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
    void errorMessage(e);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
