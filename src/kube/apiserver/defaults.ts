/**
 * Defaulting of the built-in fields our operator writes (k8s.io/kubernetes/pkg/apis/<group>/v1/defaults.go).
 * Without it an operator that compares its desired spec with the live object would never see the
 * "update on every reconcile" loop it would have on a real cluster. Mutates the object it is given.
 */
import { isObject, type Json, type JsonObject } from './json.js';

const obj = (o: JsonObject, key: string): JsonObject => {
  if (!isObject(o[key])) o[key] = {};
  return o[key] as JsonObject;
};
const setDefault = (o: JsonObject, key: string, value: Json): void => {
  if (o[key] === undefined || o[key] === null) o[key] = value;
};
const objects = (v: Json | undefined): JsonObject[] => (Array.isArray(v) ? v.filter(isObject) : []);

function defaultContainer(c: JsonObject): void {
  const image = typeof c.image === 'string' ? c.image : '';
  const tag = image.includes('@') ? 'digest' : (/:([^/:]+)$/.exec(image)?.[1] ?? 'latest');
  setDefault(c, 'imagePullPolicy', tag === 'latest' ? 'Always' : 'IfNotPresent');
  setDefault(c, 'terminationMessagePath', '/dev/termination-log');
  setDefault(c, 'terminationMessagePolicy', 'File');
  setDefault(c, 'resources', {});
  for (const p of objects(c.ports)) setDefault(p, 'protocol', 'TCP');
}

export function defaultPodSpec(spec: JsonObject): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  setDefault(spec, 'terminationGracePeriodSeconds', 30);
  setDefault(spec, 'schedulerName', 'default-scheduler');
  setDefault(spec, 'securityContext', {});
  for (const c of [...objects(spec.containers), ...objects(spec.initContainers)]) defaultContainer(c);
  for (const v of objects(spec.volumes)) {
    for (const src of ['configMap', 'secret'] as const) if (isObject(v[src])) setDefault(v[src] as JsonObject, 'defaultMode', 420);
  }
}

function defaultTemplate(spec: JsonObject): void {
  const template = obj(spec, 'template');
  defaultPodSpec(obj(template, 'spec'));
}

export interface DefaultingContext {
  /** a free cluster IP for a new Service */
  allocateClusterIP(): string;
  create: boolean;
}

/** Applies the defaults of `kind` to `o` (a whole object). */
export function applyDefaults(kind: string, o: JsonObject, ctx: DefaultingContext): void {
  const spec = (): JsonObject => obj(o, 'spec');
  switch (kind) {
    case 'Pod': {
      const s = spec();
      defaultPodSpec(s);
      if (ctx.create) {
        setDefault(s, 'serviceAccountName', 'default');
        setDefault(s, 'enableServiceLinks', true);
        setDefault(s, 'priority', 0);
      }
      break;
    }
    case 'Service': {
      const s = spec();
      setDefault(s, 'type', 'ClusterIP');
      setDefault(s, 'sessionAffinity', 'None');
      for (const p of objects(s.ports)) {
        setDefault(p, 'protocol', 'TCP');
        setDefault(p, 'targetPort', p.port ?? null);
      }
      if (s.type !== 'ExternalName') {
        if (s.clusterIP === undefined || s.clusterIP === '') s.clusterIP = ctx.allocateClusterIP();
        setDefault(s, 'clusterIPs', [s.clusterIP as Json]);
        setDefault(s, 'ipFamilies', ['IPv4']);
        setDefault(s, 'ipFamilyPolicy', 'SingleStack');
        setDefault(s, 'internalTrafficPolicy', 'Cluster');
      }
      if (ctx.create) setDefault(o, 'status', { loadBalancer: {} });
      break;
    }
    case 'StatefulSet': {
      const s = spec();
      setDefault(s, 'replicas', 1);
      setDefault(s, 'podManagementPolicy', 'OrderedReady');
      setDefault(s, 'updateStrategy', { type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
      setDefault(s, 'revisionHistoryLimit', 10);
      setDefault(s, 'persistentVolumeClaimRetentionPolicy', { whenDeleted: 'Retain', whenScaled: 'Retain' });
      defaultTemplate(s);
      for (const t of objects(s.volumeClaimTemplates)) {
        setDefault(t, 'apiVersion', 'v1');
        setDefault(t, 'kind', 'PersistentVolumeClaim');
        setDefault(obj(t, 'spec'), 'volumeMode', 'Filesystem');
        setDefault(t, 'status', { phase: 'Pending' });
      }
      if (ctx.create) setDefault(o, 'status', { replicas: 0, availableReplicas: 0 });
      break;
    }
    case 'Deployment': {
      const s = spec();
      setDefault(s, 'replicas', 1);
      setDefault(s, 'strategy', { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } });
      setDefault(s, 'revisionHistoryLimit', 10);
      setDefault(s, 'progressDeadlineSeconds', 600);
      defaultTemplate(s);
      break;
    }
    case 'PersistentVolumeClaim':
      setDefault(spec(), 'volumeMode', 'Filesystem');
      if (ctx.create) setDefault(o, 'status', { phase: 'Pending' });
      break;
    case 'Namespace': {
      setDefault(spec(), 'finalizers', ['kubernetes']);
      const meta = obj(o, 'metadata');
      obj(meta, 'labels')['kubernetes.io/metadata.name'] = meta.name ?? null;
      if (ctx.create) o.status = { phase: 'Active' };
      break;
    }
    case 'Secret': {
      setDefault(o, 'type', 'Opaque');
      if (isObject(o.stringData)) {
        const data = obj(o, 'data');
        for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(typeof v === 'string' ? v : String(v)).toString('base64');
        delete o.stringData;
      }
      break;
    }
    default:
      break;
  }
}
