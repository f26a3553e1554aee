/**
 * Debian's real `patronictl` (3.0.2) against a 3-member pgwarden cluster: it reads our store layout
 * directly (list, history, show-config, edit-config write the `config` key with CAS) and talks to our
 * REST API (pause/resume: PATCH /config on a member, then it watches the members' `pause` flags in the
 * store; switchover: POST /switchover to the leader). The same cases run against a cluster run by
 * Debian's Patroni as a control: a case failing for pgwarden only is ours to fix.
 *
 * The pgwarden members run from dist/ (`npm run build` first). One cluster per engine, reused by
 * the cases in order; every patronictl call has a timeout; teardown by PID in `after`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { member, type LocalState } from '../../src/local/cluster.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { clusterView, leaderOf, query, startTestCluster, waitFor, waitHealthy, type TestCluster } from '../helpers/e2e.js';

const PATRONICTL = '/usr/bin/patronictl';
const TTL = 10;
const DIST_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

type Engine = 'pgwarden' | 'patroni';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run patronictl with our config file; never rejects (the exit code is part of the result). */
function patronictl(file: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(PATRONICTL, ['-c', file, ...args], { timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, PAGER: 'cat' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function show(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** patronictl's own config: the scope, our etcd, and REST credentials if the members require them. */
function writeCtlConfig(state: LocalState): string {
  const memberCfg = parse(readFileSync(member(state, state.members[0]!.name).configFile, 'utf8')) as {
    restapi?: { authentication?: { username: string; password: string } };
  };
  const auth = memberCfg.restapi?.authentication;
  const cfg: Record<string, unknown> = { scope: state.scope, etcd3: { hosts: `127.0.0.1:${state.etcd.clientPort}` } };
  if (auth) {
    cfg.ctl = { authentication: auth };
    cfg.restapi = { authentication: auth };
  }
  const file = join(state.dir, 'patronictl.yml');
  writeFileSync(file, stringify(cfg), { mode: 0o600 });
  return file;
}

interface ListRow {
  Member: string;
  Host: string;
  Role: string;
  State: string;
  TL: string;
  'Lag in MB': string;
}

/** The member rows of `patronictl list`'s pretty table (lines `| a | b |`, the first being the header). */
function parseList(out: string): ListRow[] {
  const lines = out.split('\n').filter((l) => l.startsWith('|'));
  const cells = lines.map((l) => l.slice(1, l.lastIndexOf('|')).split('|').map((c) => c.trim()));
  const [head, ...rows] = cells;
  assert.ok(head, `a table header in:\n${out}`);
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] ?? ''])) as unknown as ListRow);
}

async function getJson(state: LocalState, name: string, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${member(state, name).apiPort}${path}`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as Record<string, unknown>;
}

/** A member's key as stored in etcd (`/service/<scope>/members/<name>`), read through etcd's JSON gateway. */
async function storedMember(state: LocalState, name: string): Promise<Record<string, unknown> | null> {
  const key = Buffer.from(`/service/${state.scope}/members/${name}`).toString('base64');
  const res = await fetch(`http://127.0.0.1:${state.etcd.clientPort}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key }),
    signal: AbortSignal.timeout(5000),
  });
  const kv = ((await res.json()) as { kvs?: Array<{ value: string }> }).kvs?.[0];
  return kv ? (JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) as Record<string, unknown>) : null;
}

async function allStreaming(state: LocalState, leader: string): Promise<boolean> {
  const rows = await query<{ n: number }>(state, leader, "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'");
  return rows[0]?.n === state.members.length - 1;
}

