/**
 * `pgwarden ctl` against real clusters: one run by Debian's Patroni 3.0.2 (the reference — our client
 * proven against the REST API it imitates) and one run by pgwarden, the same cases for both. Each
 * cluster has 3 members, member-1 started first so that it leads, and member-3 tagged
 * `replicatefrom: member-2` (a cascading replica, for `topology`); the REST APIs require basic auth
 * (`restapi.authentication`), which ctl takes from the member config given with `-c`. Read-only verbs
 * are compared byte for byte with Debian's `patronictl` on the same cluster (its config has no
 * credentials: those verbs read the store only). The cases run in order on one cluster per engine.
 *
 * ctl runs from the source (tsx), the pgwarden daemons from dist/ (`npm run build` first). Every
 * command has a timeout; the clusters are torn down by PID in `after`, whatever happened.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { createLocalCluster, member, startLocalEtcd, startMember, type LocalState } from '../../src/local/cluster.js';
import { fetchCluster, localDown } from '../../src/local/run.js';
import { findBinDir } from '../../src/postgres/bin.js';
import { clusterView, leaderOf, query, waitFor, waitHealthy } from '../helpers/e2e.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST_MAIN = join(ROOT, 'dist/cli/main.js');
const PATRONICTL = '/usr/bin/patronictl';
const API_AUTH = { username: 'ctl-test', password: 'not-a-secret' };
const MAIN = 'import("./src/cli/main.ts").then((m) => m.main(["node", "pgwarden", ...process.argv.slice(1)]))';

type Engine = 'patroni' | 'pgwarden';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command with optional stdin; never rejects (the exit code is part of the result). */
function exec(cmd: string, args: string[], input = '', timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PAGER: 'cat' };
    delete env.PATRONICTL_CONFIG_FILE;
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** `pgwarden ctl <args>` from the source tree. */
function ctl(args: string[], input = '', timeoutMs = 120_000): Promise<Run> {
  return exec(process.execPath, ['--import', 'tsx', '-e', MAIN, '--', 'ctl', ...args], input, timeoutMs);
}

function patronictl(file: string, args: string[]): Promise<Run> {
  return exec(PATRONICTL, ['-c', file, ...args]);
}

function show(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** The rows of a pretty table (`| a | b |` lines, the first being the header), cells trimmed. */
function tableRows(out: string): Array<Record<string, string>> {
  const cells = out
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) => l.slice(1, l.lastIndexOf('|')).split('|').map((c) => c.trim()));
  const [head, ...rows] = cells;
  assert.ok(head, `a table in:\n${out}`);
  return rows.filter((r) => r.some((c) => c !== '')).map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] ?? ''])));
}

/**
 * Run ours and patronictl until both print the same (a member may publish a new position between the
 * two runs); after 30 s the difference fails the case.
 */
async function sameAsPatronictl(file: string, args: string[], ours: string[] = ['-c', file, ...args]): Promise<Run> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const a = await ctl(ours);
    const b = await patronictl(file, args);
    assert.equal(a.code, 0, show(a));
    assert.equal(b.code, 0, show(b));
    if (a.stdout === b.stdout || Date.now() > deadline) {
      assert.equal(a.stdout, b.stdout, `ctl ${args.join(' ')}: ours (actual) vs patronictl (expected)`);
      return a;
    }
  }
}

async function getJson(state: LocalState, name: string, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${member(state, name).apiPort}${path}`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as Record<string, unknown>;
}

/** etcd's JSON gateway: put a key, count the keys under a prefix. */
async function etcd(state: LocalState, op: 'put' | 'range', key: string, value = ''): Promise<number> {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const end = Buffer.from(key);
  end[end.length - 1]! += 1;
  const body = op === 'put' ? { key: b64(key), value: b64(value) } : { key: b64(key), range_end: end.toString('base64'), count_only: true };
  const res = await fetch(`http://127.0.0.1:${state.etcd.clientPort}/v3/kv/${op}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  const j = (await res.json()) as { count?: string };
  return Number(j.count ?? 0);
}

async function streamingFrom(state: LocalState, name: string): Promise<number> {
  const rows = await query<{ n: number }>(state, name, "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'");
  return rows[0]?.n ?? 0;
}

/** Healthy, with `leader` leading and the cascade in place (member-3 from member-2 unless member-2 leads). */
async function settled(state: LocalState, leader: string): Promise<void> {
  await waitFor(`${leader} leading, every replica streaming`, 120_000, async () => {
    const v = await clusterView(state);
    if (!v || leaderOf(v).name !== leader || v.members.some((m) => m.state !== 'running' && m.state !== 'streaming')) return null;
    const direct = leader === 'member-2' ? 2 : 1;
    return (await streamingFrom(state, leader)) === direct;
  });
}

