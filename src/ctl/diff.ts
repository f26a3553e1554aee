/**
 * A unified diff of two texts, line by line, in the format of Python's `difflib.unified_diff` with no
 * file names and 3 lines of context — what `patronictl edit-config` shows before asking. Pure.
 */

type Op = { kind: 'equal' | 'delete' | 'insert'; a: number; b: number };

/** One edit script from a longest common subsequence (configs are small: O(n·m) is fine). */
function editScript(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: LCS length of a[i..] and b[j..]
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: 'equal', a: i++, b: j++ });
    else if (j < m && (i === n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) ops.push({ kind: 'insert', a: i, b: j++ });
    else ops.push({ kind: 'delete', a: i++, b: j });
  }
  return ops;
}

/** difflib's `_format_range_unified`. */
function range(start: number, length: number): string {
  if (length === 1) return String(start + 1);
  return length === 0 ? `${start},0` : `${start + 1},${length}`;
}

/** Lines of the diff (`--- `, `+++ `, `@@ … @@`, then ` `/`-`/`+` lines); empty when the texts are equal. */
export function unifiedDiff(before: string, after: string, context = 3): string[] {
  const listify = (s: string): string[] => s.replace(/\n+$/, '').split('\n');
  const a = listify(before);
  const b = listify(after);
  const ops = editScript(a, b);
  const changed = ops.map((o, k) => (o.kind === 'equal' ? -1 : k)).filter((k) => k >= 0);
  if (changed.length === 0) return [];
  // Hunks: runs of changes whose gaps of equal lines are at most 2 × context, with context around them.
  const hunks: Array<[number, number]> = [];
  for (const k of changed) {
    const last = hunks.at(-1);
    if (last && k - last[1] - 1 <= 2 * context) last[1] = k;
    else hunks.push([k, k]);
  }
  const out = ['--- ', '+++ '];
  for (const [first, lastChange] of hunks) {
    const from = Math.max(0, first - context);
    const to = Math.min(ops.length - 1, lastChange + context);
    const slice = ops.slice(from, to + 1);
    const aStart = slice[0]!.a;
    const bStart = slice[0]!.b;
    const aLen = slice.filter((o) => o.kind !== 'insert').length;
    const bLen = slice.filter((o) => o.kind !== 'delete').length;
    out.push(`@@ -${range(aStart, aLen)} +${range(bStart, bLen)} @@`);
    // Within a run of changes, deletions first, then insertions (as difflib prints a 'replace').
    let run: Op[] = [];
    const flush = (): void => {
      out.push(...run.filter((o) => o.kind === 'delete').map((o) => `-${a[o.a]}`), ...run.filter((o) => o.kind === 'insert').map((o) => `+${b[o.b]}`));
      run = [];
    };
    for (const o of slice) {
      if (o.kind === 'equal') {
        flush();
        out.push(` ${a[o.a]}`);
      } else run.push(o);
    }
    flush();
  }
  return out;
}
