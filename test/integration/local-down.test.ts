/** `pgwarden local down` against a daemon that does not stop on SIGTERM: it is killed, not forgotten. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as after } from 'node:timers/promises';
import { createLocalCluster, saveState } from '../../src/local/cluster.js';
import { localDown } from '../../src/local/run.js';
import { processStartTime } from '../../src/util/proc.js';

test('local down: a daemon still running after SIGTERM and the wait is killed by its PID', async () => {
  const dir = mkdtempSync('/tmp/pgwarden-local-down-');
  // Stands in for a hung daemon: ignores SIGTERM, says so once the handler is in place.
  const stubborn = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => console.log('ignored')); console.log('ready'); setInterval(() => {}, 1000)"], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(stubborn, 'exit');
  try {
    let said = '';
    stubborn.stdout!.setEncoding('utf8').on('data', (d: string) => (said += d));
    while (!said.includes('ready')) await once(stubborn.stdout!, 'data');
    const state = await createLocalCluster({ dir, members: 1 });
    state.members[0]!.pid = stubborn.pid!;
    state.members[0]!.startTime = processStartTime(stubborn.pid!);
    saveState(state);

    const lines: string[] = [];
    await localDown(dir, { info: (s: string) => lines.push(s) }, { daemonStopMs: 300 });
    // Bounded: a stand-in that was not killed never exits by itself.
    const exit = await Promise.race([exited, after(20_000, null, { ref: false })]);
    assert.ok(exit, 'the stand-in is still running after local down');
    assert.equal(exit[1], 'SIGKILL', `exited with ${exit[0] ?? exit[1]}`);
    assert.match(said, /ignored/, 'SIGTERM was sent first');
    assert.deepEqual(lines, [`killed member-1 (pid ${stubborn.pid}): it had not stopped 0.3 s after SIGTERM`]);
  } finally {
    if (stubborn.exitCode === null && stubborn.signalCode === null) stubborn.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
