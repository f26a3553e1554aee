/**
 * Replication slots on a real 3-member cluster (PostgreSQL + etcd), as Patroni 4 keeps them:
 * permanent physical and logical slots on every member and across a kill -9 failover (a logical consumer
 * resumes on the new primary), ignore_slots left alone, unknown slots dropped, the slot of a member that
 * is gone dropped member_slots_ttl after it was last seen, and a slot PostgreSQL invalidated
 * (max_slot_wal_keep_size) recreated while pg_wal stays within PostgreSQL's bound, the member that lost
 * its WAL rebuilt with POST /reinitialize.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { member } from '../../src/local/cluster.js';
import { clusterView, killMember, leaderOf, memberLog, query, restartMember, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';

const MB = 1024 * 1024;
let tc: TestCluster;

before(async () => {
  tc = await startTestCluster({
    members: 3,
    ttl: 10,
    loopWait: 1,
    retryTimeout: 3,
    extra: {
      dcs: {
        member_slots_ttl: '6s',
        slots: { perm_phys: { type: 'physical' }, perm_cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' } },
        ignore_slots: [{ name: 'ext_keep' }],
        postgresql: {
          parameters: {
            wal_log_hints: 'on',
            max_connections: 100,
            wal_level: 'logical',
            // max_slot_wal_keep_size comes with the test that needs it: set from the start, the WAL switches of
            // the replicas' base backups could invalidate the permanent slots the leader created just before.
            max_wal_size: '64MB',
            min_wal_size: '32MB',
            // Patroni's (and our) default wal_keep_size is 128MB: it would be the larger retention horizon, and a
            // slot is invalidated only behind the larger one. 16MB is the least Patroni accepts.
            wal_keep_size: '16MB',
            // A walsender whose receiver stopped answering gives its slot up (so PostgreSQL can invalidate it).
            wal_sender_timeout: '5s',
          },
        },
      },
    },
  });
});

after(async () => {
  await tc?.destroy();
});

type SlotRow = { slot_name: string; slot_type: string; active: boolean; wal_status: string | null; restart_lsn: string | null; confirmed_flush_lsn: string | null };

async function slots(name: string): Promise<Map<string, SlotRow>> {
  const rows = await query<SlotRow>(
    tc.state,
    name,
    'SELECT slot_name, slot_type, active, wal_status, restart_lsn::text, confirmed_flush_lsn::text FROM pg_replication_slots ORDER BY 1',
  );
  return new Map(rows.map((r) => [r.slot_name, r]));
}

async function leaderName(): Promise<string> {
  return leaderOf(await waitHealthy(tc.state, 180_000)).name;
}

async function storedStatus(): Promise<{ slots?: Record<string, number>; retain_slots?: string[] }> {
  const r = await fetch(`http://127.0.0.1:${tc.etcd.clientPort}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(`/service/${tc.state.scope}/status`).toString('base64') }),
  });
  const j = (await r.json()) as { kvs?: Array<{ value: string }> };
  const v = j.kvs?.[0]?.value;
  return v ? JSON.parse(Buffer.from(v, 'base64').toString('utf8')) : {};
}

test('permanent slots on every member; member slots everywhere; unknown slots dropped, ignored ones kept', async () => {
  const leader = await leaderName();
  const replicas = tc.state.members.map((m) => m.name).filter((n) => n !== leader);
  await query(tc.state, leader, "SELECT pg_create_physical_replication_slot('ext_keep'), pg_create_physical_replication_slot('stray')");
  await waitFor('stray dropped on the leader, ext_keep kept', 30_000, async () => {
    const s = await slots(leader);
    return !s.has('stray') && s.has('ext_keep') && s.has('perm_phys') && s.get('perm_cdc')?.slot_type === 'logical' ? s : null;
  });
  for (const r of replicas) {
    const s = await waitFor(`slots on ${r}`, 60_000, async () => {
      const s = await slots(r);
      const want = ['perm_phys', 'perm_cdc', 'member_1', 'member_2', 'member_3'].filter((n) => n !== r.replace('-', '_'));
      return want.every((n) => s.has(n)) ? s : null;
    });
    assert.equal(s.get('perm_cdc')!.slot_type, 'logical', `the logical slot was copied to ${r}`);
    const hsf = await query<{ h: string }>(tc.state, r, "SELECT current_setting('hot_standby_feedback') AS h");
    assert.equal(hsf[0]!.h, 'on', 'logical slot copies need hot_standby_feedback');
  }
  const status = await storedStatus();
  assert.ok(status.slots && typeof status.slots.perm_cdc === 'number' && typeof status.slots[leader.replace('-', '_')] === 'number', JSON.stringify(status));
});

test('kill -9 of the primary: the promoted member has the logical slot and a consumer resumes from its last confirmed position', async () => {
  const old = await leaderName();
  await query(tc.state, old, "CREATE TABLE cdc_probe(v text); INSERT INTO cdc_probe VALUES ('before')");
  const consumed = await query<{ data: string }>(tc.state, old, "SELECT data FROM pg_logical_slot_get_changes('perm_cdc', NULL, NULL)");
  assert.ok(consumed.some((r) => r.data.includes("'before'")), 'the consumer sees the first row on the old primary');
  const confirmed = (await slots(old)).get('perm_cdc')!.confirmed_flush_lsn!;
  const replicas = tc.state.members.map((m) => m.name).filter((n) => n !== old);
  for (const r of replicas) {
    await waitFor(`perm_cdc on ${r} advanced to ${confirmed}`, 60_000, async () => {
      const rows = await query<{ ok: boolean }>(tc.state, r, "SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'perm_cdc'", [confirmed]);
      return rows[0]?.ok === true;
    });
  }
  await killMember(tc.state, old);
  const promoted = await waitFor('a new primary', 60_000, async () => {
    const c = await clusterView(tc.state);
    const l = c?.members.find((m) => m.role === 'leader' && m.state === 'running');
    return l && l.name !== old ? l.name : null;
  });
  await waitFor(`${promoted} out of recovery`, 30_000, async () => (await query<{ r: boolean }>(tc.state, promoted, 'SELECT pg_is_in_recovery() AS r'))[0]?.r === false);
  const after = await slots(promoted);
  assert.ok(after.has('perm_cdc') && after.has('perm_phys'), `permanent slots survived on ${promoted}: ${[...after.keys()].join(',')}`);
  await query(tc.state, promoted, "INSERT INTO cdc_probe VALUES ('after')");
  const changes = await query<{ data: string }>(tc.state, promoted, "SELECT data FROM pg_logical_slot_get_changes('perm_cdc', NULL, NULL)");
  const text = changes.map((r) => r.data).join('\n');
  assert.match(text, /'after'/, 'changes made after the failover are decoded on the new primary');
  assert.doesNotMatch(text, /'before'/, 'nothing from before the last confirmed position');
  restartMember(tc.state, old);
  await waitHealthy(tc.state, 180_000);
});

test('a member that is gone keeps its slot until member_slots_ttl after it was last seen, then it is dropped', async () => {
  const leader = await leaderName();
  const victim = tc.state.members.map((m) => m.name).find((n) => n !== leader)!;
  const slot = victim.replace('-', '_');
  await waitFor(`slot ${slot} on the leader`, 30_000, async () => (await slots(leader)).has(slot));
  await killMember(tc.state, victim);
  try {
    // Its member key expires after ttl; the slot must outlive it (retained), listed in status.retain_slots.
    await waitFor(`${victim} gone from the store`, 60_000, async () => {
      const c = await clusterView(tc.state);
      return c && !c.members.some((m) => m.name === victim);
    });
    const goneAt = Date.now();
    assert.ok((await slots(leader)).has(slot), 'the slot is retained right after the member key expired');
    assert.ok((await storedStatus()).retain_slots?.includes(slot), 'status.retain_slots lists it');
    await waitFor(`slot ${slot} dropped on the leader`, 60_000, async () => !(await slots(leader)).has(slot));
    assert.ok(Date.now() - goneAt >= 2000, 'not dropped at once: retained for member_slots_ttl');
    assert.ok(!(await storedStatus()).retain_slots?.includes(slot), 'no longer retained');
  } finally {
    restartMember(tc.state, victim);
  }
  await waitHealthy(tc.state, 180_000);
  await waitFor(`slot ${slot} back on the leader`, 30_000, async () => (await slots(leader)).get(slot)?.active === true);
});

/** The settings that bound pg_wal, in segments (ConvertToXSegs: whole segments, rounded down). */
async function walLimits(name: string): Promise<{ segment: number; slotKeepSegs: number; walKeepSegs: number; maxWalSegs: number }> {
  const rows = await query<{ name: string; setting: string; unit: string | null }>(
    tc.state,
    name,
    "SELECT name, setting, unit FROM pg_settings WHERE name IN ('wal_segment_size', 'max_slot_wal_keep_size', 'wal_keep_size', 'max_wal_size')",
  );
  const get = (n: string) => {
    const r = rows.find((x) => x.name === n)!;
    assert.ok(r.unit === 'MB' || (n === 'wal_segment_size' && r.unit === 'B'), `${n} is in ${r.unit}`);
    return Number(r.setting);
  };
  const segment = get('wal_segment_size');
  const segs = (mb: number) => Math.floor((mb * MB) / segment);
  return { segment, slotKeepSegs: segs(get('max_slot_wal_keep_size')), walKeepSegs: segs(get('wal_keep_size')), maxWalSegs: segs(get('max_wal_size')) };
}

