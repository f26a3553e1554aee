/**
 * JSON merge patch (RFC 7386) and JSON patch (RFC 6902, including `test`). Pure functions over JSON
 * values; they never mutate their inputs. Failures throw ApiError with the status apiserver uses
 * (400 for a malformed patch document, 422 when a well-formed patch cannot be applied).
 */
import { ApiError, errors } from './errors.js';
import { clone, deepEqual, isObject, type Json } from './json.js';

export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: { [k: string]: Json } = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: Json;
}

const unprocessable = (message: string): ApiError => new ApiError(422, 'Invalid', message);

function parsePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw unprocessable(`invalid JSON pointer "${ptr}"`);
  return ptr
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(arr: Json[], tok: string, forAdd: boolean): number {
  if (tok === '-' && forAdd) return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(tok)) throw unprocessable(`invalid array index "${tok}"`);
  const i = Number(tok);
  if (i > arr.length || (!forAdd && i === arr.length)) throw unprocessable(`array index ${i} out of bounds`);
  return i;
}

/** The parent container of `path` and the last token; throws when an intermediate step is missing. */
function locate(doc: Json, path: string[]): { parent: Json; last: string } {
  let cur = doc;
  for (const tok of path.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, tok, false)]!;
    else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, tok)) cur = cur[tok]!;
    else throw unprocessable(`doc is missing path: "/${path.join('/')}": missing value`);
  }
  return { parent: cur, last: path[path.length - 1]! };
}

function getAt(doc: Json, ptr: string): Json {
  const path = parsePointer(ptr);
  if (path.length === 0) return doc;
  const { parent, last } = locate(doc, path);
  if (Array.isArray(parent)) return parent[arrayIndex(parent, last, false)]!;
  if (isObject(parent) && Object.prototype.hasOwnProperty.call(parent, last)) return parent[last]!;
  throw unprocessable(`doc is missing path: "${ptr}": missing value`);
}

function addAt(doc: Json, ptr: string, value: Json): Json {
  const path = parsePointer(ptr);
  if (path.length === 0) return value;
  const { parent, last } = locate(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true), 0, value);
  else if (isObject(parent)) parent[last] = value;
  else throw unprocessable(`doc is missing path: "${ptr}": missing value`);
  return doc;
}

function removeAt(doc: Json, ptr: string): Json {
  const path = parsePointer(ptr);
  if (path.length === 0) throw unprocessable('cannot remove the whole document');
  const { parent, last } = locate(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false), 1);
  else if (isObject(parent) && Object.prototype.hasOwnProperty.call(parent, last)) delete parent[last];
  else throw unprocessable(`Unable to remove nonexistent key: ${last}: missing value`);
  return doc;
}

export function parseJsonPatch(body: Json): JsonPatchOp[] {
  if (!Array.isArray(body)) throw errors.badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  return body.map((x) => {
    if (!isObject(x) || typeof x.op !== 'string' || typeof x.path !== 'string') throw errors.badRequest(`invalid JSON patch operation: ${JSON.stringify(x)}`);
    if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(x.op)) throw errors.badRequest(`Unexpected kind: ${x.op}`);
    const op: JsonPatchOp = { op: x.op as JsonPatchOp['op'], path: x.path };
    if (typeof x.from === 'string') op.from = x.from;
    if ('value' in x) op.value = x.value!;
    return op;
  });
}

export function jsonPatch(target: Json, ops: readonly JsonPatchOp[]): Json {
  let doc = clone(target);
  for (const o of ops) {
    switch (o.op) {
      case 'add':
        doc = addAt(doc, o.path, clone(o.value ?? null));
        break;
      case 'remove':
        doc = removeAt(doc, o.path);
        break;
      case 'replace':
        getAt(doc, o.path);
        doc = addAt(removeAt(doc, o.path), o.path, clone(o.value ?? null));
        break;
      case 'move': {
        const v = getAt(doc, o.from ?? '');
        doc = addAt(removeAt(doc, o.from ?? ''), o.path, v);
        break;
      }
      case 'copy':
        doc = addAt(doc, o.path, clone(getAt(doc, o.from ?? '')));
        break;
      case 'test':
        if (!deepEqual(getAt(doc, o.path), o.value ?? null)) throw unprocessable(`testing value ${o.path} failed: test failed`);
        break;
    }
  }
  return doc;
}
