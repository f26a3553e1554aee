/**
 * The kinds the server knows: built-in resources (fixed) and custom resources (registered while their
 * CustomResourceDefinition exists). Pure bookkeeping; discovery documents are built from it in discovery.ts.
 */
import { isObject, type Json, type JsonObject } from './json.js';

export interface ResourceType {
  group: string;
  /** served versions, preferred (storage) first */
  versions: string[];
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  statusSubresource: boolean;
  scaleSubresource: boolean;
  /** metadata.generation is kept (bumped when anything outside metadata and a status subresource changes) */
  generation: boolean;
  /** strategic-merge-patch is accepted (built-ins only; custom resources answer 415) */
  strategicPatch: boolean;
  /** DELETE answers the deleted object rather than a Status (upstream `ReturnDeletedObject`) */
  returnDeletedObject: boolean;
  /** PUT without metadata.resourceVersion is allowed (custom resources and CRDs require one) */
  unconditionalUpdate: boolean;
  /** PUT of a missing object creates it (upstream `AllowCreateOnUpdate`) */
  createOnUpdate: boolean;
  /** field selector labels beyond metadata.name / metadata.namespace */
  fieldLabels: string[];
  /** name of the CRD that defines this type */
  crd?: string;
}

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

type Builtin = Partial<ResourceType> & Pick<ResourceType, 'plural' | 'kind'>;

function builtin(group: string, version: string, b: Builtin): ResourceType {
  return {
    group,
    versions: [version],
    singular: b.kind.toLowerCase(),
    listKind: `${b.kind}List`,
    namespaced: true,
    shortNames: [],
    categories: [],
    statusSubresource: false,
    scaleSubresource: false,
    generation: false,
    strategicPatch: true,
    returnDeletedObject: false,
    unconditionalUpdate: true,
    createOnUpdate: false,
    fieldLabels: [],
    ...b,
  };
}

