/** Callbacks and pre_promote: shlex-style splitting, arguments, one at a time, exit codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CallbackRunner, splitCommand } from '../../src/postgres/callbacks.js';
import { silentLogger } from '../../src/util/log.js';
import { systemClock } from '../../src/util/clock.js';

test('splitCommand follows shlex.split', () => {
  assert.deepEqual(splitCommand('/bin/echo a  b'), ['/bin/echo', 'a', 'b']);
  assert.deepEqual(splitCommand(`cmd 'a b' "c \\"d\\"" e\\ f`), ['cmd', 'a b', 'c "d"', 'e f']);
  assert.deepEqual(splitCommand(`cmd ''`), ['cmd', '']);
  assert.throws(() => splitCommand(`cmd 'open`), /unterminated quote/);
});

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await systemClock.sleep(20);
  }
}

test('a callback runs as <command> <action> <role> <scope>; a new one kills the one still running', async () => {
  const dir = mkdtempSync('/tmp/pgwarden-cb-');
  try {
    const out = join(dir, 'out');
    const script = join(dir, 'cb.sh');
    writeFileSync(script, `#!/bin/sh\necho "$@" >> ${out}\nif [ "$2" = on_stop ]; then sleep 30; echo "stop finished" >> ${out}; fi\n`);
    chmodSync(script, 0o755);
    const r = new CallbackRunner({ callbacks: () => ({ on_stop: `${script} first`, on_role_change: script }), scope: 'demo', log: silentLogger() });
    r.call('on_start', 'replica'); // not configured: nothing
    r.call('on_stop', 'master');
    await until('on_stop started', () => existsSync(out) && readFileSync(out, 'utf8').includes('on_stop'));
    r.call('on_role_change', 'replica');
    await until('on_role_change ran', () => readFileSync(out, 'utf8').includes('on_role_change'));
    assert.deepEqual(readFileSync(out, 'utf8').trim().split('\n'), ['first on_stop master demo', 'on_role_change replica demo']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pre_promote: exit 0 allows, non-zero or a missing program refuses', async () => {
  const r = new CallbackRunner({ callbacks: () => undefined, scope: 'demo', log: silentLogger() });
  assert.equal(await r.prePromote(undefined, 1000), true);
  assert.equal(await r.prePromote('/bin/true', 5000), true);
  assert.equal(await r.prePromote('/bin/false', 5000), false);
  assert.equal(await r.prePromote('/nonexistent/fence', 5000), false);
  assert.equal(await r.prePromote('/bin/sleep 10', 200), false, 'an overrunning script is killed and refuses');
});
