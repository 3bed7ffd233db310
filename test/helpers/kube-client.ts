// A small typed HTTPS client for a test Kubernetes API server: JSON in and out, the status code
// always returned (tests assert on 403s and 409s as much as on 200s), one identity per client (a
// client certificate or a bearer token), plus the kubeconfig file that gives kubectl/helm the same
// identity. `apply` is server-side apply, so a test can state objects as YAML-like literals.
import { writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import type { ClientCert } from './kube-pki.ts';

/** Who the client is to the API server. */
export type KubeIdentity = { readonly cert: ClientCert; readonly token?: undefined } | { readonly token: string; readonly cert?: undefined };

export interface KubeResponse<T = any> {
  readonly status: number;
  /** Parsed JSON, or undefined when the body is not JSON (then see `text`). */
  readonly body: T;
  readonly text: string;
}

/** A Kubernetes object as sent or received; only the fields the client itself reads are typed. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; generateName?: string; [k: string]: any };
  [k: string]: any;
}

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};
export const FIELD_MANAGER = 'tollgate-test';
const REQUEST_TIMEOUT_MS = 30_000;

export class KubeApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(what: string, res: KubeResponse) {
    const message = typeof res.body?.message === 'string' ? res.body.message : res.text.slice(0, 500);
    super(`${what}: HTTP ${res.status}: ${message}`);
    this.name = 'KubeApiError';
    this.status = res.status;
    this.body = res.body;
  }
}

interface ApiResource {
  name: string;
  namespaced: boolean;
  kind: string;
}

export interface KubeClientOptions {
  server: string;
  caPem: string;
  identity: KubeIdentity;
  /** Where to write this identity's kubeconfig (for kubectl/helm). */
  kubeconfigFile: string;
}

export class KubeClient {
  readonly server: string;
  /** Path of a kubeconfig with this client's identity (embedded data, context "test"). */
  readonly kubeconfig: string;
  readonly #agent: Agent;
  readonly #token: string | undefined;
  readonly #discovery = new Map<string, Promise<ApiResource[]>>();

  constructor(options: KubeClientOptions) {
    this.server = options.server;
    const { identity } = options;
    this.#token = identity.token;
    // Keep-alive sockets are unref'd while idle, so they never hold a test process open.
    this.#agent = new Agent({ keepAlive: true, ca: options.caPem, ...(identity.cert ? { cert: identity.cert.certPem, key: identity.cert.keyPem } : {}) });
    this.kubeconfig = options.kubeconfigFile;
    writeFileSync(this.kubeconfig, kubeconfigText(options), { mode: 0o600 });
  }

