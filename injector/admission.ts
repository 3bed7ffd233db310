// AdmissionReview v1 in, AdmissionReview v1 out. A body that is not a v1 AdmissionReview with a
// request uid is undecodable (the server answers HTTP 400 and the API server applies the webhook's
// failurePolicy); anything decodable gets an answer with its uid echoed: objects other than pods and
// operations other than CREATE are allowed untouched, a pod injectPod() refuses (bad annotation,
// malformed pod) is denied with the reason, an injected pod is allowed with a base64 JSONPatch.
import { isTollgateError } from '../common/errors.ts';
import type { InjectorConfig } from './config.ts';
import { injectPod } from './inject.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind?: { group?: string; version?: string; kind?: string };
  readonly resource?: { group?: string; version?: string; resource?: string };
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation?: string;
  readonly object?: unknown;
}

export type Decoded = { readonly ok: true; readonly request: AdmissionRequest } | { readonly ok: false; readonly problem: string };

/** What happened to one request, for the log line and the counter. */
export type Decision = 'injected' | 'skipped' | 'ignored' | 'refused';

export interface Admission {
  /** The AdmissionReview to answer with (HTTP 200). */
  readonly review: Record<string, unknown>;
  readonly decision: Decision;
  readonly reason: string;
  readonly namespace: string;
  /** The pod's name, or its generateName when it has no name yet. */
  readonly pod: string;
}

export interface AdmitContext {
  readonly config: InjectorConfig;
  /** The CA's current bundle, given to every injected sidecar as its bootstrap roots. */
  readonly bundlePem: string;
  /** Labels of a namespace (the opt-in label lives there). A rejection is a server error (HTTP 500). */
  readonly namespaceLabels: (namespace: string) => Promise<Readonly<Record<string, string>>>;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function decodeReview(body: string | Buffer): Decoded {
  let data: unknown;
  try {
    data = JSON.parse(body.toString());
  } catch (e) {
    return { ok: false, problem: `the body is not JSON (${(e as Error).message}); send an ${ADMISSION_API_VERSION} AdmissionReview` };
  }
  if (!isObject(data) || data['kind'] !== 'AdmissionReview') return { ok: false, problem: `the body is not an AdmissionReview; send an ${ADMISSION_API_VERSION} AdmissionReview` };
  if (data['apiVersion'] !== ADMISSION_API_VERSION) {
    return { ok: false, problem: `AdmissionReview ${JSON.stringify(data['apiVersion'])} is not supported; this webhook speaks ${ADMISSION_API_VERSION} only (admissionReviewVersions: ["v1"])` };
  }
  const request = data['request'];
  if (!isObject(request)) return { ok: false, problem: 'the AdmissionReview has no request' };
  if (typeof request['uid'] !== 'string' || request['uid'] === '') return { ok: false, problem: 'the AdmissionReview request has no uid' };
  return { ok: true, request: request as unknown as AdmissionRequest };
}

function review(uid: string, response: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid, ...response } };
}

function podName(object: unknown, request: AdmissionRequest): string {
  const meta = isObject(object) && isObject(object['metadata']) ? object['metadata'] : {};
  const name = meta['name'] || meta['generateName'] || request.name || '';
  return typeof name === 'string' ? name : '';
}

/**
 * Decide one admission request. Rejects (→ HTTP 500) only when the namespace's labels cannot be read;
 * every problem of the request itself becomes an answer.
 */
export async function admit(request: AdmissionRequest, ctx: AdmitContext): Promise<Admission> {
  const { uid } = request;
  const object = request.object;
  const namespace = request.namespace || String((isObject(object) && isObject(object['metadata']) && object['metadata']['namespace']) || '');
  const base = { namespace, pod: podName(object, request) };
  const isPod = (request.resource?.resource === 'pods' || request.kind?.kind === 'Pod') && !request.resource?.group && !request.kind?.group && !request.subResource;
  if (!isPod) {
    const what = request.subResource ? `${request.resource?.resource}/${request.subResource}` : (request.kind?.kind ?? request.resource?.resource ?? 'an unnamed kind');
    return { ...base, review: review(uid, { allowed: true }), decision: 'ignored', reason: `not a pod (${what})` };
  }
  if (request.operation !== 'CREATE') {
    return { ...base, review: review(uid, { allowed: true }), decision: 'ignored', reason: `operation ${request.operation ?? '(none)'}: only CREATE is injected` };
  }
  const refuse = (message: string): Admission => ({
    ...base,
    review: review(uid, { allowed: false, status: { status: 'Failure', code: 400, reason: 'BadRequest', message } }),
    decision: 'refused',
    reason: message,
  });
  if (!isObject(object)) return refuse('the AdmissionReview request has no pod object');
  const namespaceLabels = namespace === '' ? {} : await ctx.namespaceLabels(namespace);
  try {
    const r = injectPod(object, { config: ctx.config, bundlePem: ctx.bundlePem, namespace, namespaceLabels });
    if (r.decision === 'skipped') return { ...base, review: review(uid, { allowed: true }), decision: 'skipped', reason: r.reason };
    const patch = Buffer.from(JSON.stringify(r.patch)).toString('base64');
    const warnings = r.warnings.length > 0 ? { warnings: r.warnings } : {};
    return { ...base, review: review(uid, { allowed: true, patchType: 'JSONPatch', patch, ...warnings }), decision: 'injected', reason: r.reason };
  } catch (e) {
    if (isTollgateError(e, 'TG_ANNOTATION_INVALID') || isTollgateError(e, 'TG_POD_INVALID')) return refuse(`Tollgate cannot inject this pod: ${e.message}`);
    throw e;
  }
}
