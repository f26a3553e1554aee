import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../util/log.js';
import { runDaemon } from '../daemon.js';

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('run the HA agent for one PostgreSQL member (reads a Patroni YAML config)')
    .argument('[config]', 'Patroni-format YAML config file (may be omitted when PATRONI_* variables configure everything)')
    .option('--validate-config', 'check the configuration and exit')
    .action(async (file: string | undefined, opts: { validateConfig?: boolean }) => {
      const { config, warnings } = loadConfig({ file, env: process.env });
      if (opts.validateConfig) {
        for (const w of warnings) process.stderr.write(`pgwarden: warning: ${w}\n`);
        process.stdout.write(`configuration is valid${warnings.length ? ` (${warnings.length} warning(s))` : ''}\n`);
        return;
      }
      // log.level (PATRONI_LOG_LEVEL) unless PGWARDEN_LOG_LEVEL says otherwise.
      const level = process.env.PGWARDEN_LOG_LEVEL ?? pinoLevel(config.log?.level);
      const log = createLogger({ name: config.name, ...(level ? { level } : {}) });
      for (const w of warnings) log.warn(w);
      await runDaemon(config, log, { reloadConfig: () => loadConfig({ file, env: process.env }).config });
    });
}

/** Python logging level names (Patroni's log.level) as pino levels. */
function pinoLevel(level: string | undefined): string | undefined {
  const map: Record<string, string> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal', FATAL: 'fatal' };
  return level ? map[level] : undefined;
}
