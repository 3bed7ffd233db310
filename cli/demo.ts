// `tollgate demo [--once] [--json]`: start the local mesh (cli/demo-mesh.ts), try one allowed call and
// three that must be refused, and print what happened. With --once it stops and exits 0 only if every
// expectation held; otherwise it keeps running and shows how to try it by hand.
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Command } from 'commander';
import { printJson } from './options.ts';
import type { DemoMesh } from './demo-mesh.ts';

export interface DemoCheck {
  readonly name: string;
  readonly expected: string;
  readonly observed: string;
  readonly ok: boolean;
  /** The orders app's own counters after this check: connections accepted and bytes received so far. */
  readonly orders_app: { readonly connections: number; readonly bytes: number };
}

interface ProbeResult {
  /** Bytes the caller got back before the connection ended. */
  readonly reply: string;
  readonly error: string | null;
}

/** Connect, send one HTTP request, collect whatever comes back until the peer closes (bounded). */
function probe(connect: () => Socket): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let reply = '';
    let error: string | null = null;
    const s = connect();
    const timer = setTimeout(() => s.destroy(new Error('no answer in 5 s')), 5000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => (reply += d));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ? `${e.code}` : e.message));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, error });
    });
    s.write('GET /orders HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
  });
}

function httpJson(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('web did not answer in 10 s')));
    req.on('error', reject);
  });
}

export async function runDemoChecks(mesh: DemoMesh, ids: { web: string }): Promise<DemoCheck[]> {
  const checks: DemoCheck[] = [];
  const app = (): DemoCheck['orders_app'] => ({ connections: mesh.ordersApp.connections, bytes: mesh.ordersApp.bytes });
  const bundle = readFileSync(mesh.bundleFile);
  const port = mesh.orders.inboundPort;

  try {
    const r = await httpJson(mesh.web.appPort);
    const said = r.body.orders_said as { caller?: string } | undefined;
    const ok = r.status === 200 && r.body.orders_status === 200 && said?.caller === ids.web;
    checks.push({
      name: 'web -> orders (allowed)',
      expected: 'HTTP 200, caller = web',
      observed: ok ? `HTTP 200, orders saw caller ${said?.caller}` : `status ${r.status}: ${JSON.stringify(r.body).slice(0, 120)}`,
      ok,
      orders_app: app(),
    });
  } catch (e) {
    checks.push({ name: 'web -> orders (allowed)', expected: 'HTTP 200, caller = web', observed: `failed: ${(e as Error).message}`, ok: false, orders_app: app() });
  }

  // Each refusal: the caller gets no reply and the orders app does not even see a connection.
  const refused = async (name: string, expected: string, connect: () => Socket): Promise<void> => {
    const before = mesh.ordersApp.connections;
    const reasonsBefore = await refusalReasons(mesh);
    const r = await probe(connect);
    const appSaw = mesh.ordersApp.connections - before;
    const reasonsAfter = await refusalReasons(mesh);
    const reasons = [...reasonsAfter].filter(([k, v]) => v > (reasonsBefore.get(k) ?? 0)).map(([k]) => k);
    const ok = r.reply === '' && appSaw === 0 && reasons.length > 0;
    const got = r.reply ? `got ${r.reply.length} bytes back` : 'closed';
    checks.push({ name, expected, observed: `${got}, sidecar reason ${reasons.join(',') || 'none'}, app saw ${appSaw} conn`, ok, orders_app: app() });
  };
  const cert = readFileSync(mesh.intruder.certFile);
  const key = readFileSync(mesh.intruder.keyFile);
  // The callers below do not check the server's identity: they only show what the sidecar lets through.
  await refused('intruder: valid SVID, not on allow-list', 'refused, app sees nothing', () =>
    tlsConnect({ host: '127.0.0.1', port, cert, key, ca: bundle, checkServerIdentity: () => undefined }));
  await refused('TLS client, no certificate', 'refused, app sees nothing', () =>
    tlsConnect({ host: '127.0.0.1', port, ca: bundle, checkServerIdentity: () => undefined }));
  await refused('plaintext client', 'refused, app sees nothing', () => netConnect({ host: '127.0.0.1', port }));
  return checks;
}

/** Refusal counts of the orders sidecar by reason label (its own metrics registry). */
async function refusalReasons(mesh: DemoMesh): Promise<Map<string, number>> {
  const m = await mesh.orders.sidecar.metrics.inboundConnections.get();
  const out = new Map<string, number>();
  for (const v of m.values) if (v.labels.result === 'refused') out.set(String(v.labels.reason), v.value);
  return out;
}

export function formatChecks(checks: readonly DemoCheck[]): string {
  const rows = [['', 'check', 'expected', 'observed'], ...checks.map((c) => [c.ok ? 'ok' : 'FAIL', c.name, c.expected, c.observed])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('start a CA, two services (web, orders) and their sidecars on 127.0.0.1, and show who gets through')
    .option('--once', 'run the checks, print them, stop; exit 0 only if every expectation held')
    .option('--json', 'print the checks as JSON')
    .addHelpText('after', `
Needs only Node.js: every port is an ephemeral one on 127.0.0.1 and every file lives in a temporary
directory (removed on exit). Without --once the mesh keeps running until Ctrl-C and the command prints
curl and openssl lines to try it by hand.

Examples:
  $ npm run demo
  $ tollgate demo --once
  $ tollgate demo --once --json`)
    .action(async (o: { once?: boolean; json?: boolean }) => {
      const { startDemoMesh, DEMO_IDS } = await import('./demo-mesh.ts');
      const say = (s: string): void => void process.stderr.write(`demo: ${s}\n`);
      const mesh = await startDemoMesh({ log: o.json ? () => {} : say });
      let checks: DemoCheck[];
      try {
        checks = await runDemoChecks(mesh, DEMO_IDS);
      } catch (e) {
        await mesh.stop();
        throw e;
      }
      const allOk = checks.every((c) => c.ok);
      if (o.json) printJson({ ok: allOk, checks });
      else process.stdout.write(`\n${formatChecks(checks)}\n\n${allOk ? 'every expectation held' : 'SOME EXPECTATIONS FAILED'}\n`);
      if (o.once) {
        await mesh.stop();
        process.exitCode = allOk ? 0 : 1;
        return;
      }
      if (!o.json) {
        process.stdout.write(`
The mesh keeps running (Ctrl-C stops it). Files: ${mesh.dir}
  # call web as its own pod would; web calls orders through its sidecar (mTLS, SPIFFE ID checked):
  curl -s http://127.0.0.1:${mesh.web.appPort}/
  # be the intruder: a valid certificate from this CA, not on orders' allow-list -> connection closed
  openssl s_client -connect 127.0.0.1:${mesh.orders.inboundPort} -cert ${mesh.intruder.certFile} -key ${mesh.intruder.keyFile} -CAfile ${mesh.bundleFile}
  # no client certificate -> refused during the handshake
  openssl s_client -connect 127.0.0.1:${mesh.orders.inboundPort} -CAfile ${mesh.bundleFile}
  # metrics of the orders sidecar:
  curl -s http://127.0.0.1:${mesh.orders.sidecar.adminPort}/metrics | grep tollgate_inbound
`);
      }
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await mesh.stop();
    });
}
