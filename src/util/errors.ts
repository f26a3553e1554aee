/**
 * A small error taxonomy. Adapters wrap transport errors into these, with the original as `cause`.
 * `retryable` marks errors where the same call may succeed later (a store timeout, a refused connection).
 */
export class PgwardenError extends Error {
  readonly retryable: boolean = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The distributed configuration store could not be read or written in time. */
export class DcsError extends PgwardenError {
  override readonly retryable = true;
}

/** A PostgreSQL command or query failed. */
export class PostgresError extends PgwardenError {}

/** pre_promote said no: the lock must be given back (Patroni releases it and backs off for ttl). */
export class PromoteCancelledError extends PostgresError {}

/** A replica copy stopped by cancelCopy() (a shutdown), not failed. */
export class CopyCancelledError extends PostgresError {}

/** Bad user input: a config file, a flag, a request body. Carries a path like `postgresql.data_dir`. */
export class ConfigError extends PgwardenError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(path ? `${path}: ${reason}` : reason);
  }
}

/** Ends the process with this code; only the CLI entry point catches it and exits. */
export class ExitError extends PgwardenError {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

export function isRetryable(e: unknown): boolean {
  return e instanceof PgwardenError && e.retryable;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
