/**
 * The HTTP face of the server: authentication, fault hooks, transcript, and dispatch of each route
 * to the store, patch functions, discovery documents and watch hub. One error path: anything thrown
 * becomes a Kubernetes `Status` (ApiError) or a 500 InternalError.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { apiGroupDoc, apiGroupListDoc, apiResourceListDoc, apiVersionsDoc, versionDoc } from './discovery.js';
import { ApiError, errors, type Target } from './errors.js';
import type { Faults } from './faults.js';
import { clone, isObject, metaOf, type Json, type JsonObject } from './json.js';
import { jsonPatch, mergePatch, parseJsonPatch } from './patch.js';
import { apiVersionOf, type Registry, type ResourceType } from './registry.js';
import { parseRoute, type Route } from './routes.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { DeleteOptions, Filter, Store } from './store.js';
import { smpSchemaFor, strategicMerge } from './strategic.js';
import type { Transcript } from './transcript.js';
import { parseResourceVersion, type WatchHub } from './watch.js';

export interface ServerCore {
  registry: Registry;
  store: Store;
  hub: WatchHub;
  faults: Faults;
  transcript?: Transcript;
  token: string;
  /** host:port clients use, for /api's serverAddressByClientCIDRs */
  serverAddress: () => string;
  /** unexpected (non-API) errors, for the operator of the server */
  onInternalError?: (e: unknown) => void;
}

type ResourceRoute = Extract<Route, { kind: 'resource' }>;

interface Ctx {
  id: number;
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  method: string;
  raw: string;
}

