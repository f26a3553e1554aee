/**
 * Strategic merge patch for built-in kinds (k8s.io/apimachinery/pkg/util/strategicpatch). A JSON merge
 * patch, except that lists declared with a `patchMergeKey` in the Go types merge element by element,
 * `patchStrategy:"merge"` primitive lists are unions, and the directives kubectl's client-side apply
 * sends are honoured: `$patch: replace|delete|merge`, `$setElementOrder/<list>`, `$retainKeys`,
 * `$deleteFromPrimitiveList/<list>`. Lists without a strategy (Endpoints `subsets`, `tolerations`,
 * `args`…) are replaced whole, exactly as upstream. Pure; inputs are never mutated.
 */
import { ApiError } from './errors.js';
import { clone, deepEqual, isObject, type Json, type JsonObject } from './json.js';

/** Where a value sits in its kind's Go type: child fields, and for lists how they merge. */
export interface SmpSchema {
  fields?: Record<string, SmpSchema>;
  /** list of objects merged by this key (`patchMergeKey`) */
  mergeKey?: string;
  /** list of primitives merged as a set (`patchStrategy:"merge"` on []string) */
  setMerge?: boolean;
  /** schema of each element of a keyed list */
  item?: SmpSchema;
}

const keyed = (mergeKey: string, item?: SmpSchema): SmpSchema => (item ? { mergeKey, item } : { mergeKey });

const objectMeta: SmpSchema = { fields: { finalizers: { setMerge: true }, ownerReferences: keyed('uid') } };

const container: SmpSchema = {
  fields: {
    env: keyed('name'),
    ports: keyed('containerPort'),
    volumeMounts: keyed('mountPath'),
    volumeDevices: keyed('devicePath'),
  },
};

const podSpec: SmpSchema = {
  fields: {
    containers: keyed('name', container),
    initContainers: keyed('name', container),
    ephemeralContainers: keyed('name', container),
    volumes: keyed('name'),
    imagePullSecrets: keyed('name'),
    hostAliases: keyed('ip'),
    topologySpreadConstraints: keyed('topologyKey'),
    resourceClaims: keyed('name'),
    schedulingGates: keyed('name'),
  },
};

const podTemplateSpec: SmpSchema = { fields: { metadata: objectMeta, spec: podSpec } };
const conditions = keyed('type');

const workload: SmpSchema = { fields: { metadata: objectMeta, spec: { fields: { template: podTemplateSpec } }, status: { fields: { conditions } } } };

/** Schemas by kind; every other built-in kind merges its metadata lists by their keys and replaces other lists. */
const byKind: Record<string, SmpSchema> = {
  Pod: {
    fields: {
      metadata: objectMeta,
      spec: podSpec,
      status: { fields: { conditions, podIPs: keyed('ip'), hostIPs: keyed('ip') } },
    },
  },
  PodTemplate: { fields: { metadata: objectMeta, template: podTemplateSpec } },
  StatefulSet: workload,
  Deployment: workload,
  DaemonSet: workload,
  ReplicaSet: workload,
  Job: workload,
  Service: { fields: { metadata: objectMeta, spec: { fields: { ports: keyed('port') } } } },
  ServiceAccount: { fields: { metadata: objectMeta, secrets: keyed('name'), imagePullSecrets: keyed('name') } },
  PersistentVolumeClaim: { fields: { metadata: objectMeta, status: { fields: { conditions } } } },
  PodDisruptionBudget: { fields: { metadata: objectMeta, status: { fields: { conditions } } } },
  Namespace: { fields: { metadata: objectMeta, status: { fields: { conditions } } } },
};

export function smpSchemaFor(kind: string): SmpSchema {
  return byKind[kind] ?? { fields: { metadata: objectMeta } };
}

const invalid = (message: string): ApiError => new ApiError(422, 'Invalid', message);

const SET_ORDER = '$setElementOrder/';
const DELETE_FROM = '$deleteFromPrimitiveList/';

/** A patch value with its directives removed, for places where it is taken literally. */
function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((x) => !(isObject(x) && x.$patch === 'replace' && Object.keys(x).length === 1)).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith(SET_ORDER) || k.startsWith(DELETE_FROM)) continue;
    if (x === null) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

