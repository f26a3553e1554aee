/** `flush <cluster> [members…] restart|switchover`: cancel scheduled restarts / a scheduled switchover (patronictl's `flush`). */
import type { Member } from '../../dcs/types.js';
import { failed, membersLeaderFirst, membersWithRole, type RoleChoice } from '../args.js';
import { ask, bodyText, isError, loadCluster, printMembers, type CtlContext } from '../context.js';
import { timestamp } from '../format.js';

export async function flush(ctx: CtlContext, o: { target: 'restart' | 'switchover'; members: string[]; role: RoleChoice; force: boolean }): Promise<void> {
  const cluster = await loadCluster(ctx);
  if (o.target === 'switchover') {
    const f = cluster.failover;
    if (!f?.scheduled_at) {
      ctx.out('No pending scheduled switchover');
      return;
    }
    for (const m of membersLeaderFirst(cluster)) {
      const r = await ask(ctx, m, 'DELETE', 'switchover');
      if (isError(r)) continue;
      if (r.status === 200) return ctx.out(`Success: ${r.body.trim()}`);
      throw failed(`Failed: ${r.status === 404 ? r.body.trim() : `member=${m.name}, status_code=${r.status}, (${bodyText(r)})`}`);
    }
    ctx.out(`${timestamp(ctx.clock.wallNow())} Could not find any accessible member of cluster ${ctx.scope}`);
    // patronictl empties the key with CAS on its version (manual_failover('', '', index)); setConfig-like CAS is
    // not available for the failover key here, so it is overwritten with an empty request.
    await ctx.store.setFailover({});
    return;
  }
  printMembers(ctx, cluster);
  for (const n of o.members) if (!cluster.members.some((m) => m.name === n)) throw failed(`${n} is not a member of cluster ${ctx.scope}`);
  const members: Member[] = membersWithRole(cluster, o.role).filter((m) => o.members.length === 0 || o.members.includes(m.name));
  if (o.members.length && members.length === 0) throw failed(`No ${o.role} among provided members`);
  if (!o.force && !(await ctx.term.confirm(`Are you sure you want to flush members ${members.map((m) => m.name).join(', ')}?`))) throw failed('Aborted flush');
  const failures: string[] = [];
  for (const m of members) {
    if (!m.data.scheduled_restart) {
      ctx.out(`No scheduled restart for member ${m.name}`);
      continue;
    }
    const r = await ask(ctx, m, 'DELETE', 'restart');
    if (isError(r)) {
      ctx.out(`Failed: flush scheduled restart for member ${m.name}, (${r.error})`);
      failures.push(m.name);
    } else if (r.status >= 400) {
      ctx.out(`Failed: flush scheduled restart for member ${m.name}, status code=${r.status}, (${bodyText(r)})`);
      failures.push(m.name);
    } else {
      ctx.out(`Success: flush scheduled restart for member ${m.name}`);
    }
  }
  if (failures.length) throw failed(`flush failed for ${failures.join(', ')}`);
}
