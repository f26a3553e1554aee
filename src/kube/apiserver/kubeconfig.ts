/** A kubeconfig that kubectl, @kubernetes/client-node and Patroni accept for this server. */
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export interface KubeconfigParams {
  server: string;
  token: string;
  /** PEM of the server certificate (https); omitted for http, which then needs insecure-skip-tls-verify (client-node refuses http otherwise) */
  caPem?: string;
  /** Patroni ignores current-context and needs `kubernetes.context` to name this */
  context?: string;
  namespace?: string;
}

export function kubeconfigYaml(p: KubeconfigParams): string {
  const name = p.context ?? 'pgwarden-local';
  const cluster: Record<string, unknown> = { server: p.server };
  if (p.caPem) cluster['certificate-authority-data'] = Buffer.from(p.caPem).toString('base64');
  else cluster['insecure-skip-tls-verify'] = true;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name, user: { token: p.token } }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: p.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, p: KubeconfigParams): void {
  writeFileSync(path, kubeconfigYaml(p), { mode: 0o600 });
}
