import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTerminal, scriptedLines } from '../../src/ctl/terminal.js';
import { ExitError } from '../../src/util/errors.js';

function term(answers: string[]) {
  let written = '';
  const t = createTerminal((s) => (written += s), scriptedLines(answers), async () => '');
  return { t, written: () => written };
}

test('prompt: the default on empty input, shown in brackets; asks again without one', async () => {
  const { t, written } = term(['', '', 'member-2']);
  assert.equal(await t.prompt('Primary', 'member-1'), 'member-1');
  assert.equal(await t.prompt('Please confirm the cluster name to remove'), 'member-2');
  assert.equal(written(), 'Primary [member-1]: Please confirm the cluster name to remove: Please confirm the cluster name to remove: ');
});

test('confirm: y/n, default no, invalid input asked again', async () => {
  const { t, written } = term(['maybe', 'y', '', 'no']);
  assert.equal(await t.confirm('Apply these changes?'), true);
  assert.equal(written(), 'Apply these changes? [y/N]: Error: invalid input\nApply these changes? [y/N]: ');
  assert.equal(await t.confirm('Again?'), false);
  assert.equal(await t.confirm('Again?', true), false);
});

test('the end of input aborts with exit code 1', async () => {
  const { t } = term([]);
  await assert.rejects(t.confirm('Sure?'), (e: unknown) => e instanceof ExitError && e.code === 1 && e.message === 'Aborted!');
});
