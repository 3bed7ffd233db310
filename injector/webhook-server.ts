// The mutating webhook's HTTPS server: POST /inject (AdmissionReview v1, admission.ts) and GET
// /healthz. The serving certificate comes from a getter and is swapped in place with
// setSecureContext() on renewal, so open connections keep theirs and nothing restarts. Bodies are
// capped, slow clients time out, every decision is one JSON log line and a count in
// tollgate_injector_admissions_total{decision}.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import { Counter, type Registry } from 'prom-client';
import { closeServer, listen } from '../common/listen.ts';
import type { Logger } from '../common/log.ts';
import { admit, decodeReview, type Decision } from './admission.ts';
import type { InjectorConfig } from './config.ts';

export const ADMISSIONS_METRIC = 'tollgate_injector_admissions_total';
/** An AdmissionReview carries one pod; real ones stay far below this (etcd's object limit is 1.5 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** The API server gives a webhook at most 30 s (timeoutSeconds); a request slower than this is a stuck client. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export interface WebhookServerOptions {
  readonly host?: string;
  readonly port: number;
  /** The serving certificate and key (PEM); read at start and on every reloadTls(). */
  readonly tls: () => SecureContextOptions;
  readonly config: InjectorConfig;
  /** The CA's current bundle PEM (the sidecars' bootstrap roots). */
  readonly bundlePem: () => string;
  readonly namespaceLabels: (namespace: string) => Promise<Readonly<Record<string, string>>>;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly maxBodyBytes?: number;
  readonly requestTimeoutMs?: number;
}

export interface WebhookServer {
  readonly server: Server;
  readonly port: number;
  /** Take the certificate from the tls getter again (after a renewal); a bad one keeps the old. */
  reloadTls(): void;
  close(): Promise<void>;
}

type Outcome = Decision | 'invalid' | 'error';

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { logger } = options;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const counter = new Counter({ name: ADMISSIONS_METRIC, help: 'Admission requests answered by the injector, by decision', labelNames: ['decision'], registers: [options.registry] });
  for (const d of ['injected', 'skipped', 'ignored', 'refused', 'invalid', 'error'] satisfies Outcome[]) counter.inc({ decision: d }, 0);

  const record = (decision: Outcome, fields: Record<string, unknown>): void => {
    counter.inc({ decision });
    logger.log(decision === 'error' ? 'error' : decision === 'invalid' ? 'warn' : 'info', 'admission', { event: 'admission', decision, ...fields });
  };
  const answer = (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
    if (!res.headersSent) res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
  };

  const inject = (req: IncomingMessage, res: ServerResponse): void => {
    const declared = Number(req.headers['content-length'] ?? 0);
    const tooLarge = (): void => {
      record('invalid', { reason: `body larger than ${maxBody} bytes` });
      answer(res, 413, `the body is larger than ${maxBody} bytes\n`);
      req.destroy();
    };
    if (declared > maxBody) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody) tooLarge();
      else chunks.push(c);
    });
    req.on('end', () => {
      if (size > maxBody) return;
      const decoded = decodeReview(Buffer.concat(chunks));
      if (!decoded.ok) {
        record('invalid', { reason: decoded.problem });
        return answer(res, 400, `${decoded.problem}\n`);
      }
      const { request } = decoded;
      admit(request, { config: options.config, bundlePem: options.bundlePem(), namespaceLabels: options.namespaceLabels }).then(
        (a) => {
          record(a.decision, { uid: request.uid, namespace: a.namespace, pod: a.pod, reason: a.reason });
          answer(res, 200, JSON.stringify(a.review), 'application/json');
        },
        (e: unknown) => {
          record('error', { uid: request.uid, namespace: request.namespace ?? '', reason: (e as Error).message });
          answer(res, 500, `cannot decide: ${(e as Error).message}\n`);
        },
      );
    });
  };

  const server = createServer({ ...options.tls(), minVersion: 'TLSv1.2' }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'use GET\n');
      return answer(res, 200, 'ok\n');
    }
    if (path !== '/inject') return answer(res, 404, 'not found: the webhook is POST /inject (and GET /healthz)\n');
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return answer(res, 405, 'POST an AdmissionReview to /inject\n');
    }
    inject(req, res);
  });
  server.requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  server.headersTimeout = Math.min(server.requestTimeout, 5000);
  // The API server keeps connections open between admissions; idle ones are closed after a while.
  server.keepAliveTimeout = 30_000;
  server.on('tlsClientError', (e) => logger.debug('webhook TLS handshake failed', { error: e.message }));

  const port = await listen(server, options.port, options.host ?? '0.0.0.0');
  return {
    server,
    port,
    reloadTls: () => {
      try {
        server.setSecureContext({ ...options.tls(), minVersion: 'TLSv1.2' });
      } catch (e) {
        logger.error('cannot use the new webhook serving certificate; keeping the current one', { error: (e as Error).message });
      }
    },
    close: () => closeServer(server),
  };
}
