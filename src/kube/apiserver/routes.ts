/**
 * URL → what is asked for. Pure; the HTTP layer dispatches on the result.
 * Resource paths: /api/v1/... (core) and /apis/<group>/<version>/..., then
 * `[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]`; the deprecated `/watch/` prefix is accepted.
 */
import type { Registry, ResourceType } from './registry.js';

export type Route =
  | { kind: 'version' }
  | { kind: 'health' }
  | { kind: 'api' }
  | { kind: 'apis' }
  | { kind: 'group'; group: string }
  | { kind: 'groupVersion'; group: string; version: string }
  | { kind: 'admin'; what: string }
  | {
      kind: 'resource';
      type: ResourceType;
      version: string;
      /** undefined: all namespaces (namespaced type listed at the cluster path); '' for cluster-scoped types */
      namespace: string | undefined;
      name?: string;
      subresource?: string;
      /** the deprecated /watch/ path form */
      watchPath: boolean;
    }
  | { kind: 'notFound' };

const NS_SUBRESOURCES = new Set(['status', 'finalize']);

export function parseRoute(pathname: string, registry: Registry): Route {
  const segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  const [a, b, c] = segs;
  if (segs.length === 1 && a === 'version') return { kind: 'version' };
  if (segs.length === 1 && (a === 'healthz' || a === 'livez' || a === 'readyz')) return { kind: 'health' };
  if (a === '_pgwarden' && segs.length === 2) return { kind: 'admin', what: b! };
  if (a === 'api') {
    if (segs.length === 1) return { kind: 'api' };
    if (b !== 'v1') return { kind: 'notFound' };
    if (segs.length === 2) return { kind: 'groupVersion', group: '', version: 'v1' };
    return resourceRoute(registry, '', 'v1', segs.slice(2));
  }
  if (a === 'apis') {
    if (segs.length === 1) return { kind: 'apis' };
    if (segs.length === 2) return { kind: 'group', group: b! };
    if (segs.length === 3) return { kind: 'groupVersion', group: b!, version: c! };
    return resourceRoute(registry, b!, c!, segs.slice(3));
  }
  return { kind: 'notFound' };
}

function resourceRoute(registry: Registry, group: string, version: string, rest: string[]): Route {
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && NS_SUBRESOURCES.has(rest[2]!))) {
    namespace = rest[1]!;
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  if (!plural || extra.length) return { kind: 'notFound' };
  const type = registry.find(group, version, plural);
  if (!type) return { kind: 'notFound' };
  if (namespace !== undefined && !type.namespaced) return { kind: 'notFound' };
  if (!type.namespaced) namespace = '';
  else if (namespace === undefined && name !== undefined) return { kind: 'notFound' };
  if (subresource !== undefined) {
    const ok = (subresource === 'status' && type.statusSubresource) || (subresource === 'scale' && type.scaleSubresource) || (subresource === 'finalize' && type.kind === 'Namespace');
    if (!ok) return { kind: 'notFound' };
  }
  const r: Route = { kind: 'resource', type, version, namespace, watchPath };
  if (name !== undefined) r.name = name;
  if (subresource !== undefined) r.subresource = subresource;
  return r;
}
