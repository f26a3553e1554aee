import { pino, type Logger } from 'pino';

export type { Logger };

/** One root logger per process, built in main() and passed down; components take `log.child({component})`. */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino({
    level: opts.level ?? process.env.PGWARDEN_LOG_LEVEL ?? 'info',
    base: opts.name ? { member: opts.name } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['*.password', 'password', '*.*.password'], censor: '******' },
  });
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