const MAX_BODY = 3 * 1024 * 1024;
let nextId = 0;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(errors.tooLarge());
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** apiserver's bool query parsing: absent, empty, "0" and "false" are false; anything else is true. */
export function queryBool(v: string | null): boolean {
  if (v === null || v === '') return false;
  const l = v.toLowerCase();
  return l !== '0' && l !== 'false';
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function authOf(req: IncomingMessage): 'bearer' | 'none' | 'other' {
  const h = req.headers.authorization;
  if (!h) return 'none';
  return /^bearer /i.test(h) ? 'bearer' : 'other';
}

function tokenOk(req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^bearer\s+(.+)$/i.exec(h);
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(core: ServerCore, ctx: Ctx, status: number, body: Json, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  if (!ctx.res.headersSent) {
    ctx.res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': Buffer.byteLength(text), ...headers });
  }
  ctx.res.end(text);
  const rv = isObject(body) && isObject(body.metadata) && typeof body.metadata.resourceVersion === 'string' ? body.metadata.resourceVersion : undefined;
  core.transcript?.add({ kind: 'response', id: ctx.id, status, watch: false, ...(rv ? { resourceVersion: rv } : {}), body: core.transcript.body(text) });
}

function sendError(core: ServerCore, ctx: Ctx, e: unknown): void {
  if (!(e instanceof ApiError)) {
    core.onInternalError?.(e);
    e = errors.internal(e instanceof Error ? e.message : String(e));
  }
  const err = e as ApiError;
  const headers: Record<string, string> = {};
  if (err.details?.retryAfterSeconds !== undefined) headers['Retry-After'] = String(err.details.retryAfterSeconds);
  send(core, ctx, err.code, err.toStatus(), headers);
}

/** Entry point for node:http / node:https `request` events. */
export function handleRequest(core: ServerCore, req: IncomingMessage, res: ServerResponse): void {
  const ctx: Ctx = { id: ++nextId, req, res, url: new URL(req.url ?? '/', 'http://localhost'), method: (req.method ?? 'GET').toUpperCase(), raw: '' };
  serve(core, ctx).catch((e: unknown) => {
    try {
      sendError(core, ctx, e);
    } catch (e2) {
      core.onInternalError?.(e2);
      res.destroy();
    }
  });
}

async function serve(core: ServerCore, ctx: Ctx): Promise<void> {
  const { req, url, method } = ctx;
  const contentType = req.headers['content-type'];
  const ua = req.headers['user-agent'];
  let bodyError: unknown;
  try {
    ctx.raw = await readBody(req);
  } catch (e) {
    bodyError = e;
  }
  core.transcript?.add({
    kind: 'request',
    id: ctx.id,
    method,
    url: url.pathname + url.search,
    ...(contentType ? { contentType } : {}),
    auth: authOf(req),
    ...(ua ? { userAgent: ua } : {}),
    ...(ctx.raw ? { body: core.transcript.body(ctx.raw) } : {}),
  });
  if (bodyError) throw bodyError;
  const route = parseRoute(url.pathname, core.registry);
  const open = route.kind === 'version' || route.kind === 'health';
  if (!open && !tokenOk(req, core.token)) throw errors.unauthorized();
  const watching = route.kind === 'resource' && method === 'GET' && route.name === undefined && (route.watchPath || queryBool(url.searchParams.get('watch')));
  if (route.kind !== 'admin') {
    const d = core.faults.take(method, url.pathname + url.search, watching);
    if (d.delayMs > 0) await new Promise((r) => setTimeout(r, d.delayMs));
    if (d.fail) throw injected(route, d.fail.code, d.fail.retryAfterSeconds);
  }
  switch (route.kind) {
    case 'version':
      return send(core, ctx, 200, versionDoc());
    case 'health':
      ctx.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      ctx.res.end('ok');
      core.transcript?.add({ kind: 'response', id: ctx.id, status: 200, watch: false });
      return;
    case 'api':
      return send(core, ctx, 200, apiVersionsDoc(core.serverAddress()));
    case 'apis':
      return send(core, ctx, 200, apiGroupListDoc(core.registry));
    case 'group': {
      const doc = apiGroupDoc(core.registry, route.group);
      if (!doc) throw errors.pathNotFound();
      return send(core, ctx, 200, doc);
    }
    case 'groupVersion': {
      const doc = apiResourceListDoc(core.registry, route.group, route.version);
      if (!doc) throw errors.pathNotFound();
      return send(core, ctx, 200, doc);
    }
    case 'admin':
      if (route.what !== 'faults' || method !== 'POST') throw errors.pathNotFound();
      try {
        return send(core, ctx, 200, core.faults.command(decodeJson(ctx)) as JsonObject);
      } catch (e) {
        throw e instanceof ApiError ? e : errors.badRequest(e instanceof Error ? e.message : String(e));
      }
    case 'notFound':
      throw errors.pathNotFound();
    case 'resource':
      return resource(core, ctx, route, watching);
  }
}

function injected(route: Route, code: number, retryAfterSeconds?: number): ApiError {
  const target: Target = route.kind === 'resource' ? { group: route.type.group, plural: route.type.plural, name: route.name ?? '' } : { group: '', plural: '', name: '' };
  const retry = retryAfterSeconds === undefined ? {} : { retryAfterSeconds };
  switch (code) {
    case 409:
      return errors.conflict(target);
    case 410:
      return errors.expired('too old resource version: injected by the test server');
    case 429:
      return new ApiError(429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later', retry);
    case 500:
      return new ApiError(500, 'InternalError', 'Internal error occurred: injected by the test server', retry);
    case 504:
      return new ApiError(504, 'Timeout', 'the server was unable to return a response in the time allotted', retry);
    default:
      return new ApiError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request (injected by the test server)', retry);
  }
}

function decodeJson(ctx: Ctx): Json {
  if (ctx.raw.trim() === '') throw errors.badRequest('the body of the request was empty');
  try {
    return JSON.parse(ctx.raw) as Json;
  } catch (e) {
    throw errors.badRequest(`the body of the request could not be decoded as JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A create/update body: JSON (also when no Content-Type is sent, as Patroni does) or YAML. */
function decodeObject(ctx: Ctx): Json {
  const ct = mediaType(ctx.req);
  if (ct === '' || ct === 'application/json' || ct === '*/*') return decodeJson(ctx);
  if (ct === 'application/yaml') {
    try {
      return parseYaml(ctx.raw) as Json;
    } catch (e) {
      throw errors.badRequest(`the body of the request could not be decoded as YAML: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw errors.unsupportedMediaType(ct);
}

/** What the client reads: custom resources carry the apiVersion they were asked for. */
function present(t: ResourceType, version: string, o: JsonObject): JsonObject {
  if (t.crd) o.apiVersion = apiVersionOf(t.group, version);
  return o;
}

function filterOf(route: ResourceRoute, url: URL): Filter {
  const f: Filter = {
    labels: parseLabelSelector(url.searchParams.get('labelSelector')),
    fields: parseFieldSelector(url.searchParams.get('fieldSelector'), route.type.fieldLabels),
  };
  if (route.namespace !== undefined && route.type.namespaced) f.namespace = route.namespace;
  return f;
}

function rejectDryRun(url: URL): void {
  if (url.searchParams.getAll('dryRun').length) throw errors.badRequest('dryRun is not supported by this test server');
}

async function resource(core: ServerCore, ctx: Ctx, route: ResourceRoute, watching: boolean): Promise<void> {
  const { store } = core;
  const t = route.type;
  const ns = route.namespace ?? '';
  const out = (o: JsonObject): JsonObject => present(t, route.version, o);
  const { method, url } = ctx;
  if (route.name === undefined) {
    if (method === 'GET' && watching) return watch(core, ctx, route);
    if (method === 'GET') {
      const { resourceVersion, items } = store.list(t, filterOf(route, url));
      return send(core, ctx, 200, listDoc(t, route.version, resourceVersion, items.map(out)));
    }
    if (method === 'POST' && route.namespace !== undefined) {
      rejectDryRun(url);
      return send(core, ctx, 201, out(store.create(t, ns, decodeObject(ctx))));
    }
    if (method === 'DELETE' && route.namespace !== undefined) {
      rejectDryRun(url);
      const deleted = store.deleteCollection(t, filterOf(route, url), deleteOptions(ctx));
      return send(core, ctx, 200, listDoc(t, route.version, store.resourceVersion, deleted.map(out)));
    }
    throw errors.methodNotAllowed();
  }
  const name = route.name;
  if (route.subresource === 'scale') return scale(core, ctx, route, name);
  const sub = route.subresource === 'status' ? ('status' as const) : undefined;
  switch (method) {
    case 'GET':
      return send(core, ctx, 200, out(store.get(t, ns, name)));
    case 'PUT': {
      rejectDryRun(url);
      const existed = (() => {
        try {
          store.get(t, ns, name);
          return true;
        } catch {
          return false;
        }
      })();
      const o = store.update(t, ns, name, decodeObject(ctx), { verb: 'update', ...(sub ? { subresource: sub } : {}) });
      return send(core, ctx, existed ? 200 : 201, out(o));
    }
    case 'PATCH': {
      rejectDryRun(url);
      const patched = applyPatch(ctx, t, store.get(t, ns, name));
      return send(core, ctx, 200, out(store.update(t, ns, name, patched, { verb: 'patch', ...(sub ? { subresource: sub } : {}) })));
    }
    case 'DELETE': {
      if (sub) throw errors.methodNotAllowed();
      rejectDryRun(url);
      const r = store.delete(t, ns, name, deleteOptions(ctx));
      if (r.removed && !t.returnDeletedObject) {
        const meta = metaOf(r.object);
        return send(core, ctx, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: t.group, kind: t.plural, uid: meta.uid ?? '' } });
      }
      return send(core, ctx, 200, out(r.object));
    }
    default:
      throw errors.methodNotAllowed();
  }
}

function listDoc(t: ResourceType, version: string, rv: number, items: JsonObject[]): JsonObject {
  // Typed JSON lists omit kind/apiVersion in items; custom resource (unstructured) lists keep them.
  const stripped = t.crd
    ? items
    : items.map((o) => {
        const c = { ...o };
        delete c.kind;
        delete c.apiVersion;
        return c;
      });
  return { kind: t.listKind, apiVersion: apiVersionOf(t.group, version), metadata: { resourceVersion: String(rv) }, items: stripped };
}

const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const SMP = 'application/strategic-merge-patch+json';

function applyPatch(ctx: Ctx, t: ResourceType, existing: JsonObject, schemaKind = t.kind, smpAllowed = t.strategicPatch): Json {
  const ct = mediaType(ctx.req);
  if (ct === JSON_PATCH) return jsonPatch(existing, parseJsonPatch(decodeJson(ctx)));
  if (ct === MERGE) return mergePatch(existing, decodeJson(ctx));
  if (ct === SMP && smpAllowed) {
    const p = decodeJson(ctx);
    if (!isObject(p)) throw errors.badRequest('strategic merge patch must be a JSON object');
    return strategicMerge(existing, p, smpSchemaFor(schemaKind)) ?? {};
  }
  const accepted = smpAllowed ? [JSON_PATCH, MERGE, SMP, 'application/apply-patch+yaml'] : [JSON_PATCH, MERGE, 'application/apply-patch+yaml'];
  throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);
}

function deleteOptions(ctx: Ctx): DeleteOptions {
  const o: DeleteOptions = {};
  let body: Json = null;
  if (ctx.raw.trim() !== '') body = decodeJson(ctx);
  const b = isObject(body) ? body : {};
  const policy = (b.propagationPolicy ?? ctx.url.searchParams.get('propagationPolicy')) as string | null | undefined;
  const orphan = b.orphanDependents ?? ctx.url.searchParams.get('orphanDependents');
  if (policy === 'Orphan' || policy === 'Background' || policy === 'Foreground') o.propagationPolicy = policy;
  else if (policy) throw errors.badRequest(`propagationPolicy: Unsupported value: "${policy}"`);
  else if (orphan === true || orphan === 'true') o.propagationPolicy = 'Orphan';
  if (isObject(b.preconditions)) {
    const p: { uid?: string; resourceVersion?: string } = {};
    if (typeof b.preconditions.uid === 'string') p.uid = b.preconditions.uid;
    if (typeof b.preconditions.resourceVersion === 'string') p.resourceVersion = b.preconditions.resourceVersion;
    o.preconditions = p;
  }
  return o;
}

/** autoscaling/v1 Scale over a workload's spec.replicas (what `kubectl scale` reads and patches). */
function scale(core: ServerCore, ctx: Ctx, route: ResourceRoute, name: string): void {
  const { store } = core;
  const t = route.type;
  const ns = route.namespace ?? '';
  const toScale = (o: JsonObject): JsonObject => {
    const meta = metaOf(o);
    const spec = isObject(o.spec) ? o.spec : {};
    const status = isObject(o.status) ? o.status : {};
    const sel = isObject(spec.selector) && isObject(spec.selector.matchLabels) ? spec.selector.matchLabels : {};
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: meta.name ?? name, namespace: meta.namespace ?? ns, uid: meta.uid ?? '', resourceVersion: meta.resourceVersion ?? '', creationTimestamp: meta.creationTimestamp ?? null },
      spec: { replicas: typeof spec.replicas === 'number' ? spec.replicas : 1 },
      status: {
        replicas: typeof status.replicas === 'number' ? status.replicas : 0,
        selector: Object.entries(sel)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(','),
      },
    };
  };
  const existing = store.get(t, ns, name);
  if (ctx.method === 'GET') return send(core, ctx, 200, toScale(existing));
  if (ctx.method !== 'PUT' && ctx.method !== 'PATCH') throw errors.methodNotAllowed();
  const current = toScale(existing);
  const wanted = ctx.method === 'PUT' ? decodeObject(ctx) : applyPatch(ctx, t, current, 'Scale', true);
  if (!isObject(wanted) || !isObject(wanted.spec) || typeof wanted.spec.replicas !== 'number') {
    throw errors.invalid('Scale', { group: 'autoscaling', plural: 'scale', name }, [{ reason: 'FieldValueRequired', field: 'spec.replicas', message: 'Required value' }]);
  }
  const next = clone(existing);
  (next.spec as JsonObject).replicas = wanted.spec.replicas;
  const wantedRv = isObject(wanted.metadata) ? wanted.metadata.resourceVersion : undefined;
  metaOf(next).resourceVersion = typeof wantedRv === 'string' && wantedRv ? wantedRv : (metaOf(existing).resourceVersion ?? null);
  return send(core, ctx, 200, toScale(store.update(t, ns, name, next, { verb: 'patch' })));
}

