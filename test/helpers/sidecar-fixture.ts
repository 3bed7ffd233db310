// Test support for the sidecar's data plane: SVIDs and trust bundles built from pki/test-chain.ts, and
// an SvidSource whose SVID and bundle a test can swap (as the SvidManager does on renewal or on a
// bundle push). Validity is taken from `now`, so pass Date.now() for anything OpenSSL will check.
// Also what both proxies' tests share: a testbed (source, metrics, log capture), a backend that counts
// what reaches it, round trips, polling, and openssl s_client.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import { createLogger, type Logger } from '../../common/log.ts';
import { certsToPem, toPem } from '../../pki/pem.ts';
import { leafFrom, p256, testChain, type CertSpec, type KeyPair, type TestChain } from '../../pki/test-chain.ts';
import { parseCertificate } from '../../pki/x509.ts';
import { SidecarMetricNames, SidecarMetrics, type Direction } from '../../sidecar/metrics.ts';
import { SvidHolder, svidOf, trustBundleOf, type Svid, type TrustBundle } from '../../sidecar/svid-source.ts';

/** The workloads the proxy tests use: as in the demo mesh, web calls api; other is allowed nowhere. */
export const WORKLOAD_IDS: { readonly api: string; readonly web: string; readonly other: string } = {
  api: 'spiffe://example.org/ns/shop/sa/api',
  web: 'spiffe://example.org/ns/shop/sa/web',
  other: 'spiffe://example.org/ns/other/sa/batch',
};

/** An SVID plus what an outside client (openssl, node:tls) needs to present it. */
export interface TestSvid extends Svid {
  /** PEM of the leaf alone. */
  readonly leafPem: string;
  /** PKCS#8 PEM of the private key (tests only: the product never exports keys). */
  readonly keyPem: string;
}

export interface TestPki {
  readonly trustDomain: string;
  readonly chain: TestChain;
  readonly bundle: TrustBundle;
  /** PEM of the root, for -CAfile / tls `ca`. */
  readonly rootPem: string;
  /**
   * A leaf for `spiffeId` signed by the intermediate, valid from now-60 s to now+1 h unless `over`
   * says otherwise; `over` can break the profile on purpose (see CertSpec). Serials count up from 1.
   */
  issue(spiffeId: string, over?: Partial<CertSpec>): TestSvid;
}

let nextSerial = 1;

export function testPki(options: { trustDomain?: string; now?: number; bundleVersion?: number } = {}): TestPki {
  const trustDomain = options.trustDomain ?? 'example.org';
  const now = options.now ?? Date.now();
  const chain = testChain(trustDomain, now);
  const bundle = trustBundleOf(options.bundleVersion ?? 1, trustDomain, [chain.root]);
  const rootPem = bundle.rootsPem;
  return {
    trustDomain,
    chain,
    bundle,
    rootPem,
    issue(spiffeId, over = {}) {
      const key: KeyPair = p256();
      const serial = over.serial ?? ((nextSerial++ - 1) % 255) + 1;
      const der = leafFrom(chain, { uris: [spiffeId], spki: key.spki, serial, ...over });
      return svidFrom(spiffeId, [der, chain.intermediate], key);
    },
  };
}

/** Wrap a DER chain and its key as a TestSvid (the key need not match: tests of bad swaps use that). */
export function svidFrom(spiffeId: string, certChain: Buffer[], key: KeyPair): TestSvid {
  const leaf = parseCertificate(certChain[0]!);
  return Object.freeze({
    ...svidOf({ spiffeId, certChain, key: key.key, notBefore: leaf.notBefore, notAfter: leaf.notAfter, serial: leaf.serialHex.toLowerCase() }),
    leafPem: toPem('CERTIFICATE', certChain[0]!),
    keyPem: key.key.export({ format: 'pem', type: 'pkcs8' }).toString(),
  });
}

/** An SvidSource holding whatever the test sets; `update` notifies subscribers as a renewal would. */
export class StaticSvidSource extends SvidHolder {
  constructor(init: { svid: Svid | null; bundle: TrustBundle | null }) {
    super(init);
  }

