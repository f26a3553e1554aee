/**
 * The watchdog facade (src/ha/watchdog.ts) with Patroni's rules, on a fake device and on the testing
 * driver's file protocol: timeout = ttl - safety_margin (or ttl/2), required refuses when the device is
 * missing, unsafe or slower than the lock, automatic carries on; keepalive only while active; magic close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestingWatchdogDevice, Watchdog, watchdogSettings, type WatchdogDevice } from '../../src/ha/watchdog.js';
import { silentLogger } from '../../src/util/log.js';
import { loadConfig } from '../../src/config/index.js';

class FakeDevice implements WatchdogDevice {
  readonly description = 'fake watchdog';
  calls: string[] = [];
  constructor(
    public present = true,
    public settable = true,
    public actual: number | null = null,
  ) {}
  usable(): boolean {
    return this.present;
  }
  setTimeout(s: number): boolean {
    this.calls.push(`set ${s}`);
    if (this.settable) this.actual = s;
    return this.settable;
  }
  timeout(): number | null {
    return this.actual;
  }
  open(): void {
    this.calls.push('open');
  }
  keepalive(): void {
    this.calls.push('keepalive');
  }
  close(): void {
    this.calls.push('close');
  }
}

const timing = (ttl = 30, loop_wait = 10) => () => ({ ttl, loop_wait });
const wd = (raw: Record<string, unknown>, dev: WatchdogDevice, t = timing()) => new Watchdog(watchdogSettings(raw), t, silentLogger(), dev);

test('settings: Patroni defaults and mode aliases', () => {
  assert.deepEqual(watchdogSettings(undefined), { mode: 'automatic', device: '/dev/watchdog', safetyMargin: 5, driver: 'default' });
  assert.equal(watchdogSettings({ mode: 'require' }).mode, 'required');
  assert.equal(watchdogSettings({ mode: false }).mode, 'off');
  assert.equal(watchdogSettings({ mode: 'disabled' }).mode, 'off');
  assert.equal(watchdogSettings({ mode: 'auto' }).mode, 'automatic');
});

test('config: watchdog keys are validated and a bad mode names the key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-wd-'));
  try {
    const base = 'scope: a\nname: b\nrestapi: {listen: 127.0.0.1:8008}\netcd3: {hosts: 127.0.0.1:2379}\npostgresql: {listen: 127.0.0.1:5432, data_dir: /tmp/x, authentication: {superuser: {username: postgres, password: x}, replication: {username: r, password: x}}}\n';
    writeFileSync(join(dir, 'ok.yml'), `${base}watchdog: {mode: required, device: /dev/watchdog, safety_margin: 5}\n`);
    assert.deepEqual(loadConfig({ file: join(dir, 'ok.yml'), env: {} }).config.watchdog, { mode: 'required', device: '/dev/watchdog', safety_margin: 5 });
    writeFileSync(join(dir, 'bad.yml'), `${base}watchdog: {mode: sometimes}\n`);
    assert.throws(() => loadConfig({ file: join(dir, 'bad.yml'), env: {} }), /watchdog\.mode: expected off, automatic or required/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('activate sets ttl - safety_margin before opening, feeds it, and closes it on disable', () => {
  const dev = new FakeDevice();
  const w = wd({ mode: 'required' }, dev);
  assert.equal(w.activate(), true);
  assert.deepEqual(dev.calls, ['set 25', 'open', 'keepalive']);
  assert.equal(w.isRunning(), true);
  assert.equal(w.activate(), true, 'already running: nothing again');
  w.keepalive();
  w.disable();
  w.keepalive();
  assert.deepEqual(dev.calls, ['set 25', 'open', 'keepalive', 'keepalive', 'close'], 'no keepalive once disabled');
  const half = new FakeDevice();
  wd({ mode: 'required', safety_margin: -1 }, half).activate();
  assert.equal(half.calls[0], 'set 15', 'safety_margin -1: ttl/2');
});

test('required: no device, a timeout that cannot be set, or one longer than wanted → refuse; automatic carries on', () => {
  const missing = new FakeDevice(false);
  assert.equal(wd({ mode: 'required' }, missing).activate(), false);
  assert.equal(wd({ mode: 'required' }, missing).isHealthy(), false, 'required and unusable: not healthy (never races)');
  assert.equal(wd({ mode: 'automatic' }, missing).activate(), true);
  assert.equal(wd({ mode: 'automatic' }, missing).isHealthy(), true);
  const fixed = new FakeDevice(true, false, 60);
  const w = wd({ mode: 'required' }, fixed);
  assert.equal(w.activate(), false, 'a 60 s device cannot protect a 25 s deadline');
  assert.equal(w.isRunning(), false);
  assert.ok(fixed.calls.includes('close'), 'and it was closed again');
  assert.equal(wd({ mode: 'automatic' }, new FakeDevice(true, false, 60)).activate(), true, 'automatic: warns and uses it');
  assert.equal(wd({ mode: 'required' }, new FakeDevice(), timing(10, 8)).activate(), false, 'ttl - margin shorter than loop_wait');
  assert.equal(wd({ mode: 'required' }, new FakeDevice(), timing(10, 8)).isHealthy(), false);
});

test('testing driver: Patroni’s file protocol (Ctimeout=N, 1 per keepalive, V on close)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-wd-'));
  try {
    const file = join(dir, 'watchdog');
    writeFileSync(file, '');
    const w = new Watchdog(watchdogSettings({ mode: 'required', driver: 'testing', device: file }), timing(20, 2), silentLogger(), new TestingWatchdogDevice(file));
    assert.equal(w.activate(), true);
    w.keepalive();
    w.keepalive();
    w.disable();
    assert.equal(readFileSync(file, 'utf8'), 'Ctimeout=15\n111V');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reason not to activate is logged once while it lasts, not every tick', async () => {
  const { pino } = await import('pino');
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const t = { ttl: 5, loop_wait: 1 };
  const w = new Watchdog(watchdogSettings({ mode: 'automatic' }), () => t, log, new FakeDevice());
  for (let i = 0; i < 5; i++) assert.equal(w.activate(), true, 'automatic carries on');
  assert.equal(lines.filter((l) => l.includes('shorter than loop_wait')).length, 1);
  t.ttl = 4;
  w.activate();
  assert.equal(lines.filter((l) => l.includes('shorter than loop_wait')).length, 2, 'a new reason is logged');
  t.ttl = 30;
  assert.equal(w.activate(), true);
  assert.equal(w.isRunning(), true);
  w.disable();
  t.ttl = 4;
  w.activate();
  assert.equal(lines.filter((l) => l.includes('shorter than loop_wait')).length, 3, 'logged again after the watchdog ran in between');
});
