/**
 * Dynamic configuration (Patroni semantics): the store's `config` key is the source of truth once it
 * exists, `bootstrap.dcs` before that. Bad stored values never stop a running daemon: the default is
 * kept and a warning names the key.
 */
import { toBool, toNumber } from './schema.js';
import { DYNAMIC_DEFAULTS, type DynamicConfig, type PgParamValue } from './types.js';

type Obj = Record<string, unknown>;

/** Floors we accept (Patroni 3.2 enforces ttl ≥ 20; we are safe down to 5 because demotion is timed by our own clock). */
export const TIMING_FLOORS = { ttl: 5, loop_wait: 1, retry_timeout: 1 } as const;

export function effectiveDynamicConfig(stored: Obj | null, bootstrapDcs: Obj): { dynamic: DynamicConfig; warnings: string[] } {
  const given = stored ?? bootstrapDcs ?? {};
  const warnings: string[] = [];
  // Patroni 3.0 reads the old master_* names when the primary_* one is absent.
  const src: Obj = { ...given };
  for (const [old, now] of [['master_start_timeout', 'primary_start_timeout'], ['master_stop_timeout', 'primary_stop_timeout']] as const) {
    if (src[now] === undefined && src[old] !== undefined) src[now] = src[old];
  }
  const num = (key: keyof typeof DYNAMIC_DEFAULTS, min = 0): number => {
    const def = DYNAMIC_DEFAULTS[key] as number;
    const v = src[key];
    if (v === undefined || v === null) return def;
    const n = toNumber(v);
    if (n === null || n < min) {
      warnings.push(`config.${key}: expected a number${min ? ` ≥ ${min}` : ''}, got ${JSON.stringify(v)}; using ${def}`);
      return def;
    }
    return n;
  };
  const bool = (o: Obj, key: string, def: boolean, path = key): boolean => {
    const v = o[key];
    if (v === undefined || v === null) return def;
    const b = toBool(v);
    if (b === null) {
      warnings.push(`config.${path}: expected a boolean, got ${JSON.stringify(v)}; using ${def}`);
      return def;
    }
    return b;
  };
  let ttl = num('ttl');
  let loopWait = num('loop_wait');
  let retryTimeout = num('retry_timeout');
  for (const [k, floor] of Object.entries(TIMING_FLOORS)) {
    const cur = k === 'ttl' ? ttl : k === 'loop_wait' ? loopWait : retryTimeout;
    if (cur < floor) {
      warnings.push(`config.${k}: ${cur} is below the minimum ${floor}; using ${floor}`);
      if (k === 'ttl') ttl = floor;
      else if (k === 'loop_wait') loopWait = floor;
      else retryTimeout = floor;
    }
  }
  if (loopWait + 2 * retryTimeout > ttl) {
    const before = `loop_wait ${loopWait}, retry_timeout ${retryTimeout}`;
    retryTimeout = Math.max(TIMING_FLOORS.retry_timeout, Math.floor((ttl - loopWait) / 2));
    if (loopWait + 2 * retryTimeout > ttl) loopWait = Math.max(TIMING_FLOORS.loop_wait, ttl - 2 * retryTimeout);
    warnings.push(
      `config: loop_wait + 2*retry_timeout must not exceed ttl ${ttl} (was ${before}); using loop_wait ${loopWait}, retry_timeout ${retryTimeout}`,
    );
  }
  if (src.postgresql != null && !isObj(src.postgresql)) {
    warnings.push(`config.postgresql: expected a mapping, got ${JSON.stringify(src.postgresql)}; ignored`);
  }
  const pgIn = isObj(src.postgresql) ? src.postgresql : {};
  if (pgIn.parameters != null && !isObj(pgIn.parameters)) {
    warnings.push(`config.postgresql.parameters: expected a mapping, got ${JSON.stringify(pgIn.parameters)}; ignored`);
  }
  const params = isObj(pgIn.parameters) ? filterParams(pgIn.parameters, warnings) : {};
  const syncMode = src.synchronous_mode === 'quorum' ? 'quorum' : bool(src, 'synchronous_mode', false);
  const dynamic: DynamicConfig = {
    ttl,
    loop_wait: loopWait,
    retry_timeout: retryTimeout,
    maximum_lag_on_failover: num('maximum_lag_on_failover'),
    primary_start_timeout: num('primary_start_timeout'),
    primary_stop_timeout: num('primary_stop_timeout'),
    synchronous_mode: syncMode,
    synchronous_mode_strict: bool(src, 'synchronous_mode_strict', false),
    synchronous_node_count: num('synchronous_node_count', 1),
    pause: bool(src, 'pause', false),
    check_timeline: bool(src, 'check_timeline', false),
    max_timelines_history: num('max_timelines_history'),
    postgresql: {
      use_pg_rewind: bool(pgIn, 'use_pg_rewind', false, 'postgresql.use_pg_rewind'),
      use_slots: bool(pgIn, 'use_slots', true, 'postgresql.use_slots'),
      parameters: params,
      ...(Array.isArray(pgIn.pg_hba) ? { pg_hba: pgIn.pg_hba.map(String) } : {}),
    },
    raw: structuredClone(given),
  };
  return { dynamic, warnings };
}

/** Patroni's PATCH /config: recursive JSON merge where `null` deletes a key. */
export function mergeDynamicPatch(current: Obj, patch: Obj): Obj {
  const out: Obj = structuredClone(current);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObj(v) && isObj(out[k])) out[k] = mergeDynamicPatch(out[k] as Obj, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

function filterParams(p: Obj, warnings: string[]): Record<string, PgParamValue> {
  const out: Record<string, PgParamValue> = {};
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (v !== null) warnings.push(`config.postgresql.parameters.${k}: expected a scalar, got ${JSON.stringify(v)}; ignored`);
  }
  return out;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
