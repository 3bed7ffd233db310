// The admin endpoints every Tollgate process serves on loopback: /healthz (the process runs),
// /readyz (it can do its job: a valid SVID/authority and bundle), /metrics (Prometheus text).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { closeServer, listen } from './listen.ts';

export interface Readiness {
  ready: boolean;
  /** Why not ready, or what is checked, for humans. */
  detail: string;
}

export interface AdminServerOptions {
  host?: string;
  port: number;
  registry: Registry;
  readiness: () => Readiness;
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
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${r.ready ? 'ready' : 'not ready'}: ${r.detail}\n`);
    } else if (url === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
    }
  });
  server.keepAliveTimeout = 5000;
  const port = await listen(server, options.port, options.host ?? '127.0.0.1');
  return { server, port, close: () => closeServer(server) };
}
