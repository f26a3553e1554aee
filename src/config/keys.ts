/**
 * Which keys of a config object the schema does not know. The schema itself is the list of known
 * keys, so the two cannot drift apart: an object schema names its keys; an object with a catch-all
 * (tags, kubernetes) and any non-object schema (records, lists, scalars) accept whatever is below.
 */
import type * as z from 'zod/mini';
import { isObj, type Obj } from './values.js';

type Schema = z.core.$ZodType;

/** Full dotted paths of keys in `value` that `schema` does not describe, in document order. */
export function unknownKeyPaths(value: unknown, schema: Schema, prefix = ''): string[] {
  const shape = objectShape(schema);
  if (!shape || !isObj(value)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value as Obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const child = shape.keys[k];
    if (child) out.push(...unknownKeyPaths(v, child, path));
    else if (!shape.open) out.push(path);
  }
  return out;
}

/** The keys of an object schema, seen through optional/default/transform wrappers; null otherwise. */
function objectShape(schema: Schema): { keys: Record<string, Schema>; open: boolean } | null {
  const def = schema._zod.def as z.core.$ZodTypeDef & {
    innerType?: Schema;
    in?: Schema;
    shape?: Record<string, Schema>;
    catchall?: Schema;
  };
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
      return def.innerType ? objectShape(def.innerType) : null;
    case 'pipe':
      return def.in ? objectShape(def.in) : null;
    case 'object':
      return { keys: def.shape ?? {}, open: def.catchall !== undefined && def.catchall._zod.def.type !== 'never' };
    default:
      return null;
  }
}
