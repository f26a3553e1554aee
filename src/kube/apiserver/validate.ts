/**
 * The validation a real apiserver applies that is cheap to mirror and catches operator bugs early:
 * object names, label syntax, annotation size, and the immutability rules of Pods and StatefulSets.
 * Each check returns causes; the store turns them into one 422 Invalid.
 */
import type { StatusCause } from './errors.js';
import { deepEqual, isObject, stringMap, type Json, type JsonObject } from './json.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const cause = (field: string, message: string): StatusCause => ({ reason: 'FieldValueInvalid', message, field });

export function validateName(kind: string, name: string): StatusCause[] {
  const bad = (msg: string): StatusCause[] => [cause('metadata.name', `Invalid value: "${name}": ${msg}`)];
  switch (kind) {
    case 'Namespace':
      return DNS_LABEL.test(name) && name.length <= 63 ? [] : bad("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character");
    case 'Service':
      return DNS1035_LABEL.test(name) && name.length <= 63 ? [] : bad("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character");
    case 'Role':
    case 'RoleBinding':
    case 'ClusterRole':
    case 'ClusterRoleBinding':
      return name === '.' || name === '..' || /[/%]/.test(name) ? bad('may not contain "/" or "%" and may not be "." or ".."') : [];
    default:
      return DNS_SUBDOMAIN.test(name) && name.length <= 253 ? [] : bad("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
  }
}

function validQualifiedName(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1]!;
  if (parts.length === 2 && (!DNS_SUBDOMAIN.test(parts[0]!) || parts[0]!.length > 253)) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

export function validateMetadata(meta: JsonObject): StatusCause[] {
  const out: StatusCause[] = [];
  for (const [field, v] of [
    ['labels', meta.labels],
    ['annotations', meta.annotations],
  ] as const) {
    if (v === undefined || v === null) continue;
    if (!isObject(v)) {
      out.push(cause(`metadata.${field}`, 'Invalid value: must be a map of strings'));
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string') out.push(cause(`metadata.${field}`, `Invalid value: "${k}": must be a string`));
      if (!validQualifiedName(k)) out.push(cause(`metadata.${field}`, `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'`));
      if (field === 'labels' && typeof x === 'string' && (x.length > 63 || !LABEL_VALUE.test(x))) {
        out.push(cause('metadata.labels', `Invalid value: "${x}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`));
      }
    }
  }
  const ann = stringMap(meta.annotations);
  const size = Object.entries(ann).reduce((n, [k, v]) => n + k.length + v.length, 0);
  if (size > 256 * 1024) out.push(cause('metadata.annotations', 'Too long: must have at most 262144 bytes'));
  return out;
}

/** Pod spec fields that may change after creation (upstream ValidatePodUpdate). */
function mutablePodSpec(spec: Json | undefined): Json {
  if (!isObject(spec)) return null;
  const s: JsonObject = { ...spec };
  for (const k of ['activeDeadlineSeconds', 'tolerations', 'terminationGracePeriodSeconds', 'schedulingGates']) delete s[k];
  const noImage = (cs: Json | undefined): Json => (Array.isArray(cs) ? cs.map((c) => (isObject(c) ? { ...c, image: null } : c)) : null);
  s.containers = noImage(s.containers);
  s.initContainers = noImage(s.initContainers);
  return s;
}

/** StatefulSet spec fields that may change (upstream ValidateStatefulSetUpdate). */
function fixedStatefulSetSpec(spec: Json | undefined): Json {
  if (!isObject(spec)) return null;
  const s: JsonObject = { ...spec };
  for (const k of ['replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds', 'revisionHistoryLimit']) delete s[k];
  return s;
}

export function validateUpdate(kind: string, before: JsonObject, after: JsonObject): StatusCause[] {
  if (kind === 'Pod' && !deepEqual(mutablePodSpec(before.spec), mutablePodSpec(after.spec))) {
    return [{ reason: 'FieldValueForbidden', field: 'spec', message: 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)' }];
  }
  if (kind === 'StatefulSet' && !deepEqual(fixedStatefulSetSpec(before.spec), fixedStatefulSetSpec(after.spec))) {
    return [{ reason: 'FieldValueForbidden', field: 'spec', message: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden" }];
  }
  return [];
}