function watch(core: ServerCore, ctx: Ctx, route: ResourceRoute): void {
  const { url, res } = ctx;
  const t = route.type;
  const rv = url.searchParams.get('resourceVersion') ?? undefined;
  parseResourceVersion(rv);
  const timeout = url.searchParams.get('timeoutSeconds');
  if (timeout !== null && !/^\d+$/.test(timeout)) throw errors.badRequest(`timeoutSeconds: Invalid value: "${timeout}"`);
  const filter = filterOf(route, url);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  core.transcript?.add({ kind: 'response', id: ctx.id, status: 200, watch: true });
  let events = 0;
  const handle = core.hub.open(
    {
      type: t,
      filter,
      ...(rv === undefined ? {} : { resourceVersion: rv }),
      ...(timeout === null ? {} : { timeoutSeconds: Number(timeout) }),
      allowBookmarks: queryBool(url.searchParams.get('allowWatchBookmarks')),
      sendInitialEvents: queryBool(url.searchParams.get('sendInitialEvents')),
      apiVersion: apiVersionOf(t.group, route.version),
      present: (o) => present(t, route.version, clone(o)),
    },
    {
      send: (e) => {
        events++;
        const meta = isObject(e.object.metadata) ? e.object.metadata : {};
        core.transcript?.add({
          kind: 'watch-event',
          id: ctx.id,
          type: e.type,
          ...(typeof meta.name === 'string' ? { name: meta.name } : {}),
          ...(typeof meta.namespace === 'string' ? { namespace: meta.namespace } : {}),
          ...(typeof meta.resourceVersion === 'string' ? { resourceVersion: meta.resourceVersion } : {}),
          ...(e.type === 'ERROR' && typeof e.object.code === 'number' ? { code: e.object.code } : {}),
        });
        return res.write(`${JSON.stringify(e)}\n`);
      },
      backlog: () => res.writableLength,
      end: () => {
        if (!res.writableEnded) res.end();
      },
    },
  );
  // Not req.on('close'): on Node >= 16 that fires as soon as the request body has been read.
  res.on('close', () => {
    handle.close();
    core.transcript?.add({ kind: 'watch-closed', id: ctx.id, events });
  });
}
