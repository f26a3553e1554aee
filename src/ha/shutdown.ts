/**
 * The pure rules of a daemon shutdown (SIGTERM/SIGINT), as Patroni 3.0's Ha.shutdown() applies them;
 * HaLoop.stop() does the work.
 */
import type { DynamicConfig } from '../config/types.js';
import type { PgObservation } from '../postgres/types.js';

/**
 * How long a fast shutdown may take before it is escalated to immediate, then SIGKILL (ha.py
 * `primary_stop_timeout()`): `primary_stop_timeout` seconds, but only when it is above 0 and synchronous
 * mode is on; otherwise there is no bound (Infinity): a clean shutdown checkpoint is worth the wait.
 */
export function shutdownTimeoutMs(d: Pick<DynamicConfig, 'primary_stop_timeout' | 'synchronous_mode'>): number {
  const t = d.primary_stop_timeout;
  return t > 0 && d.synchronous_mode !== false ? t * 1000 : Infinity;
}

/**
 * The optime published with the released leader key (postgresql `latest_checkpoint_location()`): the
 * shutdown checkpoint, known only when pg_controldata says "shut down" (an escalated stop has none).
 */
export function shutdownOptime(pg: Pick<PgObservation, 'controlState' | 'controlCheckpointLsn'> | null): number | undefined {
  return pg?.controlState === 'shut down' && pg.controlCheckpointLsn !== null ? pg.controlCheckpointLsn : undefined;
}
