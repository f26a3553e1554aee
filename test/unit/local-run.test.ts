import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ClusterJson, ClusterMemberJson } from '../../src/api/cluster-json.js';
import type { LocalMember, LocalState } from '../../src/local/cluster.js';
import { clusterProgress, isHealthy, memberLogTails } from '../../src/local/run.js';

const m = (name: string, role: ClusterMemberJson['role'], state: string, lag?: number | 'unknown'): ClusterMemberJson => ({
  name,
  role,
  state,
  api_url: `http://127.0.0.1/${name}`,
  ...(lag === undefined ? {} : { lag }),
});
const cluster = (...members: ClusterMemberJson[]): ClusterJson => ({ scope: 'demo', members });

test('healthy: one running leader and every other member running with a known lag', () => {
  const c = cluster(m('a', 'leader', 'running'), m('b', 'replica', 'streaming', 0), m('c', 'sync_standby', 'streaming', 16));
  // Only the state "running" counts, as pgwarden and Patroni 3.0 report a running member.
  assert.equal(clusterProgress(c, 3), '1 leader, 0/2 replicas streaming (a: leader running, b: replica streaming, c: sync_standby streaming)');
  const ok = cluster(m('a', 'leader', 'running'), m('b', 'replica', 'running', 0), m('c', 'sync_standby', 'running', 16));
  assert.equal(clusterProgress(ok, 3), 'healthy');
  assert.equal(isHealthy(ok, 3), true);
  // A member still missing from /cluster, or expected in greater number, is not healthy.
  assert.equal(isHealthy(ok, 4), false);
});

test('not healthy: no leader, two leaders, a replica without a lag, no answer', () => {
  assert.equal(clusterProgress(cluster(m('a', 'replica', 'running', 0), m('b', 'replica', 'running', 0)), 2), '0 leader, 2/1 replicas streaming (a: replica running, b: replica running)');
  assert.equal(isHealthy(cluster(m('a', 'leader', 'running'), m('b', 'leader', 'running')), 2), false);
  assert.equal(clusterProgress(cluster(m('a', 'leader', 'running'), m('b', 'replica', 'running', 'unknown')), 2), '1 leader, 0/1 replicas streaming (a: leader running, b: replica running)');
  assert.equal(clusterProgress(cluster(m('a', 'leader', 'stopped'), m('b', 'replica', 'running', 0)), 2), '0 leader, 1/1 replicas streaming (a: leader stopped, b: replica running)');
  assert.equal(clusterProgress(cluster(), 3), '0 leader, 0/2 replicas streaming (no members yet)');
  assert.equal(isHealthy(null, 1), false);
});

test("memberLogTails: each member's last lines, and what has no log yet", () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-local-run-'));
  try {
    const member = (name: string): LocalMember => ({ name, logFile: join(dir, `${name}.log`) }) as LocalMember;
    const state = { dir, members: [member('member-1'), member('member-2')] } as LocalState;
    writeFileSync(join(dir, 'member-1.log'), ['one', 'two', 'three', 'four', ''].join('\n'));
    assert.equal(
      memberLogTails(state, 2),
      [`--- member-1, last lines of ${dir}/member-1.log:`, 'three', 'four', `--- member-2, last lines of ${dir}/member-2.log:`, '(empty)'].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
