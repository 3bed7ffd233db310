// The local mesh behind `tollgate demo`: a CA, two tiny HTTP services (web and orders) and their
// sidecars, all on 127.0.0.1 with ephemeral ports, in this one process. Every part is the real one:
// the CA serves gRPC over TLS, the sidecars get their SVIDs with join tokens and renew over mTLS, and
// every hop between services is mutual TLS checked against orders' allow-list.
import { mkdtempSync, rmSync, writeFileSync, createWriteStream, type WriteStream } from 'node:fs';
import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinTokenAttestor } from '../ca/attestation/join-token.ts';
import { startCaServer, type RunningCa } from '../ca/server.ts';
import { DirectoryStore, StoreFiles } from '../ca/store.ts';
import { issueFromStore } from '../ca/local-issue.ts';
import { systemClock } from '../common/clock.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { decodeProxyV2 } from '../sidecar/proxy-protocol.ts';
import { parseSidecarConfig } from '../sidecar/config.ts';
import { Sidecar } from '../sidecar/sidecar.ts';

export const DEMO_TRUST_DOMAIN = 'example.org';
export const DEMO_IDS = {
  web: `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/web`,
  orders: `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/orders`,
  intruder: `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/intruder`,
} as const;

export interface DemoMesh {
  readonly dir: string;
  readonly ca: RunningCa;
  readonly web: { readonly appPort: number; readonly sidecar: Sidecar };
  readonly orders: { readonly appPort: number; readonly inboundPort: number; readonly sidecar: Sidecar };
  /** Connections the orders app has accepted (it must only ever see web's). */
  readonly ordersApp: { connections: number; bytes: number; callers: string[] };
  /** Files an operator can use to try the mesh by hand: the intruder's certificate and key. */
  readonly intruder: { readonly certFile: string; readonly keyFile: string };
  readonly bundleFile: string;
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

function listen<T extends HttpServer | NetServer>(server: T): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

/**
 * The orders app sits behind its sidecar with PROXY protocol v2 turned on: the header in front of each
 * connection names the caller's SPIFFE ID, so orders can answer with who called it.
 */
function startOrdersApp(stats: DemoMesh['ordersApp']): { server: NetServer; http: HttpServer } {
  const http = createHttpServer((req, res) => {
    const caller = (req.socket as Socket & { tollgatePeer?: string }).tollgatePeer ?? 'unknown';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ service: 'orders', caller, orders: [{ id: 1042, item: 'coffee beans', qty: 2 }] }));
  });
  const server = createNetServer((socket) => {
    stats.connections++;
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      stats.bytes += chunk.length;
      buf = Buffer.concat([buf, chunk]);
      let decoded;
      try {
        decoded = decodeProxyV2(buf);
      } catch {
        socket.destroy();
        return;
      }
      if (!decoded) return;
      socket.off('data', onData);
      const peer = decoded.header.spiffeId ?? 'unknown';
      stats.callers.push(peer);
      (socket as Socket & { tollgatePeer?: string }).tollgatePeer = peer;
      const rest = buf.subarray(decoded.length);
      http.emit('connection', socket);
      if (rest.length) socket.unshift(rest);
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
  return { server, http };
}

/** The web app answers GET / by calling orders through its sidecar's outbound port (plain HTTP to 127.0.0.1). */
function startWebApp(outboundPort: () => number): HttpServer {
  return createHttpServer((req, res) => {
    const upstream = httpGet({ host: '127.0.0.1', port: outboundPort(), path: '/orders', agent: false, timeout: 5000 }, (r) => {
      let body = '';
      r.setEncoding('utf8').on('data', (d: string) => (body += d));
      r.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ service: 'web', path: req.url, orders_status: r.statusCode, orders_said: safeJson(body) }));
      });
    });
    upstream.on('timeout', () => upstream.destroy(new Error('orders did not answer in 5 s')));
    upstream.on('error', (e) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ service: 'web', error: `calling orders through the sidecar failed: ${e.message}` }));
    });
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function sidecarYaml(o: {
  caPort: number;
  bundleFile: string;
  token: string;
  inbound?: { appPort: number; policyFile: string };
  outbound?: { upstreamPort: number; spiffeId: string };
}): string {
  const lines = [
    `trustDomain: ${DEMO_TRUST_DOMAIN}`,
    `ca: { address: "127.0.0.1:${o.caPort}", bundleFile: ${JSON.stringify(o.bundleFile)} }`,
    `attestation: { joinToken: ${o.token} }`,
    'svid: { ttl: 10m }',
    'admin: { listen: "127.0.0.1:0" }',
  ];
  if (o.inbound) {
    lines.push(`inbound:\n  - { listen: "127.0.0.1:0", appPort: ${o.inbound.appPort}, proxyProtocol: true }`);
    lines.push(`policy: { file: ${JSON.stringify(o.inbound.policyFile)} }`);
  }
  if (o.outbound) {
    lines.push(`outbound:\n  - { listen: "127.0.0.1:0", upstream: "127.0.0.1:${o.outbound.upstreamPort}", spiffeId: ${o.outbound.spiffeId} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** Start the whole mesh. Logs of the CA and both sidecars go to files in the demo directory. */
export async function startDemoMesh(options: { log?: (line: string) => void } = {}): Promise<DemoMesh> {
  const say = options.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-demo-'));
  const caDir = join(dir, 'ca');
  const streams: WriteStream[] = [];
  const fileLogger = (name: string): Logger => {
    const out = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
    streams.push(out);
    return createLogger({ out, base: { component: name } });
  };
  const closers: Array<() => Promise<void> | void> = [];
  const stop = async (o: { keepDir?: boolean } = {}): Promise<void> => {
    for (const c of closers.reverse()) await c();
    for (const s of streams) s.end();
    if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    say(`CA: creating a root and an intermediate for trust domain ${DEMO_TRUST_DOMAIN}`);
    const store = new DirectoryStore({ dir: caDir });
    await store.init({ trustDomain: DEMO_TRUST_DOMAIN, clock: systemClock });
    const audit = createWriteStream(join(dir, 'ca-audit.log'), { flags: 'a' });
    streams.push(audit);
    const ca = await startCaServer({ dir: caDir, clock: systemClock, logger: fileLogger('ca'), audit, host: '127.0.0.1', port: 0, adminPort: 0 });
    closers.push(() => ca.close());
    const bundleFile = store.path(StoreFiles.bundle);
    const tokens = new JoinTokenAttestor({ dir: store.path(StoreFiles.tokens), clock: systemClock, trustDomain: DEMO_TRUST_DOMAIN });
    say(`CA: serving gRPC on 127.0.0.1:${ca.grpc.port}`);

    const ordersApp = { connections: 0, bytes: 0, callers: [] as string[] };
    const orders = startOrdersApp(ordersApp);
    const ordersAppPort = await listen(orders.server);
    closers.push(() => new Promise<void>((r) => orders.server.close(() => r())));
    const policyFile = join(dir, 'orders-policy.yaml');
    writeFileSync(policyFile, `# orders accepts exactly one caller: web\nports:\n  "${ordersAppPort}":\n    allow:\n      - ${DEMO_IDS.web}\n`);

    const ordersYaml = sidecarYaml({
      caPort: ca.grpc.port,
      bundleFile,
      token: (await tokens.create({ spiffeId: DEMO_IDS.orders, ttlMs: 10 * 60_000 })).token,
      inbound: { appPort: ordersAppPort, policyFile },
    });
    writeFileSync(join(dir, 'orders-sidecar.yaml'), ordersYaml, { mode: 0o600 });
    const ordersSidecar = await Sidecar.start({ config: parseSidecarConfig(ordersYaml, { source: join(dir, 'orders-sidecar.yaml'), baseDir: dir }), logger: fileLogger('orders-sidecar') });
    closers.push(() => ordersSidecar.close());
    const ordersInbound = ordersSidecar.inboundListeners[0]!.port;
    say(`orders: app on 127.0.0.1:${ordersAppPort}, sidecar inbound mTLS on 127.0.0.1:${ordersInbound} as ${ordersSidecar.spiffeId}`);

    let webOutbound = 0;
    const web = startWebApp(() => webOutbound);
    const webAppPort = await listen(web);
    closers.push(() => new Promise<void>((r) => {
      web.closeAllConnections();
      web.close(() => r());
    }));
    const webYaml = sidecarYaml({
      caPort: ca.grpc.port,
      bundleFile,
      token: (await tokens.create({ spiffeId: DEMO_IDS.web, ttlMs: 10 * 60_000 })).token,
      outbound: { upstreamPort: ordersInbound, spiffeId: DEMO_IDS.orders },
    });
    writeFileSync(join(dir, 'web-sidecar.yaml'), webYaml, { mode: 0o600 });
    const webSidecar = await Sidecar.start({ config: parseSidecarConfig(webYaml, { source: join(dir, 'web-sidecar.yaml'), baseDir: dir }), logger: fileLogger('web-sidecar') });
    closers.push(() => webSidecar.close());
    webOutbound = webSidecar.outboundListeners[0]!.port;
    say(`web: app on 127.0.0.1:${webAppPort}, sidecar outbound 127.0.0.1:${webOutbound} -> orders as ${webSidecar.spiffeId}`);

    // A workload with a perfectly valid SVID from the same CA, which orders' policy does not list.
    const intruder = issueFromStore({ dir: caDir, spiffeId: DEMO_IDS.intruder, ttlSeconds: 3600, clock: systemClock });
    const intruderFiles = { certFile: join(dir, 'intruder.crt'), keyFile: join(dir, 'intruder.key') };
    writeFileSync(intruderFiles.certFile, intruder.chainPem);
    writeFileSync(intruderFiles.keyFile, intruder.keyPem, { mode: 0o600 });

    return {
      dir,
      ca,
      web: { appPort: webAppPort, sidecar: webSidecar },
      orders: { appPort: ordersAppPort, inboundPort: ordersInbound, sidecar: ordersSidecar },
      ordersApp,
      intruder: intruderFiles,
      bundleFile,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
