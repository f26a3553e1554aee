/**
 * Time comes in through this port so that the HA loop, the lock adapters and the retry helpers
 * can be driven by tests. `now()` is monotonic (milliseconds, only differences mean anything);
 * `wallNow()` is for timestamps shown to people and stored in the DCS, never for lock expiry.
 */
export interface Clock {
  now(): number;
  wallNow(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};
