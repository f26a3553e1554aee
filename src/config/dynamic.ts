/**
 * Dynamic configuration, with Patroni's semantics (patroni/__main__.py `load_dynamic_configuration`,
 * config.py `_safe_copy_dynamic_configuration`):
 * - the store's `config` key is the source of truth once it holds anything; before that `bootstrap.dcs` is;
 * - every key we interpret has a default (DYNAMIC_DEFAULTS, Patroni's `__DEFAULT_CONFIG`);
 * - a bad value never stops a running daemon: the default is kept and a warning names the key
 *   (at load time the same findings on `bootstrap.dcs` are errors instead, see schema.ts);
 * - the raw object is kept, so keys we do not interpret survive a rewrite.
 */
import { DYNAMIC_DEFAULTS, type DynamicConfig, type PgParamValue } from './types.js';
import { isObj, show, toBool, toInt, type Obj } from './values.js';

/**
 * Lowest timing values we accept, in seconds. Patroni 3.2+ enforces ttl ≥ 20, loop_wait ≥ 1 and
 * retry_timeout ≥ 3 (config.py `_validate_and_adjust_timeouts`). We go lower because a primary here
 * demotes on its own monotonic clock before its lease can expire, so short TTLs stay safe; they make
 * tests and demos fail over in seconds. Below a floor the floor is used, with a warning.
 */
export const TIMING_FLOORS = { ttl: 5, loop_wait: 1, retry_timeout: 1 } as const;

/** A value we could not use: `path` is relative to the dynamic config, the default stays in force. */
export interface DynamicProblem {
  path: string;
  reason: string;
  fallback: unknown;
}

export interface DynamicReading {
  dynamic: DynamicConfig;
  /** Values of the wrong type or range (the default was used). */
  problems: DynamicProblem[];
  /** Values that were valid but adjusted (timing floors and the ttl rule). */
  adjustments: string[];
}

type Timing = Pick<DynamicConfig, 'ttl' | 'loop_wait' | 'retry_timeout'>;
type IntKey = 'maximum_lag_on_failover' | 'primary_start_timeout' | 'primary_stop_timeout' | 'synchronous_node_count' | 'max_timelines_history';
type BoolKey = 'synchronous_mode_strict' | 'pause' | 'check_timeline' | 'failsafe_mode';

/** Smallest allowed value per integer key (Patroni has no bound but these make no sense below). */
const INT_MINIMUM: Record<IntKey, number> = {
  maximum_lag_on_failover: 0,
  primary_start_timeout: 0,
  primary_stop_timeout: 0,
  synchronous_node_count: 1,
  max_timelines_history: 0,
};
const BOOL_KEYS: readonly BoolKey[] = ['synchronous_mode_strict', 'pause', 'check_timeline', 'failsafe_mode'];

/** Patroni 3.0 still reads the old names when the new one is absent (config.py `__REMAP_KEYS`). */
const RENAMED: ReadonlyArray<readonly [old: string, now: string]> = [
  ['master_start_timeout', 'primary_start_timeout'],
  ['master_stop_timeout', 'primary_stop_timeout'],
];

/** Keys of the dynamic config that this layer interprets (anything else is only carried in `raw`). */
export const INTERPRETED_DYNAMIC_KEYS: readonly string[] = [
  'ttl', 'loop_wait', 'retry_timeout', ...Object.keys(INT_MINIMUM), ...BOOL_KEYS, 'synchronous_mode',
  ...RENAMED.map(([old]) => old), 'postgresql',
  // Standby cluster: read from `raw` by src/ha/standby.ts (standbyClusterSettings).
  'standby_cluster',
  // Replication slots: read from `raw` by src/ha/slots.ts (readSlotsConfig).
  'slots', 'permanent_slots', 'permanent_replication_slots', 'ignore_slots', 'member_slots_ttl',
];
export const INTERPRETED_DYNAMIC_PG_KEYS: readonly string[] = ['use_pg_rewind', 'use_slots', 'parameters', 'pg_hba'];

/**
 * The dynamic config in force: from the store when it holds a non-empty `config` (Patroni treats an
 * empty one as absent), else from `bootstrap.dcs`. Warnings name the key where the value lives,
 * `config.<key>` or `bootstrap.dcs.<key>`.
 */
