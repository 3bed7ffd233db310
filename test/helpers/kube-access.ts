// What an identity may do on a real API server, checked two ways per expectation: the server's own
// authorizer through a SelfSubjectAccessReview made AS that identity (covers verbs such as watch that
// are awkward to call), and, where the expectation names one, a real request (403 = refused, any
// other status = authorized; writes are sent with dryRun=All, which is authorized exactly like the
// real write and stores nothing). A table of expectations reads as what the role grants and not.
import type { KubeClient } from './kube-client.ts';

export interface ResourceAccess {
  verb: string;
  /** "resource" (core group) or "group/resource", e.g. "coordination.k8s.io/leases". */
  resource: string;
  /** Omitted: cluster-scoped, or all namespaces. */
  namespace?: string;
  name?: string;
  subresource?: string;
}

export interface RealRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  /** Content type of PATCH bodies; default JSON merge patch. */
  contentType?: string;
}

export interface AccessExpectation {
  /** e.g. `cannot get secrets "other" in tollgate-system` (made from the fields by can()/cannot()). */
  name: string;
  allowed: boolean;
  access: ResourceAccess;
  request?: RealRequest;
}

function describe(allowed: boolean, a: ResourceAccess, note?: string): string {
  const what = `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.name ? ` "${a.name}"` : ''}`;
  const where = a.namespace ? ` in ${a.namespace}` : '';
  return `${allowed ? 'can' : 'cannot'} ${what}${where}${note ? ` (${note})` : ''}`;
}

export function can(access: ResourceAccess, request?: RealRequest, note?: string): AccessExpectation {
  return { name: describe(true, access, note), allowed: true, access, ...(request ? { request } : {}) };
}

export function cannot(access: ResourceAccess, request?: RealRequest, note?: string): AccessExpectation {
  return { name: describe(false, access, note), allowed: false, access, ...(request ? { request } : {}) };
}

/** The server's answer to "may I?" for the client's own identity. */
export async function selfAccessReview(client: KubeClient, a: ResourceAccess): Promise<boolean> {
  const [group, resource] = a.resource.includes('/') ? a.resource.split('/') : ['', a.resource];
  const res = await client.post<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { verb: a.verb, group, resource, namespace: a.namespace, name: a.name, subresource: a.subresource } },
  });
  if (res.status !== 201) throw new Error(`SelfSubjectAccessReview for ${a.verb} ${a.resource}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  return res.body.status?.allowed === true;
}

/** Whether the server authorized a real request: 403 is a refusal, 401 an error, anything else passed authorization. */
export async function realRequestAuthorized(client: KubeClient, r: RealRequest): Promise<{ authorized: boolean; status: number }> {
  const path = r.method === 'GET' ? r.path : `${r.path}${r.path.includes('?') ? '&' : '?'}dryRun=All`;
  const res = await client.request(r.method, path, r.body, r.contentType ? { contentType: r.contentType } : {});
  if (res.status === 401) throw new Error(`${r.method} ${r.path}: HTTP 401: the identity did not authenticate`);
  return { authorized: res.status !== 403, status: res.status };
}

export interface UnmetExpectation {
  name: string;
  /** What the server answered instead. */
  detail: string;
}

/** The expectations the server does not meet, each with what it answered; [] when all hold. */
export async function unmetExpectations(client: KubeClient, table: readonly AccessExpectation[]): Promise<UnmetExpectation[]> {
  const unmet: UnmetExpectation[] = [];
  for (const e of table) {
    const review = await selfAccessReview(client, e.access);
    if (review !== e.allowed) unmet.push({ name: e.name, detail: `the access review says allowed=${review}` });
    if (e.request) {
      const real = await realRequestAuthorized(client, e.request);
      if (real.authorized !== e.allowed) unmet.push({ name: e.name, detail: `${e.request.method} ${e.request.path} answered HTTP ${real.status}` });
    }
  }
  return unmet;
}
