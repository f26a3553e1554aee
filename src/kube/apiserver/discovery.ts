/**
 * Legacy discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>[/<v>]`, `/version`). kubectl asks
 * for aggregated discovery (apidiscovery.k8s.io/v2) first; answering these plain documents makes
 * client-go fall back to per-group discovery, which is all it needs (kube-api-subset.md §3).
 */
import type { JsonObject } from './json.js';
import { apiVersionOf, VERBS, type Registry, type ResourceType } from './registry.js';

/** Kubernetes version priority: GA > beta > alpha, higher numbers first (apimachinery `CompareKubeAwareVersionStrings`). */
export function compareKubeVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number] | undefined => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return undefined;
    const stage = m[2] === 'alpha' ? 0 : m[2] === 'beta' ? 1 : 2;
    return [stage, Number(m[1]), Number(m[3] ?? 0)];
  };
  const pa = parse(a);
  const pb = parse(b);
  if (!pa && !pb) return a < b ? -1 : a > b ? 1 : 0;
  if (!pa) return 1;
  if (!pb) return -1;
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pb[i]! - pa[i]!;
  return 0;
}

export function versionDoc(): JsonObject {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.4-pgwarden',
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: 'go1.23.0',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersionsDoc(serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(name: string, versions: string[]): JsonObject {
  const sorted = [...versions].sort(compareKubeVersions);
  const gv = (v: string): JsonObject => ({ groupVersion: `${name}/${v}`, version: v });
  return { name, versions: sorted.map(gv), preferredVersion: gv(sorted[0]!) };
}

export function apiGroupListDoc(registry: Registry): JsonObject {
  const groups = registry.groups().filter((g) => g.name !== '');
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((g) => groupDoc(g.name, g.versions)) };
}

export function apiGroupDoc(registry: Registry, group: string): JsonObject | undefined {
  const g = registry.groups().find((x) => x.name === group && group !== '');
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g.name, g.versions) } : undefined;
}

function resourceEntries(t: ResourceType): JsonObject[] {
  const main: JsonObject = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: [...VERBS] };
  if (t.shortNames.length) main.shortNames = [...t.shortNames];
  if (t.categories.length) main.categories = [...t.categories];
  const out = [main];
  if (t.statusSubresource) out.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
  if (t.scaleSubresource) {
    out.push({ name: `${t.plural}/scale`, singularName: '', namespaced: t.namespaced, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
  }
  return out;
}

/** APIResourceList for one group version, or undefined when nothing is served there. */
export function apiResourceListDoc(registry: Registry, group: string, version: string): JsonObject | undefined {
  const types = registry.all().filter((t) => t.group === group && t.versions.includes(version));
  if (types.length === 0) return undefined;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(group, version), resources: types.flatMap(resourceEntries) };
}