export function effectiveDynamicConfig(
  stored: Obj | null,
  bootstrapDcs: Obj,
): { dynamic: DynamicConfig; warnings: string[] } {
  const fromStore = stored !== null && isObj(stored) && Object.keys(stored).length > 0;
  const source = fromStore ? stored : isObj(bootstrapDcs) ? bootstrapDcs : {};
  const label = fromStore ? 'config' : 'bootstrap.dcs';
  const { dynamic, problems, adjustments } = interpretDynamic(source);
  const warnings = [
    ...problems.map((p) => `${label}.${p.path}: ${p.reason}; using ${show(p.fallback)}`),
    ...adjustments.map((a) => `${label}.${a}`),
  ];
  return { dynamic, warnings };
}

/** Reads a dynamic config object; never throws, whatever the object holds. */
export function interpretDynamic(source: Obj): DynamicReading {
  const problems: DynamicProblem[] = [];
  const adjustments: string[] = [];
  const src = withRenamedKeys(source);
  const timing = readTiming(src, problems, adjustments);
  const dynamic: DynamicConfig = {
    ...timing,
    maximum_lag_on_failover: readInt(src, 'maximum_lag_on_failover', problems),
    primary_start_timeout: readInt(src, 'primary_start_timeout', problems),
    primary_stop_timeout: readInt(src, 'primary_stop_timeout', problems),
    synchronous_mode: readSyncMode(src, problems),
    synchronous_mode_strict: readBool(src, 'synchronous_mode_strict', DYNAMIC_DEFAULTS.synchronous_mode_strict, problems),
    synchronous_node_count: readInt(src, 'synchronous_node_count', problems),
    pause: readBool(src, 'pause', DYNAMIC_DEFAULTS.pause, problems),
    check_timeline: readBool(src, 'check_timeline', DYNAMIC_DEFAULTS.check_timeline, problems),
    max_timelines_history: readInt(src, 'max_timelines_history', problems),
    failsafe_mode: readBool(src, 'failsafe_mode', DYNAMIC_DEFAULTS.failsafe_mode, problems),
    postgresql: readPostgresql(src.postgresql, problems),
    raw: structuredClone(source),
  };
  return { dynamic, problems, adjustments };
}

function withRenamedKeys(source: Obj): Obj {
  const src: Obj = { ...source };
  for (const [old, now] of RENAMED) {
    if (src[now] === undefined && src[old] !== undefined) {
      src[now] = src[old];
      delete src[old];
    }
  }
  return src;
}

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null;
}

/** An integer key (Python int() semantics, as Patroni applies to these keys). */
function readInt(src: Obj, key: IntKey, problems: DynamicProblem[]): number {
  const fallback = DYNAMIC_DEFAULTS[key];
  const v = src[key];
  if (isAbsent(v)) return fallback;
  const n = toInt(v);
  const min = INT_MINIMUM[key];
  if (n === null) {
    problems.push({ path: key, reason: `expected a number, got ${show(v)}`, fallback });
    return fallback;
  }
  if (n < min) {
    problems.push({ path: key, reason: `must be at least ${min}, got ${show(v)}`, fallback });
    return fallback;
  }
  return n;
}

function readBool(o: Obj, key: string, fallback: boolean, problems: DynamicProblem[], prefix = ''): boolean {
  const v = o[key];
  if (isAbsent(v)) return fallback;
  const b = toBool(v);
  if (b === null) problems.push({ path: prefix + key, reason: `expected a boolean, got ${show(v)}`, fallback });
  return b ?? fallback;
}

/** `synchronous_mode` is a boolean, or `quorum` (Patroni 4's quorum commit, which we also implement). */
function readSyncMode(src: Obj, problems: DynamicProblem[]): boolean | 'quorum' {
  const v = src.synchronous_mode;
  if (typeof v === 'string' && v.trim().toLowerCase() === 'quorum') return 'quorum';
  if (isAbsent(v)) return DYNAMIC_DEFAULTS.synchronous_mode;
  const b = toBool(v);
  if (b === null) {
    problems.push({ path: 'synchronous_mode', reason: `expected a boolean or "quorum", got ${show(v)}`, fallback: false });
  }
  return b ?? DYNAMIC_DEFAULTS.synchronous_mode;
}

/** ttl, loop_wait and retry_timeout: integers, raised to their floors, then fitted to the ttl rule. */
function readTiming(src: Obj, problems: DynamicProblem[], adjustments: string[]): Timing {
  const read = (key: keyof Timing): number => {
    const fallback = DYNAMIC_DEFAULTS[key];
    const v = src[key];
    if (isAbsent(v)) return fallback;
    const n = toInt(v);
    if (n === null) problems.push({ path: key, reason: `expected a number, got ${show(v)}`, fallback });
    return atFloor(key, n ?? fallback, adjustments);
  };
  return fitTtlRule({ ttl: read('ttl'), loop_wait: read('loop_wait'), retry_timeout: read('retry_timeout') }, adjustments);
}

