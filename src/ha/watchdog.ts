/**
 * The watchdog (Patroni's `watchdog:` section, patroni/watchdog/): while this member is primary a
 * hardware or softdog timer must be fed every loop, so that a daemon that hangs — and so cannot demote —
 * gets the machine reset before its leader lock can have expired elsewhere. Timeout = `ttl -
 * safety_margin` (`safety_margin: -1` → ttl/2). Modes as Patroni: `off`; `automatic` uses a device when
 * one can be activated and otherwise logs and continues; `required` refuses to bootstrap, race or
 * promote without a safely configured watchdog.
 *
 * Drivers: `default` is the Linux device (`device`, default /dev/watchdog): opened write-only, fed with
 * a byte, closed with the magic 'V'. Node has no ioctl, so the timeout is set before opening with
 * util-linux's `wdctl --settimeout` and read back from sysfs. `testing` is Patroni's test harness driver:
 * the timeout is written as `Ctimeout=<s>\n` into the device file (a plain file or a FIFO read by a test).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, realpathSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';

import { parseWatchdogMode, type WatchdogMode } from '../config/values.js';

export { parseWatchdogMode, type WatchdogMode };

export interface WatchdogSettings {
  mode: WatchdogMode;
  device: string;
  safetyMargin: number;
  driver: 'default' | 'testing';
}

/** The `watchdog:` section with Patroni's defaults (mode automatic, /dev/watchdog, safety_margin 5). */
export function watchdogSettings(raw: Record<string, unknown> | undefined, log?: Logger): WatchdogSettings {
  const r = raw ?? {};
  let mode = parseWatchdogMode(r.mode);
  if (mode === null) {
    log?.warn(`watchdog.mode: ${String(r.mode)} not recognized, disabling the watchdog`);
    mode = 'off';
  }
  const margin = Number(r.safety_margin ?? 5);
  return {
    mode,
    device: typeof r.device === 'string' && r.device ? r.device : '/dev/watchdog',
    safetyMargin: Number.isFinite(margin) ? margin : 5,
    driver: r.driver === 'testing' ? 'testing' : 'default',
  };
}

/** One watchdog device. Methods throw on failure. */
export interface WatchdogDevice {
  readonly description: string;
  /** The device exists and we may write it (Patroni's is_healthy). */
  usable(): boolean;
  /** Before open(): ask for this timeout; returns false when the device cannot be set. */
  setTimeout(seconds: number): boolean;
  /** The timeout in effect, or null when it cannot be known. */
  timeout(): number | null;
  open(): void;
  keepalive(): void;
  /** Magic close: the timer stops. */
  close(): void;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** A device fed through a file descriptor: a byte per keepalive, the magic 'V' before closing. */
abstract class FdWatchdogDevice implements WatchdogDevice {
  protected fd: number | null = null;

  constructor(readonly path: string) {}

  abstract readonly description: string;
  abstract setTimeout(seconds: number): boolean;
  abstract timeout(): number | null;
  abstract open(): void;

  usable(): boolean {
    return existsSync(this.path) && writable(this.path);
  }

  keepalive(): void {
    if (this.fd === null) throw new Error('watchdog device is closed');
    writeSync(this.fd, '1');
  }