/** Apply `patch` to `original`; `undefined` means the value was deleted (`$patch: delete`). */
export function strategicMerge(original: Json | undefined, patch: Json, schema: SmpSchema | undefined): Json | undefined {
  if (!isObject(patch)) return clone(patch);
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return stripDirectives(patch);
  if (directive !== undefined && directive !== 'merge') throw invalid(`Unknown patch type: ${String(directive)}`);
  const result: JsonObject = isObject(original) ? clone(original) : {};
  const orders: [string, Json[]][] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys') continue;
    if (key.startsWith(SET_ORDER)) {
      if (Array.isArray(value)) orders.push([key.slice(SET_ORDER.length), value]);
      continue;
    }
    if (key.startsWith(DELETE_FROM)) {
      const field = key.slice(DELETE_FROM.length);
      const cur = result[field];
      if (Array.isArray(cur) && Array.isArray(value)) result[field] = cur.filter((x) => !value.some((d) => deepEqual(d, x)));
      continue;
    }
    if (value === null) {
      delete result[key];
      continue;
    }
    const fieldSchema = schema?.fields?.[key];
    const merged = Array.isArray(value) ? mergeList(result[key], value, fieldSchema) : strategicMerge(result[key], value, fieldSchema);
    if (merged === undefined) delete result[key];
    else result[key] = merged;
  }
  for (const [field, order] of orders) {
    const cur = result[field];
    if (Array.isArray(cur)) result[field] = applyOrder(cur, order, schema?.fields?.[field]?.mergeKey, isObject(original) ? original[field] : undefined);
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys.filter((k): k is string => typeof k === 'string'));
    for (const k of Object.keys(result)) if (!keep.has(k)) delete result[k];
  }
  return result;
}

function mergeList(original: Json | undefined, patch: Json[], schema: SmpSchema | undefined): Json[] {
  const orig = Array.isArray(original) ? original : [];
  if (schema?.mergeKey) {
    const key = schema.mergeKey;
    if (patch.some((x) => isObject(x) && x.$patch === 'replace')) return stripDirectives(patch) as Json[];
    const result = clone(orig);
    for (const elem of patch) {
      if (!isObject(elem)) {
        result.push(clone(elem));
        continue;
      }
      if (!(key in elem)) throw invalid(`map: ${JSON.stringify(elem)} does not contain declared merge key: ${key}`);
      const at = result.findIndex((x) => isObject(x) && deepEqual(x[key], elem[key]));
      if (elem.$patch === 'delete') {
        if (at >= 0) result.splice(at, 1);
        continue;
      }
      const merged = strategicMerge(at >= 0 ? result[at] : undefined, elem, schema.item);
      if (merged === undefined) {
        if (at >= 0) result.splice(at, 1);
      } else if (at >= 0) result[at] = merged;
      else result.push(merged);
    }
    return result;
  }
  if (schema?.setMerge) {
    const result = clone(orig);
    for (const v of patch) if (!result.some((x) => deepEqual(x, v))) result.push(clone(v));
    return result;
  }
  return stripDirectives(patch) as Json[];
}

/**
 * `$setElementOrder`: the patch's items in the order given, with server-only items woven in by their
 * position in the live list (upstream `normalizeElementOrder` + `mergeSortedSlice`).
 */
function applyOrder(list: Json[], order: Json[], mergeKey: string | undefined, serverList: Json | undefined): Json[] {
  const keyOf = (x: Json): Json | undefined => (mergeKey ? (isObject(x) ? x[mergeKey] : undefined) : x);
  const indexIn = (arr: Json[], x: Json): number => arr.findIndex((y) => deepEqual(mergeKey && isObject(y) ? y[mergeKey] : y, keyOf(x)));
  const orderKeys = order.map((o) => (mergeKey && isObject(o) ? o[mergeKey] : o));
  const inOrder = (x: Json): number => orderKeys.findIndex((k) => deepEqual(k, keyOf(x)));
  const patchItems = list.filter((x) => inOrder(x) >= 0).sort((a, b) => inOrder(a) - inOrder(b));
  const serverOrder = Array.isArray(serverList) ? serverList : [];
  const serverOnly = list.filter((x) => inOrder(x) < 0);
  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < patchItems.length) {
    if (i >= serverOnly.length) out.push(patchItems[j++]!);
    else if (j >= patchItems.length) out.push(serverOnly[i++]!);
    else {
      const li = indexIn(serverOrder, serverOnly[i]!);
      const ri = indexIn(serverOrder, patchItems[j]!);
      if (li >= 0 && ri >= 0 && li < ri) out.push(serverOnly[i++]!);
      else out.push(patchItems[j++]!);
    }
  }
  return out;
}
