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