  close(): void {
    if (this.fd === null) return;
    try {
      writeSync(this.fd, 'V');
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

export class LinuxWatchdogDevice extends FdWatchdogDevice {
  private requested: number | null = null;

  get description(): string {
    return `Linux watchdog device${this.path === '/dev/watchdog' ? '' : ` at ${this.path}`}`;
  }

  setTimeout(seconds: number): boolean {
    try {
      execFileSync('wdctl', ['--settimeout', String(Math.trunc(seconds)), this.path], { stdio: 'ignore', timeout: 5000 });
      this.requested = Math.trunc(seconds);
      return true;
    } catch {
      return false;
    }
  }

  timeout(): number | null {
    // /dev/watchdog is the legacy name of watchdog0; sysfs has the truth for both.
    try {
      const name = basename(realpathSync(this.path));
      const sys = `/sys/class/watchdog/${name === 'watchdog' ? 'watchdog0' : name}/timeout`;
      if (existsSync(sys)) return Number(readFileSync(sys, 'utf8').trim());
    } catch {
      // fall through
    }
    return this.requested;
  }

  open(): void {
    this.fd = openSync(this.path, constants.O_WRONLY);
  }
}

/** Patroni's TestingWatchdogDevice: ioctls become writes into the device file, so a test can read them. */
export class TestingWatchdogDevice extends FdWatchdogDevice {
  private seconds = 60;
  private pending: number | null = null;

  get description(): string {
    return `Watchdog test harness at ${this.path}`;
  }

  setTimeout(seconds: number): boolean {
    this.pending = Math.trunc(seconds);
    if (this.fd !== null) this.flushTimeout();
    return true;
  }

  timeout(): number | null {
    return this.pending ?? this.seconds;
  }

  open(): void {
    this.fd = openSync(this.path, 'a');
    if (this.pending !== null) this.flushTimeout();
  }

  private flushTimeout(): void {
    writeSync(this.fd!, `Ctimeout=${this.pending}\n`);
    this.seconds = this.pending!;
    this.pending = null;
  }
}

export function watchdogDevice(s: WatchdogSettings): WatchdogDevice {
  return s.driver === 'testing' ? new TestingWatchdogDevice(s.device) : new LinuxWatchdogDevice(s.device);
}

/**
 * Patroni's Watchdog facade: activate() before this member becomes primary, keepalive() after each
 * successful lock renewal, disable() when it stops being primary or shuts down.
 */
export class Watchdog {
  private running = false;
  private lastRefusal: string | null = null;

  constructor(
    private readonly s: WatchdogSettings,
    private readonly timing: () => { ttl: number; loop_wait: number },
    private readonly log: Logger,
    private readonly device: WatchdogDevice = watchdogDevice(s),
  ) {}

  get mode(): WatchdogMode {
    return this.s.mode;
  }

  /** Seconds the device must fire after the last keepalive: before the lock can expire elsewhere. */
  wantedTimeout(): number {
    const { ttl } = this.timing();
    return this.s.safetyMargin === -1 ? Math.floor(ttl / 2) : ttl - this.s.safetyMargin;
  }

  private slack(): number {
    return this.wantedTimeout() - this.timing().loop_wait;
  }

  isRunning(): boolean {
    return this.running;
  }

  /** Patroni's is_healthy: may this member race for the lock? Only `required` can say no. */
  isHealthy(): boolean {
    if (this.s.mode !== 'required') return true;
    return this.slack() >= 0 && this.device.usable();
  }

  /** false: a watchdog is required and could not be set up safely (the caller must not be primary). */
  activate(): boolean {
    if (this.s.mode === 'off') return true;
    if (this.running) return true;
    const wanted = this.wantedTimeout();
    const required = this.s.mode === 'required';
    if (this.slack() < 0) {
      this.refusal(false, `watchdog not supported: its timeout ${wanted} s (ttl - safety_margin) is shorter than loop_wait ${this.timing().loop_wait} s`);
      return !required;
    }
    if (!this.device.usable()) {
      this.refusal(required, `${this.device.description}: not available (no writable device)${required ? '; the configuration requires a watchdog' : ''}`);
      return !required;
    }
    this.lastRefusal = null;
    try {
      const set = this.device.setTimeout(wanted);
      this.device.open();
      this.running = true;
      const actual = this.device.timeout();
      if (!set || actual === null || actual > wanted) {
        const msg = `${this.device.description}: timeout ${actual ?? 'unknown'} s does not ensure termination within ${wanted} s`;
        if (required) {
          this.log.error(`${msg}; the configuration requires a safe watchdog`);
          this.disable();
          return false;
        }
        this.log.warn(msg);
      }
      if (actual !== null && actual < this.timing().loop_wait) {
        this.log.error(`loop_wait of ${this.timing().loop_wait} s is too long for the watchdog timeout of ${actual} s: disabling it`);
        this.disable();
        return !required;
      }
      this.device.keepalive();
      this.log.info(`${this.device.description} activated with a ${actual ?? wanted} s timeout, timing slack ${this.slack()} s`);
      return true;
    } catch (e) {
      (required ? this.log.error : this.log.warn).call(this.log, `could not activate ${this.device.description}: ${errorMessage(e)}`);
      this.running = false;
      return !required;
    }
  }

  /**
   * Why the watchdog cannot be activated. activate() runs every tick while this member leads, so the
   * same reason is logged once, and again only after it changed or the watchdog ran in between.
   */
  private refusal(error: boolean, msg: string): void {
    if (msg === this.lastRefusal) return;
    this.lastRefusal = msg;
    (error ? this.log.error : this.log.warn).call(this.log, msg);
  }

  keepalive(): void {
    if (!this.running) return;
    try {
      this.device.keepalive();
    } catch (e) {
      this.log.error(`watchdog keepalive failed: ${errorMessage(e)}`);
    }
  }

  disable(): void {
    if (!this.running) return;
    try {
      this.device.close();
      this.log.info(`${this.device.description} disabled`);
    } catch (e) {
      this.log.error(`error while disabling the watchdog: ${errorMessage(e)}`);
    }
    this.running = false;
  }
}
