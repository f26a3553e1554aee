/**
 * Changing the dynamic config the way `patronictl edit-config` does, as pure functions: `--set k=v`
 * paths, `--pg guc=v`, `--apply file` (Patroni's patch_config: mappings merge, null deletes), and the
 * JSON merge patch that turns the result into a PATCH /config request.
 */
import { parseYaml } from '../config/index.js';
import { errorMessage } from '../util/errors.js';
import { usage } from './args.js';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** YAML text (Patroni reads values and files with PyYAML's safe_load, YAML 1.1). */
export function readYamlValue(text: string, what: string): unknown {
  try {
    return parseYaml(text);
  } catch (e) {
    throw usage(`${what} is not valid YAML: ${errorMessage(e).split('\n')[0]}`);
  }
}

/**
 * patronictl's `apply_config_changes`: each `a.b.c=value` sets that path to the YAML value (an empty
 * value, i.e. null, deletes it, and mappings left empty are dropped). Below `postgresql.parameters`
 * the rest of the path is one name, so GUCs with dots (`auto_explain.log_min_duration`) work.
 */
export function applyConfigChanges(data: Obj, pairs: readonly string[]): Obj {
  const out = structuredClone(data);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (!pair || eq < 0) throw usage(`Invalid parameter setting ${pair}`);
    const path = pair.slice(0, eq).trim().split('.');
    setPath(out, path, readYamlValue(pair.slice(eq + 1), `the value of ${pair.slice(0, eq).trim()}`), []);
  }
  return out;
}

function setPath(config: Obj, path: string[], value: unknown, prefix: string[]): void {
  const keys = prefix.length === 2 && prefix[0] === 'postgresql' && prefix[1] === 'parameters' ? [path.join('.')] : path;
  const [key, ...rest] = keys as [string, ...string[]];
  if (rest.length === 0) {
    if (value === null || value === undefined) delete config[key];
    else config[key] = value;
    return;
  }
  if (!isObj(config[key])) config[key] = {};
  const child = config[key] as Obj;
  setPath(child, rest, value, [...prefix, key]);
  if (Object.keys(child).length === 0) delete config[key];
}

/** `--pg guc=value` is `--set postgresql.parameters.guc=value`. */
export function pgPairs(pairs: readonly string[]): string[] {
  return pairs.map((p) => `postgresql.parameters.${p.trimStart()}`);
}

/** Patroni's `patch_config`: a new object with `patch` merged into `config` (null deletes, mappings merge). */
export function patchConfig(config: Obj, patch: Obj): Obj {
  const out: Obj = { ...config };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || v === undefined) delete out[k];
    else if (isObj(v) && isObj(out[k])) out[k] = patchConfig(out[k], v);
    else out[k] = v;
  }
  return out;
}

/** A YAML document that must be a mapping (an `--apply`/`--replace` file; empty reads as {}). */
export function yamlMapping(text: string, what: string): Obj {
  const v = readYamlValue(text, what);
  if (v === null || v === undefined) return {};
  if (!isObj(v)) throw usage(`${what} must be a YAML mapping of config keys`);
  return v;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (!isObj(a) || !isObj(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

/**
 * The JSON merge patch (RFC 7386) that turns `before` into `after`: removed keys are null, changed
 * mappings are patched key by key, anything else is replaced. Sent as PATCH /config, it changes only
 * what the user changed, whatever else changed in the meantime.
 */
export function mergePatch(before: Obj, after: Obj): Obj {
  const patch: Obj = {};
  for (const k of Object.keys(before)) if (!Object.hasOwn(after, k)) patch[k] = null;
  for (const [k, v] of Object.entries(after)) {
    const old = before[k];
    if (isObj(old) && isObj(v)) {
      const sub = mergePatch(old, v);
      if (Object.keys(sub).length > 0) patch[k] = sub;
    } else if (!Object.hasOwn(before, k) || !deepEqual(old, v)) {
      patch[k] = v;
    }
  }
  return patch;
}