export const BUILTINS: readonly ResourceType[] = [
  builtin('', 'v1', { plural: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], statusSubresource: true, fieldLabels: ['status.phase'] }),
  builtin('', 'v1', {
    plural: 'pods',
    kind: 'Pod',
    shortNames: ['po'],
    categories: ['all'],
    statusSubresource: true,
    returnDeletedObject: true,
    fieldLabels: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  }),
  builtin('', 'v1', { plural: 'services', kind: 'Service', shortNames: ['svc'], categories: ['all'], statusSubresource: true, returnDeletedObject: true, createOnUpdate: false }),
  builtin('', 'v1', { plural: 'endpoints', singular: 'endpoints', kind: 'Endpoints', shortNames: ['ep'], createOnUpdate: true }),
  builtin('', 'v1', { plural: 'configmaps', kind: 'ConfigMap', shortNames: ['cm'] }),
  builtin('', 'v1', { plural: 'secrets', kind: 'Secret', fieldLabels: ['type'] }),
  builtin('', 'v1', { plural: 'serviceaccounts', kind: 'ServiceAccount', shortNames: ['sa'], returnDeletedObject: true }),
  builtin('', 'v1', { plural: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', shortNames: ['pvc'], statusSubresource: true, returnDeletedObject: true }),
  builtin('', 'v1', {
    plural: 'events',
    kind: 'Event',
    shortNames: ['ev'],
    createOnUpdate: true,
    fieldLabels: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
  }),
  builtin('apps', 'v1', { plural: 'statefulsets', kind: 'StatefulSet', shortNames: ['sts'], categories: ['all'], statusSubresource: true, scaleSubresource: true, generation: true }),
  builtin('apps', 'v1', { plural: 'deployments', kind: 'Deployment', shortNames: ['deploy'], categories: ['all'], statusSubresource: true, scaleSubresource: true, generation: true }),
  builtin('policy', 'v1', { plural: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', shortNames: ['pdb'], statusSubresource: true, generation: true }),
  builtin('rbac.authorization.k8s.io', 'v1', { plural: 'roles', kind: 'Role' }),
  builtin('rbac.authorization.k8s.io', 'v1', { plural: 'rolebindings', kind: 'RoleBinding' }),
  builtin('rbac.authorization.k8s.io', 'v1', { plural: 'clusterroles', kind: 'ClusterRole', namespaced: false }),
  builtin('rbac.authorization.k8s.io', 'v1', { plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false }),
  builtin('coordination.k8s.io', 'v1', { plural: 'leases', kind: 'Lease' }),
  builtin('apiextensions.k8s.io', 'v1', {
    plural: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    statusSubresource: true,
    generation: true,
    unconditionalUpdate: false,
  }),
];

/** The one key a type's objects are stored under, whatever version they are read through. */
export function typeKey(t: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${t.group}/${t.plural}`;
}

export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

export interface CrdProblem {
  field: string;
  message: string;
}

/** Checks a CustomResourceDefinition the way apiextensions validation does for the parts we rely on. */
export function validateCrd(crd: JsonObject): CrdProblem[] {
  const problems: CrdProblem[] = [];
  const spec = isObject(crd.spec) ? crd.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  const name = isObject(crd.metadata) ? crd.metadata.name : undefined;
  if (typeof spec.group !== 'string' || !spec.group.includes('.')) problems.push({ field: 'spec.group', message: 'should be a domain with at least one dot' });
  if (typeof names.plural !== 'string' || !names.plural) problems.push({ field: 'spec.names.plural', message: 'Required value' });
  if (typeof names.kind !== 'string' || !names.kind) problems.push({ field: 'spec.names.kind', message: 'Required value' });
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') problems.push({ field: 'spec.scope', message: 'Unsupported value: must be Namespaced or Cluster' });
  if (typeof names.plural === 'string' && typeof spec.group === 'string' && name !== `${names.plural}.${spec.group}`) {
    problems.push({ field: 'metadata.name', message: `must be spec.names.plural+"."+spec.group` });
  }
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObject) : [];
  if (versions.length === 0) problems.push({ field: 'spec.versions', message: 'must have exactly one version marked as storage version' });
  else if (versions.filter((v) => v.storage === true).length !== 1) problems.push({ field: 'spec.versions', message: 'must have exactly one version marked as storage version' });
  return problems;
}

/** The type a (valid) CRD defines, or undefined when no version is served. */
export function typeFromCrd(crd: JsonObject): ResourceType | undefined {
  const spec = crd.spec as JsonObject;
  const names = spec.names as JsonObject;
  const versions = (spec.versions as Json[]).filter(isObject).filter((v) => v.served !== false);
  if (versions.length === 0) return undefined;
  const storage = versions.find((v) => v.storage === true) ?? versions[0]!;
  const ordered = [storage, ...versions.filter((v) => v !== storage)];
  const subresources = isObject(storage.subresources) ? storage.subresources : {};
  const kind = String(names.kind);
  const strs = (v: Json | undefined): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return {
    group: String(spec.group),
    versions: ordered.map((v) => String(v.name)),
    plural: String(names.plural),
    singular: typeof names.singular === 'string' && names.singular ? names.singular : kind.toLowerCase(),
    kind,
    listKind: typeof names.listKind === 'string' && names.listKind ? names.listKind : `${kind}List`,
    namespaced: spec.scope === 'Namespaced',
    shortNames: strs(names.shortNames),
    categories: strs(names.categories),
    statusSubresource: isObject(subresources.status),
    scaleSubresource: false,
    generation: true,
    strategicPatch: false,
    returnDeletedObject: true,
    unconditionalUpdate: false,
    createOnUpdate: false,
    fieldLabels: [],
    crd: String((crd.metadata as JsonObject).name),
  };
}

/** Built-in types plus those of the CRDs that exist now. */
export class Registry {
  private readonly custom = new Map<string, ResourceType>();

  all(): ResourceType[] {
    return [...BUILTINS, ...this.custom.values()];
  }

  /** The type served at /apis/<group>/<version>/<plural> (core group: ''). */
  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.all().find((t) => t.group === group && t.plural === plural && t.versions.includes(version));
  }

  byKey(key: string): ResourceType | undefined {
    return this.all().find((t) => typeKey(t) === key);
  }

  byCrd(crdName: string): ResourceType | undefined {
    return this.custom.get(crdName);
  }

  /** (Re)register the type of a CRD; returns it, or undefined if the CRD serves nothing. */
  registerCrd(crd: JsonObject): ResourceType | undefined {
    const name = String((crd.metadata as JsonObject).name);
    const t = typeFromCrd(crd);
    if (t) this.custom.set(name, t);
    else this.custom.delete(name);
    return t;
  }

  unregisterCrd(crdName: string): void {
    this.custom.delete(crdName);
  }

  /** Groups in discovery order: core first, then built-in groups, then custom groups, each with its versions. */
  groups(): { name: string; versions: string[] }[] {
    const out: { name: string; versions: string[] }[] = [];
    for (const t of this.all()) {
      let g = out.find((x) => x.name === t.group);
      if (!g) out.push((g = { name: t.group, versions: [] }));
      for (const v of t.versions) if (!g.versions.includes(v)) g.versions.push(v);
    }
    return out;
  }
}
