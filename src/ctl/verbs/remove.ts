/** `remove <cluster>`: wipe the cluster's keys from the store, after typed confirmations (patronictl's `remove`). */
import { failed } from '../args.js';
import { loadCluster, printMembers, type CtlContext } from '../context.js';
import type { OutputFormat } from '../view.js';

export const REMOVE_PHRASE = 'Yes I am aware';

export async function remove(ctx: CtlContext, fmt: OutputFormat = 'pretty'): Promise<void> {
  const cluster = await loadCluster(ctx);
  printMembers(ctx, cluster, fmt);
  if ((await ctx.term.prompt('Please confirm the cluster name to remove')) !== ctx.scope) throw failed('Cluster names specified do not match');
  const typed = await ctx.term.prompt(`You are about to remove all information in DCS for ${ctx.scope}, please type: "${REMOVE_PHRASE}"`);
  if (typed !== REMOVE_PHRASE) throw failed(`You did not exactly type "${REMOVE_PHRASE}"`);
  const leader = cluster.leader?.name;
  if (leader && (await ctx.term.prompt('This cluster currently is healthy. Please specify the leader name to continue')) !== leader) {
    throw failed('You did not specify the current leader of the cluster');
  }
  try {
    await ctx.store.deleteCluster();
  } catch (e) {
    throw failed(`could not remove cluster ${ctx.scope}: ${e instanceof Error ? e.message : String(e)}`);
  }
  ctx.out(`Removed every key of cluster ${ctx.scope} from the store`);
}
