/** The read-only verbs: list, topology, show-config, history, dsn. They read the store only, never REST. */
import { failed, dsnOf, membersWithRole, usage, type RoleChoice } from '../args.js';
import { loadCluster, printMembers, type CtlContext } from '../context.js';
import { dumpYaml, timestamp } from '../format.js';
import { renderHistory, type OutputFormat } from '../view.js';

export interface ListOptions {
  fmt: OutputFormat;
  extended?: boolean;
  /** Print the time before each table (`-t`). */
  timestamp?: boolean;
  /** Refresh every this many seconds (`-W` is 2); undefined: print once. */
  watchS?: number;
  /** With watch: stop after this many tables (otherwise until interrupted). */
  watchCount?: number;
}

/** `list` and `topology` (fmt 'topology'): the member table, optionally refreshed. */
export async function list(ctx: CtlContext, o: ListOptions): Promise<void> {
  if (o.watchS !== undefined && !(o.watchS > 0)) throw usage('--watch: expected a number of seconds > 0');
  if (o.watchCount !== undefined && !(Number.isInteger(o.watchCount) && o.watchCount >= 1)) throw usage('--watch-count: expected a whole number ≥ 1');
  for (let shown = 0; ; ) {
    if (o.watchS !== undefined) ctx.clear();
    if (o.timestamp) ctx.out(timestamp(ctx.clock.wallNow(), 0));
    printMembers(ctx, await loadCluster(ctx), o.fmt, o.extended);
    shown++;
    if (o.watchS === undefined || (o.watchCount !== undefined && shown >= o.watchCount)) return;
    await ctx.clock.sleep(o.watchS * 1000);
  }
}

/** `show-config`: the dynamic config as YAML. */
export async function showConfig(ctx: CtlContext): Promise<void> {
  const cluster = await loadCluster(ctx);
  ctx.out(dumpYaml(cluster.config?.value ?? {}));
}

/** `history`: timeline switches from the `history` key. */
export async function history(ctx: CtlContext, fmt: OutputFormat): Promise<void> {
  const cluster = await loadCluster(ctx);
  ctx.out(renderHistory(cluster.history, fmt));
}

/** `dsn`: `host=… port=…` of the leader, of a member with a role, or of a named member. */
export async function dsn(ctx: CtlContext, o: { role?: RoleChoice; member?: string }): Promise<void> {
  if (o.member !== undefined && o.role !== undefined) throw usage('--role and --member are mutually exclusive options');
  const role: RoleChoice = o.member !== undefined ? 'any' : (o.role ?? 'leader');
  const cluster = await loadCluster(ctx);
  if (o.member !== undefined && !cluster.members.some((m) => m.name === o.member)) throw failed(`${o.member} is not a member of cluster ${ctx.scope}`);
  const m = membersWithRole(cluster, role).find((x) => o.member === undefined || x.name === o.member);
  const text = m ? dsnOf(m) : null;
  if (!text) throw failed('Can not find a suitable member');
  ctx.out(text);
}