  /** Replace the SVID and/or the bundle, then notify. */
  update(next: { svid?: Svid | null; bundle?: TrustBundle | null }): void {
    this.replace(next);
    this.notify();
  }
}

/** What a proxy under test is given, and where the test reads back what it did. */
export interface ProxyTestbed {
  /** Spread into InboundProxyOptions / OutboundProxyOptions: listen on 127.0.0.1:0 with the parts below. */
  readonly options: { listen: { host: string; port: number }; source: StaticSvidSource; logger: Logger; metrics: SidecarMetrics };
  /** Holds a fresh SVID from `pki` and its bundle. */
  readonly source: StaticSvidSource;
  readonly registry: Registry;
  /** Every log line (debug and up), parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** tollgate_{direction}_connections_total{result,reason} now. */
  connections(result: string, reason: string): Promise<number>;
}

/** A started proxy and its testbed. */
export interface ProxyHarness<P> extends ProxyTestbed {
  readonly proxy: P;
  readonly port: number;
}

/** A testbed for the proxy of `direction` presenting an SVID for `spiffeId`. */
export function proxyTestbed(pki: TestPki, options: { spiffeId: string; direction: Direction }): ProxyTestbed {
  const registry = new Registry();
  const logs: Array<Record<string, unknown>> = [];
  const source = new StaticSvidSource({ svid: pki.issue(options.spiffeId), bundle: pki.bundle });
  const logger = createLogger({ out: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) }, level: 'debug' });
  const counter = options.direction === 'inbound' ? SidecarMetricNames.inboundConnections : SidecarMetricNames.outboundConnections;
  return {
    options: { listen: { host: '127.0.0.1', port: 0 }, source, logger, metrics: new SidecarMetrics(registry) },
    source,
    registry,
    logs,
    connections: (result, reason) => metricValue(registry, counter, { result, reason }),
  };
}

/** Files for command-line clients (openssl -cert/-key/-CAfile), removed by cleanup(). */
export interface PemFiles {
  readonly dir: string;
  /** Write `text` as `name` in the directory; returns the path. */
  write(name: string, text: string): string;
  /**
   * Write an SVID as NAME.crt (leaf + intermediate, for tools that send the whole file), NAME.leaf.crt,
   * NAME.chain.crt (intermediates) and NAME.key. `args` is what openssl s_client/s_server need to
   * present it (-cert alone sends only the first certificate).
   */
  writeSvid(name: string, svid: TestSvid): { cert: string; leaf: string; chain: string; key: string; args: string[] };
  cleanup(): void;
}

