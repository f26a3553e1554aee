/**
 * The composition root of `pgwarden daemon`: config → store, PostgreSQL, REST API, HA loop.
 * Signals: SIGTERM/SIGINT stop PostgreSQL cleanly and, on the primary, release the lock
 * so a replica takes over at once.
 */
import { effectiveDynamicConfig } from './config/dynamic.js';
import { applyReload } from './config/reload.js';
import type { DaemonConfig } from './config/types.js';
import { createStore } from './dcs/index.js';
import { HaLoop } from './ha/loop.js';
import { Watchdog, watchdogSettings } from './ha/watchdog.js';
import { LocalPostgres } from './postgres/instance.js';
import { createApiServer } from './api/server.js';
import { fetchMemberStatus } from './api/client.js';
import { daemonRequestSettings } from './api/tls.js';
import { postFailsafe } from './api/failsafe-client.js';
import { trustedCluster } from './api/cluster-json.js';
import { systemClock } from './util/clock.js';
import { ExitError, errorMessage } from './util/errors.js';
import type { Logger } from './util/log.js';
import { VERSION } from './version.js';

export interface DaemonOptions {
  /** Re-read the configuration (SIGHUP, POST /reload); throws ConfigError when it is invalid. */
  reloadConfig?: () => DaemonConfig;
}

export async function runDaemon(config: DaemonConfig, log: Logger, opts: DaemonOptions = {}): Promise<void> {
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
  const store = await createStore(config, dynamic, clock, log);
  const pg = new LocalPostgres({ config, dynamic, log: log.child({ component: 'postgres' }), clock });
  // The watchdog's timeout follows the dynamic ttl/loop_wait the loop runs with (read only once the loop exists).
  const watchdogConfig = watchdogSettings(config.watchdog, log);
  const timing = (): { ttl: number; loop_wait: number } => ({ ttl: loop.view.dynamic.ttl, loop_wait: loop.view.dynamic.loop_wait });
  const watchdog: Watchdog | undefined = watchdogConfig.mode === 'off' ? undefined : new Watchdog(watchdogConfig, timing, log.child({ component: 'watchdog' }));
  const loop: HaLoop = new HaLoop({ config, store, pg, clock, log: log.child({ component: 'ha' }), fetchPeer: (url, timeoutMs) => fetchMemberStatus(url, timeoutMs, daemonRequestSettings(config)), dynamicFrom, version: VERSION, ...(watchdog ? { watchdog } : {}),
    // POST /failsafe is behind restapi.authentication on every member: Patroni's PatroniRequest sends ctl's, else restapi's.
    postFailsafe: (url, data, timeoutMs) => postFailsafe(url, data, timeoutMs, config.ctl?.authentication ?? config.restapi.authentication, daemonRequestSettings(config)) });

  /** SIGHUP / POST /reload: apply what can change live, keep the old config if the file is invalid. */
  const reload = () => {
    if (!opts.reloadConfig) return log.warn('reload requested, but this daemon was not started from a config file');
    try {
      const { applied, needsRestart } = applyReload(config, opts.reloadConfig());
      if (needsRestart.length) log.warn({ keys: needsRestart }, 'reload: these settings change only when the daemon restarts');
      log.info({ applied }, applied.length ? 'reload: configuration applied' : 'reload: nothing changed');
      // Like Patroni, also when only the certificate files were renewed under the same names.
      void api.reloadTls().catch((e: unknown) => log.error({ err: errorMessage(e) }, 'reload: the REST API TLS settings are invalid, keeping the running ones'));
      // As Patroni on SIGHUP: PostgreSQL is reloaded even when nothing changed (a config edited by hand).
      void pg.reloadConfig().then(() => loop.wake(), (e: unknown) => log.error({ err: errorMessage(e) }, 'reload of postgresql failed'));
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'reload: the configuration is invalid, keeping the running one');
    }
  };
  const api = createApiServer({
    config,
    log: log.child({ component: 'api' }),
    backend: {
      view: () => ({
        ...loop.view,
        cluster: trustedCluster(loop.view.cluster, loop.view.dcsLastSeen, clock.wallNow().getTime() / 1000, loop.view.dynamic.ttl),
        name: config.name,
        scope: config.scope,
        version: VERSION,
        config,
        paused: loop.view.dynamic.pause,
        scheduledRestart: loop.scheduledRestartAsPatroni(),
        failsafeActive: loop.failsafe.isActive(),
      }),
      loadCluster: () => store.load(),
      now: () => clock.now(),
      requestReload: reload,
      wake: () => loop.wake(),
      sleep: (ms) => clock.sleep(ms),
      wallNow: () => clock.wallNow(),
      memberStatus: (url, timeoutMs) => fetchMemberStatus(url, timeoutMs, daemonRequestSettings(config)),
      setFailover: (value, version) => store.setFailover(value, version),
      deleteFailover: (version) => store.deleteFailover(version),
      setConfig: (value, version) => store.setConfig(value, version),
      restart: (r) => loop.restart(r),
      scheduleRestart: (r) => loop.scheduleRestart(r),
      cancelScheduledRestart: () => loop.cancelScheduledRestart(),
      reinitialize: (force) => loop.reinitialize(force),
      acceptFailsafe: (leader) => loop.failsafe.receive(leader),
      failsafeTopology: () => loop.failsafe.topology(),
    },
  });
  // A port in use or an address not on this host is the operator's to fix: say so, not "internal error".
  const addr = await api.listen().catch(async (e: unknown) => {
    await pg.close();
    await store.close();
    throw new ExitError(errorMessage(e));
  });
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
    process.on('SIGHUP', reload);
  });
  process.off('SIGHUP', reload);
  await loop.stop({ stopPostgres: true });
  await api.close();
  await pg.close();
  await store.close();
  log.info('stopped');
}
