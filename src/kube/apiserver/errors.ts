/**
 * Kubernetes `Status` failures. Every error the server answers is one of these, so clients that branch on
 * `code` and `reason` (Patroni: 403/404/409; client-node: `ApiException.code` + `body.reason`) see what a
 * real apiserver sends. Messages follow apiserver's wording (k8s.io/apimachinery/pkg/api/errors).
 */
import type { JsonObject } from './json.js';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'Invalid'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout';

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

/** What identifies the object in `details`: its name, API group and resource plural (as apiserver fills them). */
export interface Target {
  name?: string;
  group: string;
  plural: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number },
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toStatus(): JsonObject {
    const s: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason };
    if (this.details) {
      const d: JsonObject = {};
      if (this.details.name !== undefined) d.name = this.details.name;
      if (this.details.group !== undefined) d.group = this.details.group;
      if (this.details.kind !== undefined) d.kind = this.details.kind;
      if (this.details.causes) d.causes = this.details.causes.map((c) => ({ ...c }));
      if (this.details.retryAfterSeconds !== undefined) d.retryAfterSeconds = this.details.retryAfterSeconds;
      s.details = d;
    }
    s.code = this.code;
    return s;
  }
}

/** `configmaps` for the core group, `postgresqls.acid.example.com` for the others (apiserver's GroupResource.String()). */
export function qualified(t: Target): string {
  return t.group ? `${t.plural}.${t.group}` : t.plural;
}

function details(t: Target): { name?: string; group: string; kind: string } {
  return t.name === undefined ? { group: t.group, kind: t.plural } : { name: t.name, group: t.group, kind: t.plural };
}

export const errors = {
  notFound: (t: Target): ApiError => new ApiError(404, 'NotFound', `${qualified(t)} "${t.name ?? ''}" not found`, details(t)),
  alreadyExists: (t: Target): ApiError => new ApiError(409, 'AlreadyExists', `${qualified(t)} "${t.name ?? ''}" already exists`, details(t)),
  conflict: (t: Target, why = 'the object has been modified; please apply your changes to the latest version and try again'): ApiError =>
    new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(t)} "${t.name ?? ''}": ${why}`, details(t)),
  invalid: (kind: string, t: Target, causes: StatusCause[]): ApiError =>
    new ApiError(
      422,
      'Invalid',
      `${kind}${t.group ? `.${t.group}` : ''} "${t.name ?? ''}" is invalid: ${causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(', ')}`,
      { ...(t.name === undefined ? {} : { name: t.name }), group: t.group, kind, causes },
    ),
  badRequest: (message: string): ApiError => new ApiError(400, 'BadRequest', message),
  forbidden: (t: Target, why: string): ApiError =>
    new ApiError(403, 'Forbidden', `${qualified(t)} "${t.name ?? ''}" is forbidden: ${why}`, details(t)),
  methodNotAllowed: (message = 'the server does not allow this method on the requested resource'): ApiError =>
    new ApiError(405, 'MethodNotAllowed', message),
  unsupportedMediaType: (contentType: string): ApiError =>
    new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`, {
      causes: [{ reason: 'UnsupportedMediaType', message: contentType }],
    }),
  unauthorized: (): ApiError => new ApiError(401, 'Unauthorized', 'Unauthorized'),
  expired: (message: string): ApiError => new ApiError(410, 'Expired', message),
  pathNotFound: (): ApiError => new ApiError(404, 'NotFound', 'the server could not find the requested resource'),
  tooLarge: (): ApiError => new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'),
  internal: (message: string): ApiError => new ApiError(500, 'InternalError', `Internal error occurred: ${message}`),
  unavailable: (message: string): ApiError => new ApiError(503, 'ServiceUnavailable', message),
};
