// The one injection function, used by the mutating webhook (admission.ts) and by `tollgate inject`
// (manifest.ts): decide whether a pod (or pod template) gets the sidecar, and if so return both the
// injected pod and the RFC 6902 JSON Patch that turns the original into it. Pure: no I/O, no clock.
//
// Decision, in order: a never-injected namespace (kube-system, kube-public, kube-node-lease,
// Tollgate's own) → skipped; already injected (marker annotation or a tollgate-proxy container)
// → skipped, so a reinvocation is safe; pod annotation tollgate.io/inject disabled → skipped,
// enabled → injected (disabled too with ignoreOptOut, `tollgate inject --force`); else the
// namespace label tollgate.io/inject=enabled decides; a host-network pod is skipped (capture rules
// would change the node's own tables). A malformed annotation or pod throws TG_ANNOTATION_INVALID /
// TG_POD_INVALID: the caller refuses the pod with that message.
import { TollgateError } from '../common/errors.ts';
import { Annotation, NAMESPACE_LABEL, injectChoice, parseMeshAnnotations, type MeshAnnotations } from './annotations.ts';
import type { InjectorConfig } from './config.ts';
import { Names, captureContainer, meshVolumes, proxyContainer, type Json } from './pod-parts.ts';

export const NEVER_INJECTED: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

export type PatchOp = { op: 'add' | 'replace'; path: string; value: unknown } | { op: 'remove'; path: string };

export interface InjectOptions {
  readonly config: InjectorConfig;
  /** The bootstrap roots the sidecar trusts at first contact (the CA's current bundle). */
  readonly bundlePem: string;
  /** The pod's namespace (the admission request's); '' when unknown. */
  readonly namespace: string;
  /** That namespace's labels. */
  readonly namespaceLabels: Readonly<Record<string, string>>;
  /** `tollgate inject --force`: inject a pod that opts out too (never-injected namespaces stay untouched). */
  readonly ignoreOptOut?: boolean;
}

export interface InjectResult {
  readonly decision: 'injected' | 'skipped';
  /** Why, in a few words an operator reads in the log. */
  readonly reason: string;
  /** The injected pod (injected only). */
  readonly pod?: Json;
  /** Empty when skipped. */
  readonly patch: readonly PatchOp[];
  /** Things that will not work as the pod is written (returned to kubectl as admission warnings). */
  readonly warnings: readonly string[];
}

interface Container extends Json {
  name: string;
  env?: Json[];
  ports?: Json[];
}
interface PodShape {
  metadata?: Json & { annotations?: Record<string, string> };
  spec: Json & { containers: Container[]; initContainers?: Container[]; volumes?: Json[]; hostNetwork?: boolean; serviceAccountName?: string; serviceAccount?: string };
}

/** Escape one JSON Pointer token (RFC 6901): "~" → "~0", "/" → "~1". */
export function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

const skip = (reason: string): InjectResult => ({ decision: 'skipped', reason, patch: [], warnings: [] });

