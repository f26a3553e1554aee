import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unifiedDiff } from '../../src/ctl/diff.js';

// Expected lines from Python's difflib.unified_diff (3.11), as patronictl prints them (rstrip('\n')).
test('one changed line with its context', () => {
  assert.deepEqual(unifiedDiff('a: 1\nb: 2\nc: 3\n', 'a: 1\nb: 5\nc: 3\n'), ['--- ', '+++ ', '@@ -1,3 +1,3 @@', ' a: 1', '-b: 2', '+b: 5', ' c: 3']);
});

test('distant changes make separate hunks; additions at the end', () => {
  const nums = Array.from({ length: 20 }, (_, i) => i);
  const a = `${nums.join('\n')}\n`;
  const b = `${nums.filter((i) => i !== 2 && i !== 15).join('\n')}\nx\n`;
  assert.deepEqual(unifiedDiff(a, b), [
    '--- ', '+++ ',
    '@@ -1,6 +1,5 @@', ' 0', ' 1', '-2', ' 3', ' 4', ' 5',
    '@@ -13,8 +12,8 @@', ' 12', ' 13', ' 14', '-15', ' 16', ' 17', ' 18', ' 19', '+x',
  ]);
  assert.deepEqual(unifiedDiff('a\nb\n', 'a\nb\nc\nd\n'), ['--- ', '+++ ', '@@ -1,2 +1,4 @@', ' a', ' b', '+c', '+d']);
  assert.deepEqual(unifiedDiff('x\n', 'y\n'), ['--- ', '+++ ', '@@ -1 +1 @@', '-x', '+y']);
});

test('equal texts: no diff', () => {
  assert.deepEqual(unifiedDiff('a\n', 'a\n'), []);
});