/** pg_wal of `name`: WAL segment files (by name, recycled ones included) and the bytes of anything else. */
async function walDir(name: string): Promise<{ segments: number; otherBytes: number; lsn: number }> {
  const rows = await query<{ segments: string; other: string; lsn: string }>(
    tc.state,
    name,
    "SELECT count(*) FILTER (WHERE name ~ '^[0-9A-F]{24}$')::text AS segments," +
      " COALESCE(sum(size) FILTER (WHERE name !~ '^[0-9A-F]{24}$'), 0)::text AS other," +
      " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint::text AS lsn FROM pg_ls_waldir()",
  );
  return { segments: Number(rows[0]!.segments), otherBytes: Number(rows[0]!.other), lsn: Number(rows[0]!.lsn) };
}

async function restartLsn(name: string, slot: string): Promise<{ lsn: number | null; walStatus: string | null; active: boolean } | null> {
  const rows = await query<{ lsn: string | null; wal_status: string | null; active: boolean }>(
    tc.state,
    name,
    "SELECT pg_wal_lsn_diff(restart_lsn, '0/0')::bigint::text AS lsn, wal_status, active FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
  const r = rows[0];
  return r ? { lsn: r.lsn === null ? null : Number(r.lsn), walStatus: r.wal_status, active: r.active } : null;
}

test('max_slot_wal_keep_size: an abandoned slot cannot make pg_wal grow without bound; it is invalidated, recreated, and the member is rebuilt', async (t) => {
  const leader = await leaderName();
  const victim = tc.state.members.map((m) => m.name).find((n) => n !== leader)!;
  const slot = victim.replace('-', '_');
  const patched = await fetch(`http://127.0.0.1:${member(tc.state, leader).apiPort}/config`, {
    method: 'PATCH',
    body: JSON.stringify({ postgresql: { parameters: { max_slot_wal_keep_size: '32MB' } } }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(patched.status, 200, await patched.text());
  await waitFor('max_slot_wal_keep_size 32MB on the leader', 60_000, async () => {
    const r = await query<{ v: string }>(tc.state, leader, "SELECT current_setting('max_slot_wal_keep_size') AS v");
    return r[0]?.v === '32MB';
  });
  await waitFor(`${victim} streams through ${slot}`, 60_000, async () => (await slots(leader)).get(slot)?.active === true);
  const lim = await walLimits(leader);
  assert.ok(lim.slotKeepSegs > lim.walKeepSegs, `max_slot_wal_keep_size is the limit that matters here: ${JSON.stringify(lim)}`);
  /*
   * What PostgreSQL 15 keeps in pg_wal right after a checkpoint (xlog.c CreateCheckPoint → KeepLogSeg,
   * RemoveOldXlogFiles, XLOGfileslop). WAL is only removed at checkpoints, so this is the bound after each one:
   * - behind the current segment: max(slots' need capped at max_slot_wal_keep_size, wal_keep_size) segments
   *   (the redo segment of a CHECKPOINT that follows pg_switch_wal is the current one);
   * - the current segment;
   * - ahead of it: old segments recycled under future names (preallocated; pg_ls_waldir lists them),
   *   up to redo + max_wal_size - 1 segments, i.e. at most max_wal_size - 1 of them;
   * plus one for a segment switch between the checkpoint and the listing.
   * A slot held without a limit would keep everything written since it stopped.
   */
  const boundSegs = Math.max(lim.slotKeepSegs, lim.walKeepSegs) + 1 + (lim.maxWalSegs - 1) + 1;
  const bound = boundSegs * lim.segment;
  // Freeze the member's WAL receiver: the member (and its daemon) stays, but stops consuming WAL.
  const rx = await query<{ pid: number }>(tc.state, victim, 'SELECT pid FROM pg_stat_wal_receiver');
  const pid = rx[0]!.pid;
  process.kill(pid, 'SIGSTOP');
  let maxSegs = 0;
  let written = 0;
  try {
    await waitFor(`${slot} given up by its walsender`, 60_000, async () => (await restartLsn(leader, slot))?.active === false);
    const frozenAt = (await restartLsn(leader, slot))!.lsn!;
    let recreated = false;
    await query(tc.state, leader, 'CREATE TABLE IF NOT EXISTS wal_filler(v text)');
    // Write at least 4 times the bound past the frozen slot, and until the slot was recreated.
    await waitFor(`${slot} recreated and ${4 * boundSegs} segments written`, 240_000, async () => {
      await query(tc.state, leader, "INSERT INTO wal_filler SELECT repeat('x', 1000) FROM generate_series(1, 2000)");
      await query(tc.state, leader, 'SELECT pg_switch_wal()');
      await query(tc.state, leader, 'CHECKPOINT');
      const w = await walDir(leader);
      maxSegs = Math.max(maxSegs, w.segments);
      written = w.lsn - frozenAt;
      const s = await restartLsn(leader, slot);
      // Recreated: it exists again and reserves WAL from a position later than where it stopped.
      if (s && s.walStatus !== 'lost' && s.lsn !== null && s.lsn > frozenAt) recreated = true;
      return recreated && written >= 4 * bound;
    });
    t.diagnostic(`pg_wal: at most ${maxSegs} segments after a checkpoint (bound ${boundSegs}) with ${Math.round(written / MB)} MB written past the frozen slot`);
    assert.ok(
      maxSegs <= boundSegs,
      `after ${Math.round(written / MB)} MB written past the frozen slot, pg_wal held at most ${maxSegs} segments; PostgreSQL's rules allow ${boundSegs} (${JSON.stringify(lim)})`,
    );
    assert.ok(
      pgLog(leader).includes(`invalidating slot "${slot}" because its restart_lsn`),
      'PostgreSQL invalidated the slot (max_slot_wal_keep_size): it became lost',
    );
    assert.ok(
      daemonLog(leader).some((l) => l.slot === slot && String(l.msg).startsWith('dropped replication slot: invalidated by PostgreSQL (wal_status lost)')),
      'the leader dropped the lost slot to recreate it',
    );
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  // Nothing crashed: the leader still leads and writes.
  assert.equal(await leaderName(), leader);
  await query(tc.state, leader, "INSERT INTO wal_filler VALUES ('still writable')");
  // The member cannot stream: the WAL it needs is gone from the leader.
  await waitFor(`${victim} told its WAL is gone`, 60_000, async () => /requested WAL segment \w+ has already been removed/.test(pgLog(victim)));
  // Patroni's answer is to rebuild it: POST /reinitialize.
  const r = await fetch(`http://127.0.0.1:${member(tc.state, victim).apiPort}/reinitialize`, { method: 'POST', body: JSON.stringify({ force: true }) });
  assert.equal(r.status, 200, `reinitialize answered ${r.status}: ${await r.text()}`);
  await waitFor(`${victim} streaming again through ${slot}`, 180_000, async () => (await restartLsn(leader, slot))?.active === true);
  await waitFor(`the last row on ${victim}`, 60_000, async () => {
    const rows = await query<{ n: string }>(tc.state, victim, "SELECT count(*)::text AS n FROM wal_filler WHERE v = 'still writable'");
    return rows[0]?.n === '1';
  });
});

/** The server log of a member's PostgreSQL (LocalPostgres writes it next to the data directory). */
function pgLog(name: string): string {
  const f = `${member(tc.state, name).dataDir}.postgresql.log`;
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

/** The daemon's JSON log lines. */
function daemonLog(name: string): Array<Record<string, unknown>> {
  return memberLog(tc.state, name)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}