export function injectPod(input: unknown, options: InjectOptions): InjectResult {
  const { config } = options;
  const pod = asPod(input);
  const annotations = pod.metadata?.annotations ?? {};
  const namespace = options.namespace || String(pod.metadata?.['namespace'] ?? '');
  if (NEVER_INJECTED.includes(namespace) || namespace === config.systemNamespace) return skip(`namespace ${namespace} is never injected`);
  if (annotations[Annotation.injected] !== undefined || [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].some((c) => c.name === Names.proxy)) {
    return skip('already injected');
  }
  const choice = injectChoice(annotations);
  if (choice === 'disabled' && !options.ignoreOptOut) return skip(`pod annotation ${Annotation.inject} is disabled`);
  if (choice === null && options.namespaceLabels[NAMESPACE_LABEL] !== 'enabled') {
    return skip(`not opted in (namespace label ${NAMESPACE_LABEL}=enabled or pod annotation ${Annotation.inject}: enabled)`);
  }
  if (pod.spec.hostNetwork === true) return skip('the pod uses the host network, where capture rules would change the node itself');
  const mesh = parseMeshAnnotations(annotations, { trustDomain: config.trustDomain, defaultCapture: config.capture });
  checkReservedNames(pod);

  const parts = { config, bundlePem: options.bundlePem, mesh };
  const proxy = proxyContainer(parts);
  const capture = captureContainer(parts);
  const volumes = meshVolumes(parts, capture !== null);
  const added = { [Annotation.injected]: 'true', ...(annotations[DEFAULT_CONTAINER_ANNOTATION] === undefined ? { [DEFAULT_CONTAINER_ANNOTATION]: pod.spec.containers[0]!.name } : {}) };
  const firstInit = [...(capture ? [capture] : []), ...(config.nativeSidecar ? [proxy] : [])];
  const env = (c: Container): Json[] => mesh.upstreams.filter((u) => !(c.env ?? []).some((e) => e['name'] === u.envName)).map((u) => ({ name: u.envName, value: `127.0.0.1:${u.localPort}` }));

  // The injected pod, built directly (the patch below is checked against it in the tests).
  const out = structuredClone(pod) as PodShape;
  out.metadata = { ...out.metadata, annotations: { ...annotations, ...added } };
  for (const c of out.spec.containers) {
    const more = env(c);
    if (more.length > 0) c.env = [...(c.env ?? []), ...more];
  }
  if (firstInit.length > 0) out.spec.initContainers = [...(firstInit as Container[]), ...(out.spec.initContainers ?? [])];
  if (!config.nativeSidecar) out.spec.containers = [proxy as Container, ...out.spec.containers];
  out.spec.volumes = [...(out.spec.volumes ?? []), ...volumes];
  // The projected token needs a named service account. The ServiceAccount admission plugin names
  // "default" before webhooks run; where it is off, the API server refuses the token volume without.
  const namesAccount = Boolean(pod.spec.serviceAccountName || pod.spec.serviceAccount);
  if (!namesAccount) out.spec.serviceAccountName = 'default';

  // The patch, against the original: environment first (container indexes still the original's),
  // then the inserts at the front, then the volumes.
  const patch: PatchOp[] = [];
  if (!pod.metadata) patch.push({ op: 'add', path: '/metadata', value: { annotations: added } });
  else if (!pod.metadata.annotations) patch.push({ op: 'add', path: '/metadata/annotations', value: added });
  else for (const [k, v] of Object.entries(added)) patch.push({ op: 'add', path: `/metadata/annotations/${pointerToken(k)}`, value: v });
  pod.spec.containers.forEach((c, i) => {
    const more = env(c);
    if (more.length === 0) return;
    if (!c.env) patch.push({ op: 'add', path: `/spec/containers/${i}/env`, value: more });
    else for (const e of more) patch.push({ op: 'add', path: `/spec/containers/${i}/env/-`, value: e });
  });
  if (firstInit.length > 0) {
    if (!pod.spec.initContainers) patch.push({ op: 'add', path: '/spec/initContainers', value: firstInit });
    else firstInit.forEach((c, i) => patch.push({ op: 'add', path: `/spec/initContainers/${i}`, value: c }));
  }
  if (!config.nativeSidecar) patch.push({ op: 'add', path: '/spec/containers/0', value: proxy });
  if (!pod.spec.volumes) patch.push({ op: 'add', path: '/spec/volumes', value: volumes });
  else for (const v of volumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  if (!namesAccount) patch.push({ op: 'add', path: '/spec/serviceAccountName', value: 'default' });

  const how = `${config.nativeSidecar ? 'native sidecar' : 'sidecar container (pre-1.29 fallback)'}, capture ${capture ? 'iptables' : 'none'}`;
  const what = `${mesh.inboundPorts.length} inbound port(s), ${mesh.upstreams.length} upstream(s)`;
  const by = choice === 'enabled' ? 'pod annotation' : choice === 'disabled' ? 'forced despite the opt-out' : 'namespace label';
  return { decision: 'injected', reason: `${by}: ${how}, ${what}`, pod: out as unknown as Json, patch, warnings: probeWarnings(pod, mesh) };
}

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The parts of the object injection reads, checked; anything else is TG_POD_INVALID. */
function asPod(input: unknown): PodShape {
  const bad = (problem: string): TollgateError => new TollgateError('TG_POD_INVALID', `cannot inject: ${problem}`);
  if (!isObject(input)) throw bad('the object is not a mapping');
  const { metadata, spec } = input;
  if (metadata !== undefined && !isObject(metadata)) throw bad('metadata is not a mapping');
  const annotations = metadata?.['annotations'];
  if (annotations !== undefined && annotations !== null) {
    if (!isObject(annotations) || Object.values(annotations).some((v) => typeof v !== 'string')) throw bad('metadata.annotations must map names to strings');
  }
  if (!isObject(spec)) throw bad('the pod has no spec');
  const lists = ['containers', 'initContainers', 'volumes'] as const;
  for (const k of lists) {
    const v = spec[k];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || !v.every(isObject)) throw bad(`spec.${k} must be a list of mappings`);
  }
  const containers = spec['containers'] as Json[] | undefined;
  if (!containers || containers.length === 0) throw bad('the pod has no containers');
  for (const c of [...containers, ...((spec['initContainers'] as Json[] | undefined) ?? [])]) {
    if (typeof c['name'] !== 'string' || c['name'] === '') throw bad('every container needs a name');
    if (c['env'] !== undefined && c['env'] !== null && (!Array.isArray(c['env']) || !c['env'].every(isObject))) throw bad(`container ${c['name']}: env must be a list of mappings`);
  }
  // A null list or mapping (as some tools write "initContainers: null") reads as absent below.
  return input as unknown as PodShape;
}

function checkReservedNames(pod: PodShape): void {
  const taken = (what: string, name: string): TollgateError =>
    new TollgateError('TG_POD_INVALID', `cannot inject: the pod already has a ${what} named ${name}, a name Tollgate's sidecar uses; rename it`);
  for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) if (c.name === Names.init) throw taken('container', c.name);
  for (const v of pod.spec.volumes ?? []) {
    if (Object.values(Names).includes(v['name'] as never)) throw taken('volume', String(v['name']));
  }
}

/** Kubelet probes on a captured port reach the sidecar, which refuses them: they could never pass. */
function probeWarnings(pod: PodShape, mesh: MeshAnnotations): string[] {
  const out: string[] = [];
  for (const c of pod.spec.containers) {
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const p = c[kind] as Record<string, { port?: unknown } | undefined> | undefined;
      const target = p?.['httpGet']?.port ?? p?.['tcpSocket']?.port ?? p?.['grpc']?.port;
      const port = typeof target === 'string' ? (c.ports ?? []).find((x) => x['name'] === target)?.['containerPort'] : target;
      if (typeof port === 'number' && mesh.inboundPorts.includes(port)) {
        out.push(`container ${c.name}: ${kind} checks port ${port}, which the sidecar fronts with mutual TLS; the kubelet's plain probe will fail there. Probe a port not in ${Annotation.inboundPorts}, or use an exec probe`);
      }
    }
  }
  return out;
}
