/** Plain-text tables in the style of `patronictl list` (+---+ borders, one header row). */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>, title?: string): string {
  const cells = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const sep = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (r: readonly string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out: string[] = [];
  if (title) {
    const inner = sep.length - 2;
    const t = ` ${title} `;
    const left = Math.max(0, Math.floor((inner - t.length) / 2));
    out.push(`+${'-'.repeat(left)}${t}${'-'.repeat(Math.max(0, inner - left - t.length))}+`);
  } else {
    out.push(sep);
  }
  out.push(line(headers), sep, ...cells.map(line), sep);
  return out.join('\n');
}

function cellText(v: string | number | null | undefined): string {
  return v === null || v === undefined ? '' : String(v);
}

export type Align = 'l' | 'r';

export interface PrettyOptions {
  /** Written into the top border from its second character, as patronictl's table header (` Cluster: demo `). */
  title?: string;
  /** Per-column alignment by header name; columns not named are left-aligned. */
  align?: Readonly<Record<string, Align>>;
}

/**
 * A table exactly as patronictl 3.0.2 prints one (PrettyTable 3.6, `align = 'l'` plus per-column
 * overrides, headers aligned like their column). Cells with line breaks take several lines and then
 * every row is separated by a rule (PrettyTable's `hrules=ALL`); otherwise only the frame is drawn.
 */
export function prettyTable(columns: readonly string[], rows: ReadonlyArray<readonly string[]>, opts: PrettyOptions = {}): string {
  const split = (c: string): string[] => c.split('\n');
  const cells = rows.map((r) => columns.map((_, i) => split(r[i] ?? '')));
  const widths = columns.map((h, i) => Math.max(h.length, ...cells.flatMap((r) => r[i]!.map((l) => l.length))));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const pad = (text: string, i: number): string => (opts.align?.[columns[i]!] === 'r' ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const lines = (r: readonly string[][]): string[] => {
    const height = Math.max(1, ...r.map((c) => c.length));
    return Array.from({ length: height }, (_, k) => `| ${r.map((c, i) => pad(c[k] ?? '', i)).join(' | ')} |`);
  };
  const multiline = cells.some((r) => r.some((c) => c.length > 1));
  const top = opts.title ? `+${opts.title.slice(0, rule.length - 2)}${rule.slice(1 + Math.min(opts.title.length, rule.length - 2))}` : rule;
  const out = [top, ...lines(columns.map((c) => [c])), rule];
  cells.forEach((r, i) => {
    out.push(...lines(r));
    if (multiline && i < cells.length - 1) out.push(rule);
  });
  out.push(rule);
  return out.join('\n');
}
