/**
 * Verbs that change the dynamic config: pause, resume, edit-config. The change goes to PATCH /config
 * of the leader (else of any member that answers), which merges it into the stored config with CAS;
 * when no member answers it is written to the store's `config` key directly, with CAS on the version read.
 */
import { clusterMode } from '../../api/cluster-json.js';
import type { Cluster, Member } from '../../dcs/types.js';
import { failed, membersLeaderFirst } from '../args.js';
import { ask, bodyText, isError, loadCluster, type CtlContext } from '../context.js';
import { unifiedDiff } from '../diff.js';
import { applyConfigChanges, deepEqual, mergePatch, patchConfig, pgPairs, yamlMapping, type Obj } from '../editconfig.js';
import { dumpYaml } from '../format.js';

type Sent = { via: 'api'; member: string } | { via: 'store' };

/** PATCH /config to the leader first, then the others; CAS write of the key when nobody answers. */
async function sendConfigPatch(ctx: CtlContext, cluster: Cluster, patch: Obj, what: string): Promise<Sent> {
  const unreachable: string[] = [];
  for (const m of membersLeaderFirst(cluster)) {
    const r = await ask(ctx, m, 'PATCH', 'config', patch);
    if (isError(r)) {
      unreachable.push(`${m.name}: ${r.error}`);
      continue;
    }
    if (r.status === 200) return { via: 'api', member: m.name };
    throw failed(`Failed: ${what} status code=${r.status}, (${bodyText(r)})`);
  }
  const next = patchConfig(cluster.config?.value ?? {}, patch);
  let ok: boolean;
  try {
    ok = await ctx.store.setConfig(next, cluster.config?.version ?? null);
  } catch (e) {
    throw failed(`Can not find accessible cluster member (${unreachable.join('; ') || 'none has an api_url'}), and the store write failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!ok) throw failed('Config modification aborted due to concurrent changes');
  ctx.out(`No member's REST API answered (${unreachable.join('; ') || 'none has an api_url'}): wrote the config key directly`);
  return { via: 'store' };
}

export interface PauseOptions {
  paused: boolean;
  wait: boolean;
  /** With wait: how long the members get to show the new state; default 2 × loop_wait + 10 s. */
  waitTimeoutMs?: number;
  pollMs?: number;
}

/** `pause` / `resume` (patronictl's toggle_pause): PATCH {pause: true | null}. */
export async function togglePause(ctx: CtlContext, o: PauseOptions): Promise<void> {
  const cluster = await loadCluster(ctx);
  const word = o.paused ? 'pause' : 'resume';
  if (clusterMode(cluster, 'pause') === o.paused) throw failed(`Cluster is ${o.paused ? 'already' : 'not'} paused`);
  await sendConfigPatch(ctx, cluster, { pause: o.paused ? true : null }, `${word} cluster management`);
  if (o.wait) await waitPauseApplied(ctx, cluster, o);
  ctx.out(`Success: cluster management is ${o.paused ? 'paused' : 'resumed'}`);
}

/**
 * Until every member's GET /patroni reports the new `pause` state. A member that cannot be reached is
 * not waited for (it is named); one that answers with the old state past the deadline fails the command.
 */
async function waitPauseApplied(ctx: CtlContext, cluster: Cluster, o: PauseOptions): Promise<void> {
  ctx.out(`'${o.paused ? 'pause' : 'resume'}' request sent, waiting until it is recognized by all nodes`);
  const loopWait = Number(cluster.config?.value.loop_wait ?? 10);
  const timeoutMs = o.waitTimeoutMs ?? ((Number.isFinite(loopWait) ? loopWait : 10) * 2 + 10) * 1000;
  const deadline = ctx.clock.now() + timeoutMs;
  const members = cluster.members.filter((m) => m.data.api_url);
  for (;;) {
    const states = await Promise.all(members.map(async (m) => [m, await pauseState(ctx, m)] as const));
    const wrong = states.filter(([, s]) => s !== 'down' && s !== o.paused).map(([m]) => m.name);
    if (wrong.length === 0) {
      const down = states.filter(([, s]) => s === 'down').map(([m]) => m.name);
      if (down.length) ctx.out(`Not reachable, not waited for: ${down.join(', ')}`);
      return;
    }
    if (ctx.clock.now() >= deadline) throw failed(`${wrong.join(', ')} members didn't recognize ${o.paused ? 'pause' : 'resume'} state after ${timeoutMs / 1000} seconds`);
    await ctx.clock.sleep(o.pollMs ?? 500);
  }
}

async function pauseState(ctx: CtlContext, m: Member): Promise<boolean | 'down' | 'unknown'> {
  const r = await ask(ctx, m, 'GET', 'patroni');
  if (isError(r)) return 'down';
  try {
    const j = JSON.parse(r.body) as { pause?: unknown };
    return j.pause === true;
  } catch {
    return 'unknown';
  }
}

export interface EditConfigOptions {
  sets: string[];
  pgs: string[];
  /** A YAML file merged into the config, '-' for stdin. */
  apply?: string;
  /** A YAML file replacing the config, '-' for stdin. */
  replace?: string;
  quiet: boolean;
  force: boolean;
  /** Reads `--apply`/`--replace` sources ('-' is stdin). */
  readSource(name: string): Promise<string>;
  /** Opens the text in the user's editor and returns what was saved. */
  edit(text: string): Promise<string>;
}

/** `edit-config`: change, show the diff, ask, send the difference as a merge patch. */
export async function editConfig(ctx: CtlContext, o: EditConfigOptions): Promise<void> {
  const cluster = await loadCluster(ctx);
  const current = (cluster.config?.value ?? {}) as Obj;
  const before = dumpYaml(current);
  let changed = current;
  let after: string | null = null;
  if (o.replace !== undefined) changed = yamlMapping(await o.readSource(o.replace), o.replace === '-' ? 'stdin' : o.replace);
  if (o.apply !== undefined) changed = patchConfig(changed, yamlMapping(await o.readSource(o.apply), o.apply === '-' ? 'stdin' : o.apply));
  if (o.sets.length || o.pgs.length) changed = applyConfigChanges(changed, [...o.sets, ...pgPairs(o.pgs)]);
  if (o.replace !== undefined || o.apply !== undefined || o.sets.length || o.pgs.length) after = dumpYaml(changed);
  if (after === null) {
    after = await o.edit(before);
    changed = yamlMapping(after, 'the edited config');
  }
  if (deepEqual(current, changed)) {
    if (!o.quiet) ctx.out('Not changed');
    return;
  }
  if (!o.quiet) ctx.out(unifiedDiff(before, after).join('\n'));
  if ((o.apply === '-' || o.replace === '-') && !o.force) throw failed('Use --force option to apply changes');
  if (!o.force && !(await ctx.term.confirm('Apply these changes?'))) throw failed('Aborted: the configuration was not changed');
  await sendConfigPatch(ctx, cluster, mergePatch(current, changed), 'edit-config');
  ctx.out('Configuration changed');
}
