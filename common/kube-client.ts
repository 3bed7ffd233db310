// A minimal Kubernetes API client: JSON over HTTPS, nothing generated. Credentials are the pod's
// own (in-cluster: KUBERNETES_SERVICE_HOST/PORT and the service-account token and CA files, the
// token re-read for every request since the kubelet rotates it) or given explicitly (server URL,
// CA, bearer token or client certificate: tests against a loopback API server). Failures are
// typed: a resourceVersion conflict (or an existing name) is TG_KUBE_CONFLICT, a missing object
// TG_KUBE_NOT_FOUND, any other refusal TG_KUBE_API, an unreachable server TG_UNAVAILABLE; all are
// KubeApiError with the HTTP status and the Status reason. `watch` streams a watch's events (one
// JSON object per line) until the server ends it.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { TollgateError, type ErrorCode } from './errors.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export interface KubeClientOptions {
  /** The API server's base URL, e.g. https://10.0.0.1:443 or https://127.0.0.1:6443. */
  readonly server: string;
  /** PEM of the CA(s) that sign the API server's certificate. */
  readonly caPem?: string | Buffer;
  /** A bearer token, asked for on every request. */
  readonly token?: () => string;
  readonly clientCert?: { readonly certPem: string | Buffer; readonly keyPem: string | Buffer };
  /** Per request; default 10 s. */
  readonly timeoutMs?: number;
}

export type PatchType = 'json' | 'merge' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

/** One event of a watch stream; an ERROR event's object is a Status (e.g. code 410: resourceVersion too old). */
export interface WatchEvent<T = unknown> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: T;
}

export class KubeApiError extends TollgateError {
  /** HTTP status (0 when the server was not reached). */
  readonly status: number;
  /** The Status object's reason, e.g. Conflict, AlreadyExists, NotFound, Forbidden, Invalid. */
  readonly reason: string;

  constructor(code: ErrorCode, message: string, o: { status: number; reason: string; cause?: unknown }) {
    super(code, message, { ...(o.cause !== undefined ? { cause: o.cause } : {}), details: { status: o.status, reason: o.reason } });
    this.name = 'KubeApiError';
    this.status = o.status;
    this.reason = o.reason;
  }
}

