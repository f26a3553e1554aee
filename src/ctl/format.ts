/**
 * Value formatting the way patronictl's Python prints it, so scripts that parse `patronictl` output can
 * parse ours: PyYAML's `safe_dump` (keys sorted, block style, lists not indented), `json.dumps` with its
 * default separators and ASCII escapes, `str()` of scalars, `round()` (half to even) and the
 * `timestamp()` helper. Pure.
 */
import { stringify, type ScalarTag, type SchemaOptions } from 'yaml';

type TagList = Extract<NonNullable<SchemaOptions['customTags']>, unknown[]>;

/**
 * PyYAML resolves only these spellings as booleans; the `yaml` package's 1.1 schema also takes `y`/`n`,
 * which PyYAML writes plain. Narrowed the same way config/yaml.ts narrows its reader.
 */
const PYYAML_BOOL = { true: /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/, false: /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/ };

function pyyamlTags(tags: TagList): TagList {
  return tags.map((t) => {
    const s = t as ScalarTag;
    if (typeof t !== 'object' || s.tag !== 'tag:yaml.org,2002:bool' || !(s.test instanceof RegExp)) return t;
    return { ...s, test: s.test.test('yes') ? PYYAML_BOOL.true : PYYAML_BOOL.false };
  });
}

/**
 * patronictl's `format_config_for_editing`: PyYAML `safe_dump(data, default_flow_style=flow, width=200)`.
 * YAML 1.1 quoting, so a string such as `on` or `0750` is written quoted and reads back as a string.
 */
export function dumpYaml(data: unknown, flow = false): string {
  return stringify(data, {
    version: '1.1',
    sortMapEntries: true,
    indentSeq: false,
    lineWidth: 200,
    minContentWidth: 0,
    singleQuote: true,
    flowCollectionPadding: false,
    customTags: (tags) => pyyamlTags(tags as TagList),
    ...(flow ? { collectionStyle: 'flow' as const } : {}),
  });
}

/** Python's `json.dumps(value)`: `", "` and `": "` separators, non-ASCII escaped as \uXXXX. */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN';
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${pyJson(k)}: ${pyJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(String(value));
}

/** Python's `str()` of the scalars patronictl puts into table cells. */
export function pyStr(v: unknown): string {
  if (v === null || v === undefined) return v === null ? 'None' : '';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'object') return pyJson(v);
  return String(v);
}

/** Python 3's `round(x)`: to the nearest integer, halves to the even one. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Python's `repr()` of a list of strings: `['a', 'b']` (patronictl's candidate prompt). */
export function pyList(items: readonly string[]): string {
  return `[${items.map((s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(', ')}]`;
}

const p2 = (n: number): string => String(n).padStart(2, '0');

/**
 * patronictl's `timestamp(precision)`: local time `YYYY-MM-DD HH:MM:SS`, with `precision - 1` digits of
 * the fraction when precision > 0 (its slicing of `%f` drops the last one; 6 gives 5 digits).
 */
export function timestamp(d: Date, precision = 6): string {
  const base = `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
  if (precision <= 0) return base;
  const micro = `${String(d.getMilliseconds()).padStart(3, '0')}000`;
  return `${base}.${micro.slice(0, precision - 1)}`;
}