for (const engine of ['patroni', 'pgwarden'] as const satisfies readonly Engine[]) {
  describe(`pgwarden ctl against a cluster run by ${engine}`, () => {
    let dir = '';
    let state: LocalState;
    /** The member's own daemon config (what `-c` is for), and a patronictl-style config for patronictl. */
    let daemonCfg = '';
    let ctlCfg = '';
    const scope = (): string => state.scope;

    before(async () => {
      if (engine === 'pgwarden' && !existsSync(DIST_MAIN)) throw new Error('dist/ is missing: run `npm run build` first');
      dir = mkdtempSync('/tmp/pgwarden-ctl-');
      state = await createLocalCluster({
        dir,
        members: 3,
        ttl: 20,
        loopWait: 1,
        retryTimeout: 3,
        engine,
        extra: { postgresql: { bin_dir: findBinDir() }, tags: { 'member-3': { replicatefrom: 'member-2' } } },
      });
      for (const m of state.members) {
        // Rewritten in place: the file keeps the owner and mode createLocalCluster gave it.
        const cfg = parse(readFileSync(m.configFile, 'utf8')) as { restapi: Record<string, unknown> };
        cfg.restapi.authentication = API_AUTH;
        writeFileSync(m.configFile, stringify(cfg));
      }
      await startLocalEtcd(state);
      startMember(state, 'member-1');
      await waitFor('member-1 leading', 120_000, async () => (await fetchCluster(state))?.members.some((m) => m.name === 'member-1' && m.role === 'leader' && m.state === 'running'));
      startMember(state, 'member-2');
      startMember(state, 'member-3');
      await waitHealthy(state, 180_000);
      await settled(state, 'member-1');
      daemonCfg = member(state, 'member-1').configFile;
      ctlCfg = join(dir, 'patronictl.yml');
      writeFileSync(ctlCfg, `scope: ${state.scope}\netcd3:\n  hosts: 127.0.0.1:${state.etcd.clientPort}\n`);
    });

    after(async () => {
      if (!dir) return;
      if (existsSync(join(dir, 'state.json'))) await localDown(dir, { info: () => undefined }).catch((e: unknown) => console.error('teardown:', e));
      if (process.env.PGWARDEN_KEEP_TEST_DIR) console.error(`kept ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    });

    test('list: the table patronictl prints, one Leader, two Replicas, TL and lag', async () => {
      const r = await sameAsPatronictl(ctlCfg, ['list'], ['-c', daemonCfg, 'list']);
      assert.match(r.stdout, new RegExp(`^\\+ Cluster: ${scope()} -`), show(r));
      const rows = tableRows(r.stdout);
      assert.deepEqual(rows.map((x) => [x.Member, x.Role]), [['member-1', 'Leader'], ['member-2', 'Replica'], ['member-3', 'Replica']], show(r));
      for (const row of rows) {
        assert.match(row.State!, /^(running|streaming)$/, show(r));
        assert.match(row.TL!, /^\d+$/, show(r));
        assert.equal(row.Host, `127.0.0.1:${member(state, row.Member!).pgPort}`, show(r));
        assert.match(row['Lag in MB']!, row.Role === 'Leader' ? /^$/ : /^\d+$/, show(r));
      }
      assert.equal(rows[2]!.Tags, 'replicatefrom: member-2');
      await sameAsPatronictl(ctlCfg, ['list', '-f', 'json']);
      await sameAsPatronictl(ctlCfg, ['list', '-e', '-f', 'yaml']);
      await sameAsPatronictl(ctlCfg, ['list', '-f', 'tsv']);
    });

    test('list: --dcs-url + --scope, a positional cluster name, --watch bounded by --watch-count', async () => {
      const url = `http://127.0.0.1:${state.etcd.clientPort}`;
      const r = await ctl(['--dcs-url', url, '--scope', scope(), 'list', scope(), '-W', '--watch-count', '2', '-t']);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout.match(/\+ Cluster: /g)?.length, 2, show(r));
      const other = await ctl(['-c', daemonCfg, 'list', 'nosuchcluster']);
      assert.equal(other.code, 1, show(other));
      assert.match(other.stderr, /cluster nosuchcluster does not match the configured scope/);
      const noStore = await ctl(['--scope', scope(), 'list']);
      assert.equal(noStore.code, 2, show(noStore));
    });

    test('topology: member-3 under member-2, as patronictl draws it', async () => {
      const r = await sameAsPatronictl(ctlCfg, ['topology']);
      assert.deepEqual(tableRows(r.stdout).map((x) => x.Member), ['member-1', '+ member-2', '+ member-3'], show(r));
      assert.match(r.stdout, /^\| {3}\+ member-3 /m, show(r));
    });

    test('show-config, dsn: as patronictl prints them', async () => {
      const s = await sameAsPatronictl(ctlCfg, ['show-config']);
      const cfg = parse(s.stdout) as Record<string, unknown>;
      assert.equal(cfg.ttl, 20, show(s));
      assert.equal(cfg.loop_wait, 1, show(s));
      const d = await sameAsPatronictl(ctlCfg, ['dsn']);
      assert.equal(d.stdout, `host=127.0.0.1 port=${member(state, 'member-1').pgPort}\n`);
      await sameAsPatronictl(ctlCfg, ['dsn', '-r', 'replica']);
      const m3 = await sameAsPatronictl(ctlCfg, ['dsn', '-m', 'member-3']);
      assert.equal(m3.stdout, `host=127.0.0.1 port=${member(state, 'member-3').pgPort}\n`);
      const typo = await ctl(['-c', ctlCfg, 'dsn', '-m', 'member-9']);
      assert.equal(typo.code, 1, show(typo));
    });

    test('edit-config --force --set: stored, served by GET /config on every member; unchanged says so', async () => {
      const r = await ctl(['-c', daemonCfg, 'edit-config', '--force', '--set', 'loop_wait=2', '--pg', 'work_mem=8MB']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /^-loop_wait: 1\n\+loop_wait: 2\n/m, show(r));
      assert.match(r.stdout, /^\+ {4}work_mem: 8MB$/m, show(r));
      assert.match(r.stdout, /Configuration changed\n$/, show(r));
      for (const m of state.members) {
        await waitFor(`loop_wait 2 in GET /config of ${m.name}`, 30_000, async () => (await getJson(state, m.name, '/config')).loop_wait === 2);
      }
      const same = await ctl(['-c', daemonCfg, 'edit-config', '--force', '--set', 'loop_wait=2']);
      assert.equal(same.code, 0, show(same));
      assert.equal(same.stdout, 'Not changed\n');
      const back = await ctl(['-c', daemonCfg, 'edit-config', '--force', '-q', '--set', 'loop_wait=1', '--pg', 'work_mem=']);
      assert.equal(back.code, 0, show(back));
      const s = parse((await ctl(['-c', daemonCfg, 'show-config'])).stdout) as { loop_wait?: number; postgresql?: { parameters?: Record<string, unknown> } };
      assert.equal(s.loop_wait, 1);
      assert.equal(s.postgresql?.parameters?.work_mem, undefined);
    });

    test('pause --wait: when it returns every member reports pause; list shows maintenance mode', async () => {
      const r = await ctl(['-c', daemonCfg, 'pause', '--wait']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Success: cluster management is paused/, show(r));
      for (const m of state.members) assert.equal((await getJson(state, m.name, '/patroni')).pause, true, `GET /patroni of ${m.name}`);
      const l = await ctl(['-c', daemonCfg, 'list']);
      assert.match(l.stdout, /^ Maintenance mode: on$/m, show(l));
      const again = await ctl(['-c', daemonCfg, 'pause']);
      assert.equal(again.code, 1, show(again));
      assert.match(again.stderr, /Cluster is already paused/);
    });

    test('resume --wait: when it returns no member reports pause', async () => {
      try {
        const r = await ctl(['-c', daemonCfg, 'resume', '--wait']);
        assert.equal(r.code, 0, show(r));
        assert.match(r.stdout, /Success: cluster management is resumed/, show(r));
        for (const m of state.members) assert.notEqual((await getJson(state, m.name, '/patroni')).pause, true, `GET /patroni of ${m.name}`);
      } finally {
        // The cases after this one need the cluster unpaused, whatever happened here.
        if ((await ctl(['-c', daemonCfg, 'show-config'])).stdout.includes('pause: true')) await ctl(['-c', daemonCfg, 'resume']);
      }
    });

    test('reload and restart of a named member', async () => {
      const r = await ctl(['-c', daemonCfg, 'reload', scope(), '--force']);
      assert.equal(r.code, 0, show(r));
      for (const m of state.members) assert.match(r.stdout, new RegExp(`(Reload request received for member ${m.name} |No changes to apply on member ${m.name}$)`, 'm'), show(r));
      const before = (await getJson(state, 'member-3', '/patroni')).postmaster_start_time;
      const s = await ctl(['-c', daemonCfg, 'restart', scope(), 'member-3', '--force']);
      assert.equal(s.code, 0, show(s));
      assert.match(s.stdout, /^Success: restart on member member-3$/m, show(s));
      assert.notEqual((await getJson(state, 'member-3', '/patroni')).postmaster_start_time, before);
      await settled(state, 'member-1');
    });

    test('typos and refusals exit 1 with the reason; nothing changes', async () => {
      const noAuth = await ctl(['-c', ctlCfg, 'pause']);
      assert.equal(noAuth.code, 1, show(noAuth));
      assert.match(noAuth.stderr, /Failed: pause cluster management status code=401/, show(noAuth));
      const typo = await ctl(['-c', daemonCfg, 'restart', scope(), 'member-9', '--force']);
      assert.equal(typo.code, 1, show(typo));
      assert.match(typo.stderr, /member-9 is not a member of cluster/);
      const cand = await ctl(['-c', daemonCfg, 'switchover', '--force', '--candidate', 'member-9']);
      assert.equal(cand.code, 1, show(cand));
      assert.match(cand.stderr, /Member member-9 does not exist in cluster/);
      const past = await ctl(['-c', daemonCfg, 'switchover', '--force', '--candidate', 'member-2', '--scheduled', '2020-01-01T00:00+00:00']);
      assert.equal(past.code, 1, show(past));
      assert.match(past.stderr, /Switchover failed, details: 422, Cannot schedule switchover in the past/, show(past));
      const declined = await ctl(['-c', daemonCfg, 'switchover', '--candidate', 'member-2'], '\nnow\nn\n');
      assert.equal(declined.code, 1, show(declined));
      assert.match(declined.stderr, /Aborting switchover/);
      assert.equal(leaderOf((await clusterView(state))!).name, 'member-1');
    });

    test('switchover answering the prompts on stdin: member-2 leads, the history names it', async () => {
      const r = await ctl(['-c', daemonCfg, 'switchover'], '\nmember-2\n\ny\n');
      assert.equal(r.code, 0, show(r));
      assert.ok(r.stdout.includes("Primary [member-1]: Candidate ['member-2', 'member-3'] []: When should the switchover take place (e.g. "), show(r));
      assert.ok(r.stdout.includes('Are you sure you want to switchover cluster demo, demoting current leader member-1? [y/N]: '), show(r));
      assert.match(r.stdout, /Successfully switched over to "member-2"/, show(r));
      await settled(state, 'member-2');
      const h = await waitFor('the switchover in the history', 30_000, async () => {
        const x = await ctl(['-c', daemonCfg, 'history', '-f', 'json']);
        const lines = JSON.parse(x.stdout) as Array<Record<string, unknown>>;
        return lines.at(-1)?.['New Leader'] === 'member-2' ? lines : null;
      });
      assert.equal(typeof h.at(-1)!.LSN, 'number');
      await sameAsPatronictl(ctlCfg, ['history']);
      await sameAsPatronictl(ctlCfg, ['history', '-f', 'json']);
      const l = tableRows((await sameAsPatronictl(ctlCfg, ['list'])).stdout);
      assert.deepEqual(l.map((x) => x.Role), ['Replica', 'Leader', 'Replica']);
    });

    test('failover --candidate --force: member-1 leads again', async () => {
      const r = await ctl(['-c', daemonCfg, 'failover', '--candidate', 'member-1', '--force']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /(Successfully failed over|Failed over) to "member-1"|Successfully switched over to "member-1"/, show(r));
      await settled(state, 'member-1');
    });

    test('reinit --force --wait: the replica is rebuilt and running when the command returns', async () => {
      const r = await ctl(['-c', daemonCfg, 'reinit', scope(), 'member-3', '--force', '--wait'], '', 300_000);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Success: reinitialize for member member-3\nWaiting for reinitialize to complete on: member-3\nReinitialize is completed on: member-3\n$/, show(r));
      assert.equal((await getJson(state, 'member-3', '/patroni')).state, 'running');
      const leader = await ctl(['-c', daemonCfg, 'reinit', scope(), 'member-1', '--force']);
      assert.equal(leader.code, 1, show(leader));
      await settled(state, 'member-1');
    });

    test('remove: typed confirmations, then every key of that cluster (and only it) is gone', async () => {
      const ghost = `/service/ghost/`;
      await etcd(state, 'put', `${ghost}leader`, 'g1');
      await etcd(state, 'put', `${ghost}members/g1`, JSON.stringify({ conn_url: 'postgres://127.0.0.1:1/postgres', api_url: 'http://127.0.0.1:1/patroni', state: 'running', role: 'master' }));
      await etcd(state, 'put', `${ghost}config`, '{}');
      const url = `http://127.0.0.1:${state.etcd.clientPort}`;
      const wrong = await ctl(['--dcs-url', url, '--scope', 'ghost', 'remove', 'ghost'], 'ghost\nYes I am aware\nnot-the-leader\n');
      assert.equal(wrong.code, 1, show(wrong));
      assert.equal(await etcd(state, 'range', ghost), 3);
      const r = await ctl(['--dcs-url', url, '--scope', 'ghost', 'remove', 'ghost'], 'ghost\nYes I am aware\ng1\n');
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Please confirm the cluster name to remove: You are about to remove all information in DCS for ghost, please type: "Yes I am aware": /, show(r));
      assert.equal(await etcd(state, 'range', ghost), 0);
      assert.ok((await etcd(state, 'range', `/service/${scope()}/`)) > 0, 'the real cluster is untouched');
    });
  });
}