function atFloor(key: keyof Timing, value: number, adjustments: string[]): number {
  const floor = TIMING_FLOORS[key];
  if (value >= floor) return value;
  adjustments.push(`${key}: ${value} is below the minimum ${floor}; using ${floor}`);
  return floor;
}

/**
 * Patroni's rule `loop_wait + 2*retry_timeout <= ttl`: a primary that cannot reach the store must be
 * able to retry for retry_timeout and still demote before its lock's ttl runs out. Adjusted the way
 * Patroni 3.2+ does (config.py `_validate_and_adjust_timeouts`): lower loop_wait first, since it only
 * costs reaction time; only when loop_wait at its floor is not enough, lower retry_timeout as well.
 */
export function fitTtlRule(t: Timing, adjustments: string[] = []): Timing {
  const minLoop = TIMING_FLOORS.loop_wait;
  if (t.loop_wait + 2 * t.retry_timeout <= t.ttl) return t;
  const fitted =
    minLoop + 2 * t.retry_timeout > t.ttl
      ? { ttl: t.ttl, loop_wait: minLoop, retry_timeout: Math.max(TIMING_FLOORS.retry_timeout, Math.floor((t.ttl - minLoop) / 2)) }
      : { ttl: t.ttl, loop_wait: t.ttl - 2 * t.retry_timeout, retry_timeout: t.retry_timeout };
  adjustments.push(
    `ttl: loop_wait + 2*retry_timeout must not exceed ttl ${t.ttl} (was loop_wait ${t.loop_wait}, retry_timeout ${t.retry_timeout}); ` +
      `using loop_wait ${fitted.loop_wait}, retry_timeout ${fitted.retry_timeout}`,
  );
  return fitted;
}

function readPostgresql(v: unknown, problems: DynamicProblem[]): DynamicConfig['postgresql'] {
  const pg: Obj = isObj(v) ? v : {};
  if (!isAbsent(v) && !isObj(v)) problems.push({ path: 'postgresql', reason: `expected a mapping, got ${show(v)}`, fallback: {} });
  const pgHba = readPgHba(pg.pg_hba, problems);
  return {
    use_pg_rewind: readBool(pg, 'use_pg_rewind', false, problems, 'postgresql.'),
    use_slots: readBool(pg, 'use_slots', true, problems, 'postgresql.'),
    parameters: readParameters(pg.parameters, problems),
    ...(pgHba ? { pg_hba: pgHba } : {}),
  };
}

function readPgHba(v: unknown, problems: DynamicProblem[]): string[] | undefined {
  if (isAbsent(v)) return undefined;
  if (Array.isArray(v) && v.every((l) => typeof l === 'string')) return v;
  problems.push({ path: 'postgresql.pg_hba', reason: `expected a list of strings, got ${show(v)}`, fallback: null });
  return undefined;
}

/** PostgreSQL parameters are scalars; a `null` value means "not set" (PATCH deletes it that way). */
function readParameters(v: unknown, problems: DynamicProblem[]): Record<string, PgParamValue> {
  if (isAbsent(v)) return {};
  if (!isObj(v)) {
    problems.push({ path: 'postgresql.parameters', reason: `expected a mapping, got ${show(v)}`, fallback: {} });
    return {};
  }
  const out: Record<string, PgParamValue> = {};
  for (const [k, p] of Object.entries(v)) {
    if (typeof p === 'string' || typeof p === 'number' || typeof p === 'boolean') out[k] = p;
    else if (p !== null) problems.push({ path: `postgresql.parameters.${k}`, reason: `expected a string, number or boolean, got ${show(p)}`, fallback: null });
  }
  return out;
}

/**
 * Patroni's PATCH /config (api.py `do_PATCH_config` → utils.py `patch_config`): a recursive merge
 * where `null` deletes a key, a mapping merges into a mapping, and anything else replaces. Neither
 * argument is modified.
 */
export function mergeDynamicPatch(current: Obj, patch: Obj): Obj {
  const out: Obj = structuredClone(current);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObj(v) && isObj(out[k])) out[k] = mergeDynamicPatch(out[k], v);
    else out[k] = structuredClone(v);
  }
  return out;
}