function readCredential(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new TollgateError('TG_CONFIG_INVALID', `cannot read the ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Files and flags as an operator gives them; every file is read now, the token file on every request. */
export function kubeClientOptions(o: { server: string; caFile?: string; tokenFile?: string; certFile?: string; keyFile?: string; timeoutMs?: number }): KubeClientOptions {
  let url: URL;
  try {
    url = new URL(o.server);
  } catch {
    throw new TollgateError('TG_USAGE', `${JSON.stringify(o.server)} is not a URL; give the API server as https://HOST:PORT`);
  }
  if (url.protocol !== 'https:') throw new TollgateError('TG_USAGE', `the API server ${o.server} must be https://`);
  if ((o.certFile === undefined) !== (o.keyFile === undefined)) throw new TollgateError('TG_USAGE', 'a client certificate needs both its certificate and key files');
  const tokenFile = o.tokenFile;
  if (tokenFile !== undefined) readCredential(tokenFile, 'API token');
  return {
    server: o.server.replace(/\/+$/, ''),
    ...(o.caFile !== undefined ? { caPem: readCredential(o.caFile, 'API server CA file') } : {}),
    ...(tokenFile !== undefined ? { token: () => readCredential(tokenFile, 'API token').trim() } : {}),
    ...(o.certFile !== undefined && o.keyFile !== undefined ? { clientCert: { certPem: readCredential(o.certFile, 'client certificate'), keyPem: readCredential(o.keyFile, 'client key') } } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
}

/** The pod's own credentials (throws TG_CONFIG_INVALID outside a cluster). */
export function inClusterOptions(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeClientOptions {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) throw new TollgateError('TG_CONFIG_INVALID', 'not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT are not set); give the API server explicitly');
  return kubeClientOptions({ server: `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`, caFile: join(dir, 'ca.crt'), tokenFile: join(dir, 'token') });
}

/** The namespace this pod runs in, from its service-account files; null outside a cluster. */
export function inClusterNamespace(dir = SERVICE_ACCOUNT_DIR): string | null {
  try {
    return readFileSync(join(dir, 'namespace'), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

export class KubeClient {
  readonly server: string;
  readonly #o: KubeClientOptions;
  readonly #agent: Agent;

  constructor(options: KubeClientOptions) {
    this.#o = options;
    this.server = options.server.replace(/\/+$/, '');
    this.#agent = new Agent({
      keepAlive: true,
      // A CA replica under load issues tens of API calls at once (its watch holds one socket).
      maxSockets: 32,
      ...(options.caPem !== undefined ? { ca: options.caPem } : {}),
      ...(options.clientCert ? { cert: options.clientCert.certPem, key: options.clientCert.keyPem } : {}),
    });
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  patch<T>(path: string, body: unknown, type: PatchType): Promise<T> {
    return this.request<T>('PATCH', path, body, PATCH_CONTENT_TYPE[type]);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  #headers(payload?: Buffer, contentType = 'application/json'): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'tollgate' };
    if (payload) Object.assign(headers, { 'content-type': contentType, 'content-length': String(payload.length) });
    const token = this.#o.token?.();
    if (token) headers['authorization'] = `Bearer ${token}`;
    return headers;
  }

  request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const what = `${method} ${path}`;
    const headers = this.#headers(payload, contentType);
    return new Promise<T>((resolve, reject) => {
      const req = request(`${this.server}${path}`, { method, headers, agent: this.#agent, timeout: this.#o.timeoutMs ?? 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`the answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let data: unknown = undefined;
          try {
            data = text === '' ? undefined : JSON.parse(text);
          } catch {
            // A non-JSON answer (a proxy's error page) is described by its status below.
          }
          if (status >= 200 && status < 300) return resolve(data as T);
          reject(refusal(what, status, data, text, res.statusMessage));
        });
        res.on('error', (e) => reject(unreachable(what, e)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#o.timeoutMs ?? 10_000} ms`)));
      req.on('error', (e) => reject(unreachable(what, e)));
      req.end(payload);
    });
  }

  /**
   * GET `path` (which must ask for `watch=1`) and call `onEvent` for every event until the server
   * ends the stream (its timeoutSeconds): then it resolves, as it does when `signal` aborts. A refusal,
   * an ERROR event (its Status's code as the status: 410 when the resourceVersion is too old) or a
   * connection silent for `idleTimeoutMs` rejects.
   */
  watch<T>(path: string, onEvent: (e: WatchEvent<T>) => void, o: { signal?: AbortSignal; idleTimeoutMs?: number } = {}): Promise<void> {
    const what = `WATCH ${path}`;
    const idle = o.idleTimeoutMs ?? 330_000;
    return new Promise<void>((resolve, reject) => {
      if (o.signal?.aborted) return resolve();
      let settled = false;
      const done = (e?: Error): void => {
        if (settled) return;
        settled = true;
        o.signal?.removeEventListener('abort', abort);
        if (e) reject(e);
        else resolve();
      };
      const req = request(`${this.server}${path}`, { method: 'GET', headers: this.#headers(), agent: this.#agent, timeout: idle }, (res) => {
        const status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        let buffered = '';
        res.on('data', (chunk: string) => {
          buffered += chunk;
          if (buffered.length > MAX_RESPONSE_BYTES) return req.destroy(new Error(`a watch event is larger than ${MAX_RESPONSE_BYTES} bytes`));
          if (status < 200 || status >= 300) return;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line === '') continue;
            let event: WatchEvent<T>;
            try {
              event = JSON.parse(line) as WatchEvent<T>;
            } catch {
              return req.destroy(new Error('the watch stream holds a line that is not JSON'));
            }
            if (event.type === 'ERROR') {
              const s = event.object as { code?: number; reason?: string; message?: string };
              done(new KubeApiError('TG_KUBE_API', `${what}: ${s.code ?? 0} ${s.reason ?? ''}: ${s.message ?? ''}`, { status: s.code ?? 0, reason: s.reason ?? '' }));
              return req.destroy();
            }
            onEvent(event);
          }
        });
        res.on('end', () => {
          if (status >= 200 && status < 300) return done();
          let data: unknown;
          try {
            data = JSON.parse(buffered);
          } catch {
            data = undefined;
          }
          done(refusal(what, status, data, buffered, res.statusMessage));
        });
        res.on('error', (e) => done(o.signal?.aborted ? undefined : unreachable(what, e)));
      });
      const abort = (): void => {
        settled = true;
        resolve();
        req.destroy();
      };
      o.signal?.addEventListener('abort', abort, { once: true });
      req.on('timeout', () => req.destroy(new Error(`the watch was silent for ${idle} ms`)));
      req.on('error', (e) => done(o.signal?.aborted ? undefined : unreachable(what, e)));
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function refusal(what: string, status: number, data: unknown, text: string, statusMessage: string | undefined): KubeApiError {
  const s = (data ?? {}) as { reason?: string; message?: string };
  const code: ErrorCode = status === 409 ? 'TG_KUBE_CONFLICT' : status === 404 ? 'TG_KUBE_NOT_FOUND' : 'TG_KUBE_API';
  return new KubeApiError(code, `${what}: ${status} ${s.reason ?? statusMessage ?? ''}: ${s.message ?? text.slice(0, 300)}`, { status, reason: s.reason ?? '' });
}

function unreachable(what: string, e: Error): KubeApiError {
  return new KubeApiError('TG_UNAVAILABLE', `${what}: the API server cannot be reached: ${e.message}`, { status: 0, reason: '', cause: e });
}
