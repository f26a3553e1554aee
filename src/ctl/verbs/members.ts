/**
 * Verbs that ask named members to act, each through its own REST API: restart, reload, reinit
 * (patronictl 3.0.2 `restart`, `reload`, `reinit`). Each member's outcome is one line on stdout; if any
 * member refused or could not be reached the command fails (exit 1) after trying them all.
 */
import { clusterMode } from '../../api/cluster-json.js';
import type { Cluster, Member } from '../../dcs/types.js';
import { checkPgVersion, failed, membersWithRole, nextHourExample, parseScheduled, usage, type RoleChoice } from '../args.js';
import { ask, bodyText, isError, loadCluster, printMembers, type CtlContext } from '../context.js';

type Action = 'restart' | 'reload' | 'reinitialize';

/**
 * patronictl's `get_members`: print the cluster, check the names (an unknown one is an error, not
 * silently dropped), keep those with `role`, default to all of them (reinitialize: ask which).
 */
async function pickMembers(ctx: CtlContext, cluster: Cluster, names: readonly string[], role: RoleChoice, force: boolean, action: Action): Promise<Member[]> {
  const members = membersWithRole(cluster, role);
  if (names.length === 0 && members.length === 0) throw failed(`${ctx.scope} cluster doesn't have any members`);
  printMembers(ctx, cluster);
  for (const n of names) if (!cluster.members.some((m) => m.name === n)) throw failed(`${n} is not a member of cluster ${ctx.scope}`);
  let chosen = names.length ? members.filter((m) => names.includes(m.name)) : action === 'reinitialize' ? [] : members;
  if (names.length && chosen.length === 0) throw failed(`No ${role} among provided members`);
  if (chosen.length === 0) {
    if (force) throw usage(`name the member(s) to ${action}`);
    const answer = await ctx.term.prompt(`Which member do you want to ${action} [${members.map((m) => m.name).join(', ')}]?`, '');
    chosen = members.filter((m) => m.name === answer);
    if (chosen.length === 0) throw failed(`${answer} is not a member of cluster`);
  }
  return chosen;
}

async function confirmAction(ctx: CtlContext, members: readonly Member[], force: boolean, action: string, scheduledAt?: string): Promise<void> {
  if (force) return;
  const names = members.map((m) => m.name).join(', ');
  const ok = scheduledAt
    ? await ctx.term.confirm(`Are you sure you want to schedule ${action} of members ${names} at ${scheduledAt}?`)
    : await ctx.term.confirm(`Are you sure you want to ${action} members ${names}?`);
  if (!ok) throw failed(`Aborted ${scheduledAt ? 'scheduled ' : ''}${action}`);
}

function finish(action: string, failures: readonly string[], total: number): void {
  if (failures.length) throw failed(`${action} failed for ${failures.length} of ${total} member(s): ${failures.join(', ')}`);
}

export interface RestartOptions {
  members: string[];
  role: RoleChoice;
  /** Restart only one of the selected members, at random (`--any`). */
  any?: boolean;
  scheduled?: string;
  pgVersion?: string;
  pending?: boolean;
  /** Sent as given (Patroni reads `30` or `30s`). */
  timeout?: string;
  force: boolean;
}

export async function restart(ctx: CtlContext, o: RestartOptions): Promise<void> {
  const cluster = await loadCluster(ctx);
  let members = await pickMembers(ctx, cluster, o.members, o.role, o.force, 'restart');
  let when = o.scheduled;
  if (when === undefined && !o.force) when = await ctx.term.prompt(`When should the restart take place (e.g. ${nextHourExample(ctx.clock.wallNow())})`, 'now');
  const scheduled = parseScheduled(when);
  await confirmAction(ctx, members, o.force, 'restart', scheduled?.iso);
  if (o.any) members = [members[Math.floor(Math.random() * members.length)]!];
  let version = o.pgVersion;
  if (version === undefined && !o.force) version = await ctx.term.prompt('Restart if the PostgreSQL version is less than provided (e.g. 9.5.2)', '');
  const body: Record<string, unknown> = {};
  if (o.pending) body.restart_pending = true;
  if (version) body.postgres_version = checkPgVersion(version);
  if (scheduled) {
    if (clusterMode(cluster, 'pause')) throw failed("Can't schedule restart in the paused state");
    body.schedule = scheduled.iso;
  }
  if (o.timeout !== undefined) body.timeout = o.timeout;
  const timeoutS = Number.parseInt(o.timeout ?? '', 10);
  const timeoutMs = Number.isFinite(timeoutS) ? Math.max(ctx.actionTimeoutMs, (timeoutS + 30) * 1000) : ctx.actionTimeoutMs;
  const failures: string[] = [];
  for (const m of members) {
    if (scheduled && o.force && m.data.scheduled_restart) {
      const d = await ask(ctx, m, 'DELETE', 'restart');
      if (isError(d)) ctx.out(`Failed: flush scheduled restart for member ${m.name}, (${d.error})`);
      else if (d.status >= 400) ctx.out(`Failed: flush scheduled restart for member ${m.name}, status code=${d.status}, (${bodyText(d)})`);
    }
    const r = await ask(ctx, m, 'POST', 'restart', body, timeoutMs);
    if (isError(r)) {
      ctx.out(`Failed: restart for member ${m.name}, (${r.error})`);
      failures.push(m.name);
    } else if (r.status === 200) {
      ctx.out(`Success: restart on member ${m.name}`);
    } else if (r.status === 202) {
      ctx.out(`Success: restart scheduled on member ${m.name}`);
    } else {
      ctx.out(r.status === 409 ? `Failed: another restart is already scheduled on member ${m.name}` : `Failed: restart for member ${m.name}, status code=${r.status}, (${bodyText(r)})`);
      failures.push(m.name);
    }
  }
  finish('restart', failures, members.length);
}

