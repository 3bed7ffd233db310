// A loopback HTTPS stand-in for a few Kubernetes API paths (a real TLS server, objects in memory),
// for unit tests of the API client and of what uses it. It behaves as the API server does where
// those tests look: 404 NotFound, PUT with a stale resourceVersion → 409 Conflict, POST of an
// existing name → 409 AlreadyExists, JSON Patch (a failed "test" → 422 Invalid), merge patch, a
// resourceVersion that grows on every write, bearer-token or client-certificate authentication
// (401). The real API server is tested against in test/kube/.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { applyPatch, type Op } from './json-patch.ts';
import { testServerCert, type TestServerCert } from './tls-test-cert.ts';

export interface StubRequest {
  method: string;
  path: string;
  contentType: string;
  authorization: string;
  clientCertCn: string;
  body: unknown;
}

type Obj = Record<string, unknown> & { metadata?: Record<string, unknown> };

export interface KubeStub {
  readonly url: string;
  readonly cert: TestServerCert;
  readonly requests: StubRequest[];
  readonly objects: Map<string, Obj>;
  /** The next `times` requests answer `status` with a Status of `reason`. */
  failNext(status: number, reason: string, times?: number): void;
  close(): Promise<void>;
}

function merge(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
}

/** `token`: the bearer token accepted; `clientCa`: PEM of a CA whose client certificates are accepted. */
export async function startKubeStub(o: { token?: string; clientCa?: string } = {}): Promise<KubeStub> {
  const cert = await testServerCert();
  const requests: StubRequest[] = [];
  const objects = new Map<string, Obj>();
  let version = 100;
  let failures: { status: number; reason: string; times: number } | null = null;
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem, ...(o.clientCa ? { ca: o.clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const socket = req.socket as TLSSocket;
      const peer = o.clientCa && socket.authorized ? socket.getPeerCertificate() : null;
      const r: StubRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        contentType: String(req.headers['content-type'] ?? ''),
        authorization: String(req.headers['authorization'] ?? ''),
        clientCertCn: String(peer?.subject?.CN ?? ''),
        body: text ? (JSON.parse(text) as unknown) : undefined,
      };
      requests.push(r);
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      const fail = (status: number, reason: string, message: string): void => send(status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code: status });
      const tokenOk = o.token !== undefined && r.authorization === `Bearer ${o.token}`;
      if (!tokenOk && !peer) return fail(401, 'Unauthorized', 'Unauthorized');
      if (failures && failures.times > 0) {
        failures.times--;
        return fail(failures.status, failures.reason, `injected ${failures.reason}`);
      }
      const path = r.path.split('?')[0]!;
      const current = objects.get(path);
      const stored = (obj: Obj): Obj => {
        const next = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++version) } };
        objects.set(path, next);
        return next;
      };
      if (r.method === 'GET') return current ? send(200, current) : fail(404, 'NotFound', `${path} not found`);
      if (r.method === 'POST') {
        const name = String((r.body as Obj).metadata?.['name'] ?? '');
        const at = `${path}/${name}`;
        if (objects.has(at)) return fail(409, 'AlreadyExists', `${name} already exists`);
        const next = { ...(r.body as Obj), metadata: { ...(r.body as Obj).metadata, resourceVersion: String(++version) } };
        objects.set(at, next);
        return send(201, next);
      }
      if (!current) return fail(404, 'NotFound', `${path} not found`);
      if (r.method === 'PUT') {
        const rv = (r.body as Obj).metadata?.['resourceVersion'];
        if (rv !== current.metadata?.['resourceVersion']) return fail(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
        return send(200, stored(r.body as Obj));
      }
      if (r.method === 'PATCH') {
        if (r.contentType === 'application/json-patch+json') {
          try {
            return send(200, stored(applyPatch(current, r.body as Op[])));
          } catch (e) {
            return fail(422, 'Invalid', (e as Error).message);
          }
        }
        if (r.contentType === 'application/merge-patch+json') return send(200, stored(merge(current, r.body) as Obj));
        return fail(415, 'UnsupportedMediaType', r.contentType);
      }
      if (r.method === 'DELETE') {
        objects.delete(path);
        return send(200, { kind: 'Status', status: 'Success' });
      }
      return fail(405, 'MethodNotAllowed', r.method);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cert,
    requests,
    objects,
    failNext: (status, reason, times = 1) => (failures = { status, reason, times }),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
