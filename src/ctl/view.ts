/**
 * What `ctl list`, `topology` and `history` print, from a store snapshot — patronictl 3.0.2's
 * `output_members`, `topology_sort` and `print_output`, so the output reads (and parses) the same.
 * Pure: a snapshot and options in, text out.
 */
import type { ClusterJson, ClusterMemberJson } from '../api/cluster-json.js';
import type { HistoryEntry } from '../dcs/types.js';
import { dumpYaml, pyJson, pyRound, pyStr } from './format.js';
import { prettyTable, type Align } from './table.js';

export const OUTPUT_FORMATS = ['pretty', 'tsv', 'json', 'yaml', 'yml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number] | 'topology';

export interface Output {
  columns: string[];
  rows: unknown[][];
  align?: Readonly<Record<string, Align>>;
  /** The table title; list-style output (first column `Cluster`) hides that column when pretty. */
  title?: string;
}

/**
 * patronictl's `print_output`. JSON/YAML: one object per row keyed by column (with a title, cells that
 * print as '' are left out). Pretty/TSV: member tags as YAML (block when pretty, flow in TSV).
 */
export function formatOutput(o: Output, fmt: OutputFormat, delimiter = '\t'): string {
  if (fmt === 'json' || fmt === 'yaml' || fmt === 'yml') {
    const elements = o.rows.map((r) => Object.fromEntries(o.columns.map((c, i) => [c, r[i]] as const).filter(([, v]) => !o.title || pyStr(v) !== '')));
    return fmt === 'json' ? pyJson(elements) : dumpYaml(elements);
  }
  let columns = o.columns;
  let rows = o.rows.map((r) => [...r]);
  const listCluster = Boolean(o.title) && columns[0] === 'Cluster';
  const tags = columns.indexOf('Tags');
  if (listCluster && tags >= 0) {
    for (const r of rows) if (isNonEmpty(r[tags])) r[tags] = dumpYaml(r[tags], fmt !== 'pretty').trim();
  }
  if (listCluster && fmt !== 'tsv') {
    columns = columns.slice(1);
    rows = rows.map((r) => r.slice(1));
  }
  if (fmt === 'tsv') return [...(columns.length ? [columns] : []), ...rows].map((r) => r.map(pyStr).join(delimiter)).join('\n');
  return prettyTable(columns, rows.map((r) => r.map(pyCell)), { title: o.title, align: o.align });
}

/** Python truthiness of a cell value (a non-empty dict, list or string, a non-zero number). */
function isNonEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** A table cell as PrettyTable prints it: str(), with Python's `{}` for an empty mapping. */
function pyCell(v: unknown): string {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return '{}';
  return pyStr(v);
}

/** `leader` → `Leader`, `sync_standby` → `Sync Standby` (Python's `.replace('_', ' ').title()`). */
export function roleTitle(role: string): string {
  return role.replace(/_/g, ' ').replace(/[A-Za-z]+/g, (w) => w[0]!.toUpperCase() + w.slice(1).toLowerCase());
}

/**
 * patronictl's `topology_sort`: the leader first, then each member under its upstream — the member its
 * `replicatefrom` tag names if that is another replica, else the leader — indented `+ ` per level.
 */
export function topologySort(members: readonly ClusterMemberJson[]): ClusterMemberJson[] {
  const leader = members.find((m) => m.role.endsWith('leader'));
  const replicas = new Set(members.filter((m) => !m.role.endsWith('leader')).map((m) => m.name));
  const children = new Map<string | null, ClusterMemberJson[]>();
  for (const m of members) {
    if (m.role.endsWith('leader')) continue;
    const from = m.tags?.replicatefrom;
    const parent = typeof from === 'string' && from && from !== m.name && replicas.has(from) ? from : (leader?.name ?? null);
    children.set(parent, [...(children.get(parent) ?? []), m]);
  }
  const out: ClusterMemberJson[] = [];
  const visit = (name: string | null, level: number, m: ClusterMemberJson | null): void => {
    if (m) out.push(level > 0 ? { ...m, name: `${' '.repeat((level - 1) * 2)}+ ${m.name}` } : m);
    for (const c of children.get(name) ?? []) visit(c.name, level + 1, c);
  };
  visit(leader?.name ?? null, 0, leader ?? null);
  return out;
}

/** The lines under the member table: maintenance mode and a scheduled switchover. */
export function serviceInfo(view: ClusterJson): string[] {
  const info: string[] = [];
  if (view.pause) info.push('Maintenance mode: on');
  const s = view.scheduled_switchover;
  if (s) {
    let line = `Switchover scheduled at: ${s.at}`;
    for (const k of ['from', 'to'] as const) if (s[k]) line += `\n${k.padStart(24)}: ${s[k]}`;
    info.push(line);
  }
  return info;
}

const LIST_ALIGN: Readonly<Record<string, Align>> = { Group: 'r', 'Lag in MB': 'r', TL: 'r' };

/** patronictl's `output_members` as an Output (columns and rows) plus the service lines below it. */
export function membersOutput(view: ClusterJson, scope: string, opts: { extended?: boolean; topology?: boolean } = {}): Output & { info: string[] } {
  const columns = ['Cluster', 'Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB'];
  const withHost = view.members.filter((m) => m.host !== undefined);
  const optional: Array<[string, keyof ClusterMemberJson]> = [
    ['Pending restart', 'pending_restart'],
    ['Scheduled restart', 'scheduled_restart'],
    ['Tags', 'tags'],
  ];
  for (const [title, key] of optional) if (opts.extended || withHost.some((m) => isNonEmpty(m[key]))) columns.push(title);
  // host:port when a member runs on a non-default port or two share a host.
  const appendPort = withHost.some((m) => m.port !== undefined && m.port !== 5432) || new Set(withHost.map((m) => m.host)).size < withHost.length;
  const members = opts.topology ? topologySort(view.members) : view.members;
  const rows = members.map((m) => {
    const lag = m.lag;
    const cell: Record<string, unknown> = {
      Cluster: scope,
      Member: m.name,
      Host: appendPort && m.host && m.port !== undefined ? `${m.host}:${m.port}` : (m.host ?? ''),
      Role: roleTitle(m.role),
      State: m.state,
      TL: m.timeline ?? '',
      'Lag in MB': typeof lag === 'number' ? pyRound(lag / 1024 / 1024) : (lag ?? ''),
      'Pending restart': m.pending_restart ? '*' : '',
      'Scheduled restart': scheduledRestart(m.scheduled_restart),
      Tags: m.tags ?? '',
    };
    return columns.map((c) => cell[c]);
  });
  return { columns, rows, align: LIST_ALIGN, title: ` Cluster: ${scope} `, info: serviceInfo(view) };
}

function scheduledRestart(v: unknown): unknown {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'object') return v;
  const s = v as { schedule?: unknown; postgres_version?: unknown };
  return `${pyStr(s.schedule)}${s.postgres_version !== undefined ? ` if version < ${pyStr(s.postgres_version)}` : ''}`;
}

/** `ctl list`/`topology` output: the table, then (pretty/topology only) the service lines. */
export function renderMembers(view: ClusterJson, scope: string, fmt: OutputFormat, extended = false): string {
  const o = membersOutput(view, scope, { extended, topology: fmt === 'topology' });
  const text = formatOutput(o, fmt);
  if ((fmt !== 'pretty' && fmt !== 'topology') || o.info.length === 0) return text;
  return `${text}\n ${o.info.join('\n ')}`;
}

/** `ctl history`: one row per timeline switch, short entries padded to five columns. */
export function renderHistory(history: readonly HistoryEntry[], fmt: OutputFormat): string {
  const columns = ['TL', 'LSN', 'Reason', 'Timestamp', 'New Leader'];
  const rows = history.map((h) => columns.map((_, i) => (h as readonly unknown[])[i] ?? ''));
  return formatOutput({ columns, rows, align: { TL: 'r', LSN: 'r' } }, fmt);
}
