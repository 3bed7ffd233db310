// Real `tollgate sidecar run` processes next to a real CA (test/helpers/ca-fixture.ts). Backends that
// count connections and bytes are in test/helpers/sidecar-fixture.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createJoinToken, initCa, startCa, type RunningTestCa } from './ca-fixture.ts';
import { startTollgate, tempDir, type Started } from './procs.ts';
import { startBackend, type TestBackend } from './sidecar-fixture.ts';

export interface SidecarSpec {
  readonly name: string;
  readonly spiffeId: string;
  readonly inbound?: { appPort: number; proxyProtocol?: boolean };
  /** Policy text for the inbound side (written to <name>-policy.yaml). */
  readonly policy?: string;
  readonly outbound?: { upstreamPort: number; spiffeId: string };
  readonly ttl?: string;
  readonly extraYaml?: string;
}

export interface RunningSidecar {
  readonly proc: Started;
  readonly adminPort: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly configFile: string;
  readonly policyFile: string;
  readiness(): Promise<{ status: number; body: string }>;
  metrics(): Promise<string>;
}

/** Write the config for `spec` into `dir` and start `tollgate sidecar run` with it (and `extraArgs`, e.g. `--workers 2`; waits for ready). */
export async function startSidecar(dir: string, ca: RunningTestCa, spec: SidecarSpec, extraArgs: readonly string[] = []): Promise<RunningSidecar> {
  const token = createJoinToken(ca.dir, spec.spiffeId);
  const policyFile = join(dir, `${spec.name}-policy.yaml`);
  if (spec.policy !== undefined) writeFileSync(policyFile, spec.policy);
  const lines = [
    'trustDomain: example.org',
    `ca: { address: "127.0.0.1:${ca.grpcPort}", bundleFile: ${JSON.stringify(join(ca.dir, 'bundle.pem'))} }`,
    `attestation: { joinToken: ${token} }`,
    `svid: { ttl: ${spec.ttl ?? '1h'} }`,
    'admin: { listen: "127.0.0.1:0" }',
  ];
  if (spec.inbound) {
    lines.push(`inbound:\n  - { listen: "127.0.0.1:0", appPort: ${spec.inbound.appPort}, proxyProtocol: ${spec.inbound.proxyProtocol ?? false} }`);
    lines.push(`policy: { file: ${JSON.stringify(policyFile)} }`);
  }
  if (spec.outbound) {
    lines.push(`outbound:\n  - { listen: "127.0.0.1:0", upstream: "127.0.0.1:${spec.outbound.upstreamPort}", spiffeId: ${spec.outbound.spiffeId} }`);
  }
  if (spec.extraYaml) lines.push(spec.extraYaml);
  const configFile = join(dir, `${spec.name}-sidecar.yaml`);
  writeFileSync(configFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  const proc = await startTollgate(['sidecar', 'run', '--config', configFile, ...extraArgs]);
  const ready = proc.ready as { admin_port: number; inbound: Array<{ port: number }>; outbound: Array<{ port: number }> };
  const adminPort = ready.admin_port;
  return {
    proc,
    adminPort,
    inboundPort: ready.inbound[0]?.port ?? 0,
    outboundPort: ready.outbound[0]?.port ?? 0,
    configFile,
    policyFile,
    async readiness() {
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      return { status: r.status, body: await r.text() };
    },
    async metrics() {
      return (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    },
  };
}

/** Value of one counter/gauge sample in Prometheus text, e.g. metricValue(text, 'x_total{a="b"}'). */
export function metricSample(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

/** spiffe://example.org/ns/shop/sa/<sa>: the identities the mesh tests use. */
export const shopId = (sa: string): string => `spiffe://example.org/ns/shop/sa/${sa}`;

/** A CA, an echo backend behind the orders sidecar (allow-list: web only), and web's sidecar calling orders. */
export interface WebOrdersMesh {
  readonly dir: string;
  /** The running CA; a test that restarts it puts the new one here so stop() stops it. */
  ca: RunningTestCa;
  readonly backend: TestBackend;
  readonly orders: RunningSidecar;
  readonly web: RunningSidecar;
  stop(): Promise<void>;
}

export async function startWebOrdersMesh(options: { caArgs?: string[]; ttl?: string; sidecarArgs?: string[] } = {}): Promise<WebOrdersMesh> {
  const tmp = tempDir();
  const parts: { ca?: RunningTestCa; backend?: TestBackend; orders?: RunningSidecar; web?: RunningSidecar } = {};
  // Stops whatever has started, also when the start itself fails half-way.
  const stop = async (): Promise<void> => {
    await parts.web?.proc.stop();
    await parts.orders?.proc.stop();
    await parts.backend?.close();
    await parts.ca?.stop();
    tmp.cleanup();
  };
  try {
    initCa(join(tmp.dir, 'ca'));
    const ca = (parts.ca = await startCa(join(tmp.dir, 'ca'), options.caArgs ?? []));
    const backend = (parts.backend = await startBackend());
    const ttl = options.ttl ? { ttl: options.ttl } : {};
    const args = options.sidecarArgs ?? [];
    const orders = (parts.orders = await startSidecar(tmp.dir, ca, {
      name: 'orders',
      spiffeId: shopId('orders'),
      ...ttl,
      inbound: { appPort: backend.port },
      policy: `ports:\n  "${backend.port}":\n    allow: [${shopId('web')}]\n`,
    }, args));
    const web = (parts.web = await startSidecar(tmp.dir, ca, { name: 'web', spiffeId: shopId('web'), ...ttl, outbound: { upstreamPort: orders.inboundPort, spiffeId: shopId('orders') } }, args));
    return {
      dir: tmp.dir,
      get ca() {
        return parts.ca!;
      },
      set ca(c: RunningTestCa) {
        parts.ca = c;
      },
      backend,
      orders,
      web,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
