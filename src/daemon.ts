/**
 * The composition root of `pgwarden daemon`: config → store, PostgreSQL, REST API, HA loop.
 * Signals: SIGTERM/SIGINT stop PostgreSQL cleanly and, on the primary, release the lock
 * so a replica takes over at once.
 */
import { effectiveDynamicConfig } from './config/dynamic.js';
import type { DaemonConfig } from './config/types.js';
import { createStore } from './dcs/index.js';
import { HaLoop } from './ha/loop.js';
import { LocalPostgres } from './postgres/instance.js';
import { createApiServer } from './api/server.js';
import { fetchMemberStatus } from './api/client.js';
import { systemClock } from './util/clock.js';
import type { Logger } from './util/log.js';
import { VERSION } from './version.js';

export async function runDaemon(config: DaemonConfig, log: Logger): Promise<void> {
  const clock = systemClock;
  let lastWarnings = '';
  const dynamicFrom = (stored: Record<string, unknown> | null) => {
    const { dynamic, warnings } = effectiveDynamicConfig(stored, config.bootstrap.dcs);
    // Read every tick: say what is wrong with the stored config once, not every loop_wait.
    const key = warnings.join('\n');
    if (key !== lastWarnings) for (const w of warnings) log.warn(w);
    lastWarnings = key;
    return dynamic;
  };
  const dynamic = dynamicFrom(null);
  const store = createStore(config, dynamic, clock, log);
  const pg = new LocalPostgres({ config, dynamic, log: log.child({ component: 'postgres' }), clock });
  const loop = new HaLoop({ config, store, pg, clock, log: log.child({ component: 'ha' }), fetchPeer: fetchMemberStatus, dynamicFrom, version: VERSION });
  const api = createApiServer({
    config,
    log: log.child({ component: 'api' }),
    backend: {
      view: () => ({
        ...loop.view,
        name: config.name,
        scope: config.scope,
        version: VERSION,
        config,
        paused: loop.view.dynamic.pause,
      }),
      loadCluster: () => store.load(),
      now: () => clock.now(),
    },
  });
  const addr = await api.listen();
  log.info({ restapi: `${addr.host}:${addr.port}` }, 'REST API listening');

  loop.start();
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      log.info({ signal: sig }, 'shutting down');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await loop.stop({ stopPostgres: true });
  await api.close();
  await pg.close();
  await store.close();
  log.info('stopped');
}