for (const engine of ['pgwarden', 'patroni'] as const satisfies readonly Engine[]) {
  describe(`patronictl against ${engine}`, () => {
    let tc: TestCluster | undefined;
    let file = '';
    const state = (): LocalState => tc!.state;

    before(async () => {
      if (engine === 'pgwarden' && !existsSync(DIST_MAIN)) throw new Error('dist/ is missing: run `npm run build` first');
      tc = await startTestCluster({ members: 3, ttl: TTL, loopWait: 1, retryTimeout: 3, engine, extra: { postgresql: { bin_dir: findBinDir() } } });
      await waitHealthy(tc.state, 180_000);
      file = writeCtlConfig(tc.state);
    });

    after(async () => {
      await tc?.destroy();
    });

    test('list: one Leader, two Replicas, running/streaming, numeric TL and Lag in MB', async () => {
      const r = await patronictl(file, ['list']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, new RegExp(`^\\+ Cluster: ${state().scope} -`), show(r));
      const rows = parseList(r.stdout);
      assert.deepEqual(rows.map((x) => x.Member).sort(), state().members.map((m) => m.name).sort(), show(r));
      assert.equal(rows.filter((x) => x.Role === 'Leader').length, 1, show(r));
      assert.equal(rows.filter((x) => x.Role === 'Replica').length, 2, show(r));
      for (const row of rows) {
        assert.match(row.State, /^(running|streaming)$/, show(r));
        assert.match(row.TL, /^\d+$/, show(r));
        assert.equal(row.Host, `127.0.0.1:${member(state(), row.Member).pgPort}`, show(r));
        if (row.Role === 'Replica') assert.match(row['Lag in MB'], /^\d+$/, show(r));
      }
      assert.doesNotMatch(r.stdout, /Maintenance mode/);
    });

    test('list -f json', async () => {
      const r = await patronictl(file, ['list', '-f', 'json']);
      assert.equal(r.code, 0, show(r));
      const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      assert.equal(rows.length, 3, show(r));
      const view = (await clusterView(state()))!;
      assert.equal(rows.find((x) => x.Role === 'Leader')?.Member, leaderOf(view).name);
      for (const row of rows) {
        assert.equal(row.Cluster, state().scope);
        assert.equal(typeof row.TL, 'number', show(r));
        if (row.Role === 'Replica') assert.equal(typeof row['Lag in MB'], 'number', show(r));
      }
    });

    test('list -e and topology: extended columns, leader first', async () => {
      const e = await patronictl(file, ['list', '-e']);
      assert.equal(e.code, 0, show(e));
      const head = e.stdout.split('\n').find((l) => l.startsWith('| Member'));
      assert.match(head ?? '', /\| Pending restart \| Scheduled restart \| Tags\s+\|/, show(e));
      const t = await patronictl(file, ['topology']);
      assert.equal(t.code, 0, show(t));
      const rows = parseList(t.stdout);
      assert.equal(rows[0]?.Role, 'Leader', show(t));
      assert.deepEqual(rows.slice(1).map((x) => x.Member.startsWith('+ ')), [true, true], show(t));
    });

    test('version <scope>: every member answers GET /patroni with its versions', async () => {
      const r = await patronictl(file, ['version', state().scope]);
      assert.equal(r.code, 0, show(r));
      assert.doesNotMatch(r.stdout, /failed to get version/, show(r));
      for (const m of state().members) assert.match(r.stdout, new RegExp(`^${m.name}: Patroni \\S+ PostgreSQL \\d+\\.\\d+$`, 'm'), show(r));
    });

    test('reload --force: every member accepts POST /reload', async () => {
      const r = await patronictl(file, ['reload', state().scope, '--force']);
      assert.equal(r.code, 0, show(r));
      assert.doesNotMatch(r.stdout, /Failed/, show(r));
      for (const m of state().members) {
        assert.match(r.stdout, new RegExp(`(Reload request received for member ${m.name} |No changes to apply on member ${m.name})`), show(r));
      }
    });

    test('restart --force of a replica; a scheduled restart shows in list and flush removes it', async () => {
      const view = await waitHealthy(state(), 120_000);
      const replica = view.members.find((m) => m.role !== 'leader')!.name;
      const r = await patronictl(file, ['restart', state().scope, replica, '--force'], 120_000);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, new RegExp(`Success: restart on member ${replica}`), show(r));
      await waitHealthy(state(), 120_000);

      const at = new Date(Date.now() + 3_600_000).toISOString();
      const s = await patronictl(file, ['restart', state().scope, replica, '--force', '--scheduled', at]);
      assert.equal(s.code, 0, show(s));
      assert.match(s.stdout, new RegExp(`Success: restart scheduled on member ${replica}`), show(s));
      const l = await waitFor('the scheduled restart in list', 30_000, async () => {
        const x = await patronictl(file, ['list']);
        const row = parseList(x.stdout).find((y) => y.Member === replica) as (ListRow & { 'Scheduled restart'?: string }) | undefined;
        return row?.['Scheduled restart'] ? x : null;
      });
      assert.equal(l.code, 0, show(l));
      const f = await patronictl(file, ['flush', state().scope, replica, 'restart', '--force']);
      assert.equal(f.code, 0, show(f));
      assert.match(f.stdout, new RegExp(`Success: flush scheduled restart for member ${replica}`), show(f));
      await waitFor('no scheduled restart in list', 30_000, async () => !/Scheduled restart/.test((await patronictl(file, ['list'])).stdout));
    });

    test('switchover --scheduled shows in list; flush switchover cancels it (DELETE /switchover)', async () => {
      const view = await waitHealthy(state(), 120_000);
      const leader = leaderOf(view).name;
      const target = view.members.find((m) => m.name !== leader)!.name;
      const at = new Date(Date.now() + 3_600_000).toISOString();
      const r = await patronictl(file, ['switchover', '--force', '--candidate', target, '--scheduled', at]);
      assert.equal(r.code, 0, show(r));
      assert.doesNotMatch(r.stdout, /failed, details/, show(r));
      const l = await patronictl(file, ['list']);
      assert.match(l.stdout, /Switchover scheduled at: /, show(l));
      assert.match(l.stdout, new RegExp(`to: ${target}`), show(l));
      const f = await patronictl(file, ['flush', state().scope, 'switchover', '--force']);
      assert.equal(f.code, 0, show(f));
      assert.match(f.stdout, /^Success: /m, show(f));
      const after = await patronictl(file, ['list']);
      assert.doesNotMatch(after.stdout, /Switchover scheduled/, show(after));
      assert.equal(leaderOf((await clusterView(state()))!).name, leader, 'the leader did not change');
    });

    test('show-config: the dynamic config as YAML, ttl and loop_wait as configured', async () => {
      const r = await patronictl(file, ['show-config']);
      assert.equal(r.code, 0, show(r));
      const cfg = parse(r.stdout) as Record<string, unknown>;
      assert.equal(cfg.ttl, TTL, show(r));
      assert.equal(cfg.loop_wait, 1, show(r));
      assert.equal(cfg.retry_timeout, 3, show(r));
      assert.equal((cfg.postgresql as { use_pg_rewind?: unknown } | undefined)?.use_pg_rewind, true, show(r));
    });

    test('edit-config --force --set loop_wait=2: stored, shown, and served by GET /config on every member', async () => {
      const r = await patronictl(file, ['edit-config', '--force', '--set', 'loop_wait=2']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Configuration changed/, show(r));
      const s = await patronictl(file, ['show-config']);
      assert.equal((parse(s.stdout) as { loop_wait?: unknown }).loop_wait, 2, show(s));
      for (const m of state().members) {
        await waitFor(`loop_wait 2 in GET /config of ${m.name}`, 30_000, async () => (await getJson(state(), m.name, '/config')).loop_wait === 2);
      }
      const back = await patronictl(file, ['edit-config', '--force', '--set', 'loop_wait=1']);
      assert.equal(back.code, 0, show(back));
      for (const m of state().members) {
        await waitFor(`loop_wait 1 in GET /config of ${m.name}`, 30_000, async () => (await getJson(state(), m.name, '/config')).loop_wait === 1);
      }
    });

    // Patroni's touch_member publishes `pause: true` in the member key while paused; `patronictl pause|resume
    // --wait` waits for exactly that (ctl.py wait_until_pause_is_applied), so without it `resume --wait`
    // returns before the members have resumed.

    test('pause --wait: every member publishes and reports pause, list shows maintenance mode', async () => {
      const r = await patronictl(file, ['pause', '--wait']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Success: cluster management is paused/, show(r));
      assert.doesNotMatch(r.stdout, /didn't recognized pause state/, show(r));
      for (const m of state().members) {
        assert.equal((await getJson(state(), m.name, '/patroni')).pause, true, `GET /patroni of ${m.name}`);
      }
      const l = await patronictl(file, ['list']);
      assert.equal(l.code, 0, show(l));
      assert.match(l.stdout, /Maintenance mode: on/, show(l));
      for (const m of state().members) {
        assert.equal((await storedMember(state(), m.name))?.pause, true, `"pause" in the stored member key of ${m.name}`);
      }
    });

    test('resume --wait: when it returns, pause is cleared on every member', async () => {
      const r = await patronictl(file, ['resume', '--wait']);
      try {
        assert.equal(r.code, 0, show(r));
        assert.match(r.stdout, /Success: cluster management is resumed/, show(r));
        for (const m of state().members) {
          assert.notEqual((await getJson(state(), m.name, '/patroni')).pause, true, `GET /patroni of ${m.name}`);
          assert.notEqual((await storedMember(state(), m.name))?.pause, true, `"pause" in the stored member key of ${m.name}`);
        }
        const l = await patronictl(file, ['list']);
        assert.doesNotMatch(l.stdout, /Maintenance mode/, show(l));
      } finally {
        // Whatever the outcome, the cases after this one need the cluster running unpaused.
        for (const m of state().members) {
          await waitFor(`pause cleared on ${m.name}`, 30_000, async () => (await getJson(state(), m.name, '/patroni')).pause !== true);
        }
      }
    });

    let candidate = '';
    test('switchover --force --candidate: the candidate leads, the old leader streams from it', async () => {
      const view = await waitHealthy(state(), 120_000);
      const old = leaderOf(view).name;
      candidate = view.members.find((m) => m.name !== old)!.name;
      const r = await patronictl(file, ['switchover', '--force', '--candidate', candidate], 120_000);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, new RegExp(`Successfully switched over to "${candidate}"`), show(r));
      await waitFor(`${candidate} leading with ${old} streaming from it`, 120_000, async () => {
        const v = await clusterView(state());
        return v !== null && leaderOf(v).name === candidate && (await allStreaming(state(), candidate));
      });
      const l = await patronictl(file, ['list']);
      const rows = parseList(l.stdout);
      assert.equal(rows.find((x) => x.Role === 'Leader')?.Member, candidate, show(l));
      assert.equal(rows.find((x) => x.Member === old)?.Role, 'Replica', show(l));
    });

    test('history: the switchover is the last line, naming the new leader', async () => {
      assert.ok(candidate, 'runs after the switchover case');
      const lines = await waitFor('the switchover in the history', 30_000, async () => {
        const r = await patronictl(file, ['history', '-f', 'json']);
        if (r.code !== 0) throw new Error(show(r));
        const h = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
        return h.at(-1)?.['New Leader'] === candidate ? h : null;
      });
      const last = lines.at(-1)!;
      assert.equal(typeof last.TL, 'number');
      assert.equal(typeof last.LSN, 'number');
      assert.ok(!Number.isNaN(Date.parse(String(last.Timestamp))), `timestamp ${String(last.Timestamp)}`);
      const pretty = await patronictl(file, ['history']);
      assert.equal(pretty.code, 0, show(pretty));
      assert.match(pretty.stdout, /\|\s+TL\s+\|\s+LSN\s+\|\s+Reason\s+\|\s+Timestamp\s+\|\s+New Leader\s+\|/, show(pretty));
      assert.match(pretty.stdout, new RegExp(`\\|\\s+${candidate}\\s+\\|`), show(pretty));
    });
  });
}