  /** One API call; never throws for an HTTP status, only when the server cannot be reached. */
  request<T = any>(method: string, path: string, body?: unknown, options: { contentType?: string } = {}): Promise<KubeResponse<T>> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string | number> = { Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    if (this.#token !== undefined) headers.Authorization = `Bearer ${this.#token}`;
    return new Promise((resolve, reject) => {
      const req = httpsRequest(new URL(path, this.server), { method, headers, agent: this.#agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T, text });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer from ${this.server} within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  get<T = any>(path: string): Promise<KubeResponse<T>> {
    return this.request<T>('GET', path);
  }

  post<T = any>(path: string, body: unknown): Promise<KubeResponse<T>> {
    return this.request<T>('POST', path, body);
  }

  put<T = any>(path: string, body: unknown): Promise<KubeResponse<T>> {
    return this.request<T>('PUT', path, body);
  }

  patch<T = any>(path: string, body: unknown, type: PatchType = 'merge'): Promise<KubeResponse<T>> {
    return this.request<T>('PATCH', path, body, { contentType: PATCH_CONTENT_TYPES[type] });
  }

  delete<T = any>(path: string): Promise<KubeResponse<T>> {
    return this.request<T>('DELETE', path);
  }

  /**
   * The REST path of an object (or of its collection when it has no name), found by API discovery,
   * so any kind the server serves works, CRDs included.
   */
  async pathOf(ref: { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } }): Promise<string> {
    const { apiVersion, kind } = ref;
    let resources = this.#discovery.get(apiVersion);
    if (!resources) {
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      resources = this.get<{ resources: ApiResource[] }>(base).then((res) => {
        if (res.status !== 200) throw new KubeApiError(`discovery of ${apiVersion}`, res);
        return res.body.resources.filter((r) => !r.name.includes('/'));
      });
      this.#discovery.set(apiVersion, resources);
      resources.catch(() => this.#discovery.delete(apiVersion));
    }
    const res = (await resources).find((r) => r.kind === kind);
    if (!res) throw new Error(`the API server does not serve kind ${kind} in ${apiVersion}`);
    const group = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = ref.metadata?.namespace;
    if (res.namespaced && !ns) throw new Error(`${kind} is namespaced: set metadata.namespace`);
    const scope = res.namespaced ? `/namespaces/${encodeURIComponent(ns!)}` : '';
    const name = ref.metadata?.name ? `/${encodeURIComponent(ref.metadata.name)}` : '';
    return `${group}${scope}/${res.name}${name}`;
  }

  /** Server-side apply (create or update, this client as field manager); throws unless 2xx. */
  async apply<T extends KubeObject = KubeObject>(obj: KubeObject): Promise<T> {
    if (!obj.metadata.name) throw new Error(`apply needs metadata.name (${obj.kind}); use create() for generateName`);
    const path = `${await this.pathOf(obj)}?fieldManager=${FIELD_MANAGER}&force=true`;
    return ok(await this.patch<T>(path, obj, 'apply'), `apply ${describe(obj)}`);
  }

  /** POST a new object (generateName allowed); throws unless 2xx. */
  async create<T extends KubeObject = KubeObject>(obj: KubeObject): Promise<T> {
    const path = await this.pathOf({ ...obj, metadata: { namespace: obj.metadata.namespace } });
    return ok(await this.post<T>(path, obj), `create ${describe(obj)}`);
  }

  /** GET an object; undefined when it does not exist (404), throws on other failures. */
  async read<T extends KubeObject = KubeObject>(ref: KubeObject | { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): Promise<T | undefined> {
    const res = await this.get<T>(await this.pathOf(ref));
    if (res.status === 404) return undefined;
    return ok(res, `get ${describe(ref)}`);
  }

  /** DELETE an object; a missing one is fine. Throws on other failures. */
  async remove(ref: { apiVersion: string; kind: string; metadata: { name?: string; namespace?: string } }): Promise<void> {
    const res = await this.delete(await this.pathOf(ref));
    if (res.status !== 404) ok(res, `delete ${describe(ref)}`);
  }

  /** Drop keep-alive connections (the cluster does this on stop). */
  close(): void {
    this.#agent.destroy();
  }
}

/** The body of a 2xx response; a KubeApiError naming `what` otherwise. */
export function ok<T>(res: KubeResponse<T>, what: string): T {
  if (res.status < 200 || res.status > 299) throw new KubeApiError(what, res);
  return res.body;
}

function describe(ref: { kind: string; metadata?: { name?: string; namespace?: string; generateName?: string } }): string {
  const m = ref.metadata ?? {};
  return `${ref.kind} ${m.namespace ? `${m.namespace}/` : ''}${m.name ?? `${m.generateName ?? ''}*`}`;
}

function kubeconfigText(o: KubeClientOptions): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const user = o.identity.cert
    ? { 'client-certificate-data': b64(o.identity.cert.certPem), 'client-key-data': b64(o.identity.cert.keyPem) }
    : { token: o.identity.token };
  // JSON is YAML: kubectl and helm read it as a kubeconfig.
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: o.server, 'certificate-authority-data': b64(o.caPem) } }],
    users: [{ name: 'test', user }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test', namespace: 'default' } }],
    'current-context': 'test',
  });
}