export async function reload(ctx: CtlContext, o: { members: string[]; role: RoleChoice; force: boolean }): Promise<void> {
  const cluster = await loadCluster(ctx);
  const members = await pickMembers(ctx, cluster, o.members, o.role, o.force, 'reload');
  await confirmAction(ctx, members, o.force, 'reload');
  const failures: string[] = [];
  for (const m of members) {
    const r = await ask(ctx, m, 'POST', 'reload');
    if (isError(r)) {
      ctx.out(`Failed: reload for member ${m.name}, (${r.error})`);
      failures.push(m.name);
    } else if (r.status === 200) {
      ctx.out(`No changes to apply on member ${m.name}`);
    } else if (r.status === 202) {
      ctx.out(`Reload request received for member ${m.name} and will be processed within ${String(cluster.config?.value.loop_wait)} seconds`);
    } else {
      ctx.out(`Failed: reload for member ${m.name}, status code=${r.status}, (${bodyText(r)})`);
      failures.push(m.name);
    }
  }
  finish('reload', failures, members.length);
}

export interface ReinitOptions {
  members: string[];
  force: boolean;
  wait: boolean;
  /** With wait: give up after this long. */
  waitTimeoutMs: number;
  /** With wait: how often to look. */
  pollMs?: number;
}

/** A member's GET /patroni, or null if it does not answer with a JSON object. */
async function memberStatus(ctx: CtlContext, m: Member): Promise<Record<string, unknown> | null> {
  const r = await ask(ctx, m, 'GET', 'patroni');
  if (isError(r) || r.status !== 200) return null;
  try {
    const j: unknown = JSON.parse(r.body);
    return j && typeof j === 'object' && !Array.isArray(j) ? (j as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function reinit(ctx: CtlContext, o: ReinitOptions): Promise<void> {
  const cluster = await loadCluster(ctx);
  const members = await pickMembers(ctx, cluster, o.members, 'replica', o.force, 'reinitialize');
  await confirmAction(ctx, members, o.force, 'reinitialize');
  const failures: string[] = [];
  const started: Array<{ m: Member; before: unknown }> = [];
  for (const m of members) {
    const before = o.wait ? (await memberStatus(ctx, m))?.postmaster_start_time : undefined;
    let force = o.force;
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await ask(ctx, m, 'POST', 'reinitialize', { force }, ctx.actionTimeoutMs);
      if (isError(r)) {
        ctx.out(`Failed: reinitialize for member ${m.name}, (${r.error})`);
        failures.push(m.name);
      } else if (r.status < 400) {
        ctx.out(`Success: reinitialize for member ${m.name}`);
        started.push({ m, before });
      } else {
        ctx.out(`Failed: reinitialize for member ${m.name}, status code=${r.status}, (${bodyText(r)})`);
        if (!force && r.body.trim().endsWith(' already in progress') && (await ctx.term.confirm('Do you want to cancel it and reinitialize anyway?'))) {
          force = true;
          continue;
        }
        failures.push(m.name);
      }
      break;
    }
  }
  if (o.wait && started.length) failures.push(...(await waitReinitialized(ctx, started, o)));
  finish('reinitialize', failures, members.length);
}

/**
 * Until each member has come back from the reinitialization: after its /patroni was seen saying
 * `creating replica` or shows a postmaster started after the request, it says `running` (done) or a
 * failed/crashed state. patronictl waits only for "not `creating replica`", which a member still says
 * before it has even begun; and it waits forever — this is bounded by `waitTimeoutMs`.
 */
async function waitReinitialized(ctx: CtlContext, started: ReadonlyArray<{ m: Member; before: unknown }>, o: ReinitOptions): Promise<string[]> {
  const pending = new Map(started.map((s) => [s.m.name, { ...s, seenCreating: false }]));
  ctx.out(`Waiting for reinitialize to complete on: ${[...pending.keys()].join(', ')}`);
  const deadline = ctx.clock.now() + o.waitTimeoutMs;
  const failures: string[] = [];
  while (pending.size > 0) {
    for (const [name, p] of pending) {
      const st = await memberStatus(ctx, p.m);
      if (!st) continue;
      if (st.state === 'creating replica') {
        p.seenCreating = true;
        continue;
      }
      const restarted = st.postmaster_start_time !== undefined && st.postmaster_start_time !== p.before;
      if (!p.seenCreating && !restarted) continue;
      if (st.state === 'running') {
        ctx.out(`Reinitialize is completed on: ${name}`);
      } else if (/fail|crash/.test(String(st.state))) {
        ctx.out(`Reinitialize failed on: ${name} (state ${String(st.state)})`);
        failures.push(name);
      } else {
        continue; // starting, stopped between steps, …
      }
      pending.delete(name);
    }
    if (pending.size === 0) break;
    if (ctx.clock.now() >= deadline) {
      ctx.out(`Reinitialize did not complete within ${o.waitTimeoutMs / 1000} s on: ${[...pending.keys()].join(', ')}`);
      failures.push(...pending.keys());
      break;
    }
    await ctx.clock.sleep(o.pollMs ?? 1000);
  }
  return failures;
}
