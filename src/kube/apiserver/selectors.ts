/**
 * Label and field selectors with apiserver's grammar (k8s.io/apimachinery/pkg/labels/selector.go,
 * fields/selector.go). Pure: parse once per request, then `matches` per object.
 * Label operators: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>n`, `k<n`; comma is AND.
 * `!=` and `notin` also match objects without the key, as upstream.
 */
import { errors } from './errors.js';
import { isObject, type Json, type JsonObject } from './json.js';

export type LabelRequirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'gt' | 'lt'; key: string; value: number };

export type LabelSelector = readonly LabelRequirement[];

const KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function parseError(sel: string, why: string): Error {
  return errors.badRequest(`unable to parse requirement: ${why} (in selector "${sel}")`);
}

/** Tokens: identifiers/values, operators and punctuation; whitespace separates. */
function tokenize(sel: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < sel.length) {
    const c = sel[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      out.push(c);
      i++;
    } else if (sel.startsWith('==', i) || sel.startsWith('!=', i)) {
      out.push(sel.slice(i, i + 2));
      i += 2;
    } else if (c === '=' || c === '!' || c === '<' || c === '>') {
      out.push(c);
      i++;
    } else {
      let j = i;
      while (j < sel.length && !' \t(),=!<>'.includes(sel[j]!)) j++;
      out.push(sel.slice(i, j));
      i = j;
    }
  }
  return out;
}

export function parseLabelSelector(sel: string | null | undefined): LabelSelector {
  if (!sel || !sel.trim()) return [];
  const t = tokenize(sel);
  const reqs: LabelRequirement[] = [];
  let p = 0;
  const peek = (): string | undefined => t[p];
  const next = (): string => {
    const x = t[p++];
    if (x === undefined) throw parseError(sel, 'unexpected end of selector');
    return x;
  };
  const checkKey = (k: string): string => {
    if (!KEY_RE.test(k) || k.length > 317) throw parseError(sel, `invalid label key "${k}"`);
    return k;
  };
  const checkValue = (v: string): string => {
    if (!VALUE_RE.test(v) || v.length > 63) throw parseError(sel, `invalid label value: "${v}"`);
    return v;
  };
  for (;;) {
    if (peek() === '!') {
      p++;
      reqs.push({ op: 'notexists', key: checkKey(next()) });
    } else {
      const key = checkKey(next());
      const op = peek();
      if (op === undefined || op === ',') {
        reqs.push({ op: 'exists', key });
      } else if (op === '=' || op === '==' || op === '!=') {
        p++;
        const v = peek() === undefined || peek() === ',' ? '' : next();
        reqs.push({ op: op === '!=' ? 'neq' : 'eq', key, value: checkValue(v) });
      } else if (op === 'in' || op === 'notin') {
        p++;
        if (next() !== '(') throw parseError(sel, `expected "(" after ${op}`);
        const values: string[] = [];
        for (;;) {
          const x = next();
          if (x === ')') break;
          if (x === ',') continue;
          values.push(checkValue(x));
        }
        reqs.push({ op, key, values });
      } else if (op === '<' || op === '>') {
        p++;
        const v = next();
        const n = Number(v);
        if (!/^-?\d+$/.test(v)) throw parseError(sel, `for 'Gt', 'Lt' operators, the value must be an integer`);
        reqs.push({ op: op === '>' ? 'gt' : 'lt', key, value: n });
      } else {
        throw parseError(sel, `found '${op}', expected: '=', '!=', '==', 'in', notin'`);
      }
    }
    const sep = peek();
    if (sep === undefined) break;
    if (sep !== ',') throw parseError(sel, `found '${sep}', expected: ',' or 'end of string'`);
    p++;
  }
  return reqs;
}

export function matchesLabels(sel: LabelSelector, labels: Record<string, string>): boolean {
  return sel.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case 'eq':
        return has && v === r.value;
      case 'neq':
        return !has || v !== r.value;
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'gt':
      case 'lt': {
        if (!has || !/^-?\d+$/.test(v!)) return false;
        return r.op === 'gt' ? Number(v) > r.value : Number(v) < r.value;
      }
    }
  });
}

export interface FieldRequirement {
  field: string;
  op: 'eq' | 'neq';
  value: string;
}

export type FieldSelector = readonly FieldRequirement[];

/** Split on unescaped `sep` (field selector values may escape `\,`, `\=`, `\\`). */
function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1]!;
      i++;
    } else if (c === sep) {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

const unescape = (s: string): string => s.replace(/\\(.)/g, '$1');

/**
 * `supported` lists the field labels this resource accepts besides `metadata.name`/`metadata.namespace`;
 * any other label is a 400, as on a real server.
 */
export function parseFieldSelector(sel: string | null | undefined, supported: readonly string[] = []): FieldSelector {
  if (!sel || !sel.trim()) return [];
  return splitEscaped(sel, ',').map((part) => {
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/s.exec(part.trim());
    if (!m) throw errors.badRequest(`invalid selector: '${sel}'; can't understand '${part}'`);
    const field = m[1]!.trim();
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && !supported.includes(field)) {
      throw errors.badRequest(`field label not supported: ${field}`);
    }
    return { field, op: m[2] === '!=' ? 'neq' : 'eq', value: unescape(m[3]!) };
  });
}

function fieldValue(o: JsonObject, path: string): string {
  let cur: Json | undefined = o;
  for (const part of path.split('.')) cur = isObject(cur) ? cur[part] : undefined;
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : String(cur);
}

export function matchesFields(sel: FieldSelector, o: JsonObject): boolean {
  return sel.every((r) => (fieldValue(o, r.field) === r.value) === (r.op === 'eq'));
}
