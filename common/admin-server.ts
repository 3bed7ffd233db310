// The admin endpoints every Tollgate process serves on loopback: /healthz (the process runs),
// /readyz (it can do its job: a valid SVID/authority and bundle), /metrics (Prometheus text).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { closeServer, listen } from './listen.ts';

export interface Readiness {
  ready: boolean;
  /** Why not ready, or what is checked, for humans. */
  detail: string;
  /** Ready but with something an operator must act on: shown as "ready (warning): ..." and in the x-tollgate-health header. */
  state?: 'ok' | 'warning' | 'degraded';
}

export interface AdminServerOptions {
  host?: string;
  port: number;
  registry: Registry;
  readiness: () => Readiness;
  /** More GET endpoints answering JSON, e.g. the CA's /status. */
  json?: Readonly<Record<string, () => unknown>>;
}

export interface AdminServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/readyz') {
      const r = options.readiness();
      const state = r.ready ? (r.state ?? 'ok') : 'not-ready';
      const label = !r.ready ? 'not ready' : state === 'ok' ? 'ready' : `ready (${state})`;
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain', 'x-tollgate-health': state }).end(`${label}: ${r.detail}\n`);
    } else if (url === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
      );
    } else if (url && options.json && Object.hasOwn(options.json, url)) {
      try {
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(options.json[url]!(), null, 2)}\n`);
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${url} failed: ${(e as Error).message}\n`);
      }
    } else {
      const more = Object.keys(options.json ?? {}).join(', ');
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: try /healthz, /readyz or /metrics${more ? `, ${more}` : ''}\n`);
    }
  });
  server.keepAliveTimeout = 5000;
  const port = await listen(server, options.port, options.host ?? '127.0.0.1');
  return { server, port, close: () => closeServer(server) };
}
