/**
 * `switchover` and `failover`, as patronictl 3.0.2's `_do_failover_or_switchover`: check the names
 * against the cluster, ask what was not given (unless --force), then POST /switchover or /failover to
 * the leader's REST API (the candidate's when there is no leader). When no member can be reached the
 * request is written to the store's `failover` key, which the members act on.
 */
import { clusterMode, isStandbyClusterConfig } from '../../api/cluster-json.js';
import type { Cluster } from '../../dcs/types.js';
import { failed, nextHourExample, parseScheduled, type Scheduled } from '../args.js';
import { ask, bodyText, isError, loadCluster, printMembers, type CtlContext } from '../context.js';
import { pyList, timestamp } from '../format.js';

export interface SwitchoverOptions {
  action: 'switchover' | 'failover';
  leader?: string;
  candidate?: string;
  /** ISO-8601 or 'now'; switchover only. */
  scheduled?: string;
  force: boolean;
}

const title = (s: string): string => s[0]!.toUpperCase() + s.slice(1);

/** What to request, once every name is checked against the cluster and every question answered. */
interface Plan {
  leader?: string;
  candidate?: string;
  scheduled: Scheduled | null;
}

export async function switchover(ctx: CtlContext, o: SwitchoverOptions): Promise<void> {
  const cluster = await loadCluster(ctx);
  ctx.out('Current cluster topology');
  printMembers(ctx, cluster);
  const plan = await makePlan(ctx, cluster, o);
  if (!o.force) await confirmPlan(ctx, o.action, plan);
  await send(ctx, cluster, o.action, plan);
}

async function makePlan(ctx: CtlContext, cluster: Cluster, o: SwitchoverOptions): Promise<Plan> {
  const { action, force } = o;
  const current = cluster.leader?.name ?? null;
  if (action === 'switchover' && !current) throw failed('This cluster has no leader');

  let leader = o.leader;
  if (leader === undefined) {
    if (force || action === 'failover') leader = current ?? undefined;
    else leader = await ctx.term.prompt(isStandbyClusterConfig(cluster.config?.value.standby_cluster) ? 'Standby Leader' : 'Primary', current ?? '');
  }
  if (leader !== undefined && current && leader !== current) throw failed(`Member ${leader} is not the leader of cluster ${ctx.scope}`);

  // Sorted for a stable prompt; members tagged nofailover can never be candidates.
  const candidates = cluster.members
    .filter((m) => m.name !== leader && !m.data.tags?.nofailover)
    .map((m) => m.name)
    .sort();
  if (candidates.length === 0) throw failed(`No candidates found to ${action} to`);

  let candidate = o.candidate;
  if (candidate === undefined && !force) candidate = (await ctx.term.prompt(`Candidate ${pyList(candidates)}`, '')) || undefined;
  if (action === 'failover' && !candidate) throw failed('Failover could be performed only to a specific candidate');
  if (candidate !== undefined && candidate === leader) throw failed(`${title(action)} target and source are the same.`);
  if (candidate !== undefined && !candidates.includes(candidate)) {
    const known = cluster.members.some((m) => m.name === candidate);
    throw failed(known ? `Member ${candidate} is tagged nofailover and cannot become the leader` : `Member ${candidate} does not exist in cluster ${ctx.scope}`);
  }

  let scheduled: Scheduled | null = null;
  if (action === 'switchover') {
    let when = o.scheduled;
    if (when === undefined && !force) {
      when = await ctx.term.prompt(`When should the switchover take place (e.g. ${nextHourExample(ctx.clock.wallNow())} )`, 'now');
    }
    scheduled = parseScheduled(when);
    if (scheduled && clusterMode(cluster, 'pause')) throw failed("Can't schedule switchover in the paused state");
  }
  return { leader, candidate, scheduled };
}

async function confirmPlan(ctx: CtlContext, action: SwitchoverOptions['action'], p: Plan): Promise<void> {
  const demote = p.leader ? `, demoting current leader ${p.leader}` : '';
  const question = p.scheduled
    ? `Are you sure you want to schedule ${action} of cluster ${ctx.scope} at ${p.scheduled.iso}${demote}?`
    : `Are you sure you want to ${action} cluster ${ctx.scope}${demote}?`;
  if (!(await ctx.term.confirm(question))) throw failed(`Aborting ${p.scheduled ? 'scheduled ' : ''}${action}`);
}

/** POST to the leader (the candidate without one); the failover key when no member can be reached. */
async function send(ctx: CtlContext, cluster: Cluster, action: SwitchoverOptions['action'], p: Plan): Promise<void> {
  const body: Record<string, string> = {};
  if (p.leader) body.leader = p.leader;
  if (p.candidate) body.candidate = p.candidate;
  if (p.scheduled) body.scheduled_at = p.scheduled.iso;
  const target = cluster.members.find((m) => m.name === (cluster.leader?.name ?? p.candidate));
  const r = target ? await ask(ctx, target, 'POST', action, body, ctx.actionTimeoutMs) : { error: 'no member to ask', timedOut: false };
  if (isError(r)) {
    // A request that timed out may still be acted on: writing the key as well could act twice.
    if (r.timedOut) throw failed(`${title(action)} request got no answer (${r.error}); it may still happen: check \`pgwarden ctl list\``);
    // patronictl's fallback: the members act on the failover key at their next loop.
    ctx.out(`${timestamp(ctx.clock.wallNow())} Could not ${action} using Patroni api, falling back to DCS (${r.error})`);
    try {
      await ctx.store.setFailover({ leader: p.leader, member: p.candidate, scheduled_at: p.scheduled?.iso });
    } catch (e) {
      throw failed(`could not write the failover key either: ${e instanceof Error ? e.message : String(e)}`);
    }
    printMembers(ctx, cluster);
    return;
  }
  if (r.status !== 200 && r.status !== 202) throw failed(`${title(action)} failed, details: ${r.status}, ${bodyText(r)}`);
  ctx.out(`${timestamp(ctx.clock.wallNow())} ${r.body.trim()}`);
  printMembers(ctx, await loadCluster(ctx));
}