export function pemFiles(prefix = 'tollgate-sidecar-test-'): PemFiles {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  return {
    dir,
    write,
    writeSvid: (name, svid) => {
      const leaf = write(`${name}.leaf.crt`, svid.leafPem);
      const chain = write(`${name}.chain.crt`, certsToPem(svid.certChain.slice(1)));
      const key = write(`${name}.key`, svid.keyPem);
      return { cert: write(`${name}.crt`, svid.certChainPem), leaf, chain, key, args: ['-cert', leaf, '-cert_chain', chain, '-key', key] };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------
// A backend that counts what reaches it, outside clients, and polling helpers.

export interface TestBackend {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Bytes received so far, all connections. */
  readonly bytes: number;
  /** Everything received, per connection, in order. */
  readonly received: Buffer[][];
  /** Sockets accepted (for tests that need to end or inspect them). */
  readonly sockets: net.Socket[];
  close(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1:0 that counts connections and bytes; echoes unless `echo` is false, and
 * ends its side when the client ends its own unless `endWhenPeerEnds` is false (to test half-close).
 * `port` starts it again where a stopped one listened (an app coming back).
 */
export async function startBackend(options: { echo?: boolean; endWhenPeerEnds?: boolean; /** default 0: any free port */ port?: number } = {}): Promise<TestBackend> {
  let connections = 0;
  let bytes = 0;
  const received: Buffer[][] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    connections++;
    sockets.push(s);
    const chunks: Buffer[] = [];
    received.push(chunks);
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      chunks.push(d);
      if (options.echo !== false) s.write(d);
    });
    if (options.endWhenPeerEnds !== false) s.on('end', () => s.end());
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    get bytes() {
      return bytes;
    },
    received,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * An address where a connection is refused, held for as long as the test needs it: a listener on
 * 127.0.0.1:P (port 0, so P is the kernel's pick) and the address 127.0.0.2:P, where nothing listens.
 * While 127.0.0.1:P is held nobody can bind 0.0.0.0:P, so unlike "listen on 0, close, reuse the
 * port" no other test can start answering there in between.
 */
export async function refusingAddress(): Promise<{ host: string; port: number; close(): Promise<void> }> {
  const held = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  const { port } = held.address() as net.AddressInfo;
  return { host: '127.0.0.2', port, close: () => new Promise<void>((resolve) => held.close(() => resolve())) };
}

/** A node:tls client presenting `svid` and trusting `pki`'s root (from `localAddress`, e.g. 127.0.0.2, if given); resolves once connected. */
export function mtlsClient(port: number, pki: TestPki, svid: TestSvid, localAddress?: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // localAddress reaches net.Socket#connect (tls.connect passes its options on) but is missing from the types.
    const options = { host: '127.0.0.1', port, localAddress, ca: pki.rootPem, cert: svid.certChainPem, key: svid.keyPem, checkServerIdentity: () => undefined };
    const s = tls.connect(options as tls.ConnectionOptions);
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Send `text` on a connection to an echo and wait (bounded) until it comes back. */
/** Round trips on `s` every 100 ms for `ms`; resolves with whether `s` closed meanwhile. */
export async function keepMoving(s: net.Socket, ms: number): Promise<{ closed: () => boolean }> {
  let closed = false;
  s.on('close', () => (closed = true));
  const until = Date.now() + ms;
  for (let i = 0; Date.now() < until; i++) {
    await roundTrip(s, `ping ${i}\n`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { closed: () => closed };
}

export async function roundTrip(s: net.Socket, text: string): Promise<void> {
  let got = '';
  const onData = (d: Buffer): void => {
    got += d.toString();
  };
  s.on('data', onData);
  s.write(text);
  try {
    await waitFor(() => got.includes(text), `echo of ${JSON.stringify(text)}`);
  } finally {
    s.off('data', onData);
  }
}

/** Poll `cond` every 10 ms until it holds; throws after `timeoutMs` (default 10 s). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The value of a counter or gauge sample with exactly these labels (0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  const want = Object.entries(labels);
  const hit = values.find((v) => {
    const have = (v.labels ?? {}) as Record<string, unknown>;
    return Object.keys(have).length === want.length && want.every(([k, val]) => have[k] === val);
  });
  return hit?.value ?? 0;
}

export interface OpensslRun {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code; null when the test stopped it. */
  readonly code: number | null;
}

/**
 * Run `openssl s_client -connect 127.0.0.1:PORT -quiet ARGS`, write `input`, and stop it once stdout
 * contains `until` (when given) or it exits by itself; killed after `timeoutMs` either way.
 */
export function sClient(port: number, args: string[], options: { input?: string; until?: string; timeoutMs?: number } = {}): Promise<OpensslRun> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-quiet', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (code: number | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (p.exitCode === null) p.kill('SIGKILL');
      resolve({ stdout, stderr, code });
    };
    const timer = setTimeout(() => finish(null), options.timeoutMs ?? 10_000);
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
      if (options.until !== undefined && stdout.includes(options.until)) finish(null);
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    p.stdin.on('error', () => undefined);
    p.on('exit', (code) => {
      // Let buffered output arrive before reporting.
      setImmediate(() => finish(code));
    });
    if (options.input !== undefined) p.stdin.write(options.input);
  });
}
