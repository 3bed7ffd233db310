// Real `tollgate sidecar run` processes next to a real CA (test/helpers/ca-fixture.ts). Backends that
// count connections and bytes are in test/helpers/sidecar-fixture.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createJoinToken, initCa, startCa, type RunningTestCa } from './ca-fixture.ts';
import { k8sTokenIssuer } from './k8s-token.ts';
import { startTollgate, tempDir, type Started } from './procs.ts';
import { startBackend, type TestBackend } from './sidecar-fixture.ts';
import { sidecarProcessEnv } from '../../common/sidecar-runtime.ts';

export interface SidecarSpec {
  readonly name: string;
  readonly spiffeId: string;
  readonly inbound?: { appPort: number; proxyProtocol?: boolean };
  /** Policy text for the inbound side (written to <name>-policy.yaml). */
  readonly policy?: string;
  readonly outbound?: { upstreamPort: number; spiffeId: string };
  readonly ttl?: string;
  /** Attest with this projected service-account token file instead of a join token. */
  readonly tokenFile?: string;
  readonly extraYaml?: string;
  /** The process's environment; default: the sidecar's memory settings on top of this process's, as the injector starts it. */
  readonly env?: NodeJS.ProcessEnv;
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
  const attestation = spec.tokenFile ? `tokenFile: ${JSON.stringify(spec.tokenFile)}` : `joinToken: ${createJoinToken(ca.dir, spec.spiffeId)}`;
  const policyFile = join(dir, `${spec.name}-policy.yaml`);
  if (spec.policy !== undefined) writeFileSync(policyFile, spec.policy);
  const lines = [
    'trustDomain: example.org',
    `ca: { address: "127.0.0.1:${ca.grpcPort}", bundleFile: ${JSON.stringify(join(ca.dir, 'bundle.pem'))} }`,
    `attestation: { ${attestation} }`,
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
  const proc = await startTollgate(['sidecar', 'run', '--config', configFile, ...extraArgs], undefined, undefined, spec.env ?? sidecarProcessEnv());
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

/** What sits behind the orders sidecar: anything listening on 127.0.0.1:port that can be closed. */
export interface MeshBackend {
  readonly port: number;
  close(): Promise<void>;
}

/** How a mesh's CA is restarted: `signal` stops it (SIGTERM by default), `downMs` passes before the new one starts. */
export interface CaRestart {
  readonly signal?: NodeJS.Signals;
  readonly downMs?: number;
}

/** A CA, a backend behind the orders sidecar (allow-list: web only; an echo unless told otherwise), and web's sidecar calling orders. */
export interface WebOrdersMesh<B extends MeshBackend = TestBackend> {
  readonly dir: string;
  /** The running CA; a test that restarts it puts the new one here so stop() stops it. */
  ca: RunningTestCa;
  /** Stop the CA and start it again on the same store, gRPC and admin addresses and flags. */
  restartCa(how?: CaRestart): Promise<RunningTestCa>;
  readonly backend: B;
  readonly orders: RunningSidecar;
  readonly web: RunningSidecar;
  stop(): Promise<void>;
}

export interface WebOrdersMeshOptions<B extends MeshBackend = TestBackend> {
  /** Extra `ca init` flags, e.g. lifetimes. */
  initArgs?: string[];
  caArgs?: string[];
  ttl?: string;
  sidecarArgs?: string[];
  /** web attests with a Kubernetes service-account token file (the CA verifies it offline against a JWKS) instead of a join token. */
  webK8sToken?: boolean;
  /** Starts the app behind the orders sidecar; default the echo backend (startBackend). */
  backend?: () => Promise<B>;
  /** orders too (a sidecar whose SVID expired can come back only with a token it can re-present). */
  ordersK8sToken?: boolean;
}

export async function startWebOrdersMesh<B extends MeshBackend = TestBackend>(options: WebOrdersMeshOptions<B> = {}): Promise<WebOrdersMesh<B>> {
  const tmp = tempDir();
  const parts: { ca?: RunningTestCa; backend?: B; orders?: RunningSidecar; web?: RunningSidecar } = {};
  // Stops whatever has started, also when the start itself fails half-way.
  const stop = async (): Promise<void> => {
    await parts.web?.proc.stop();
    await parts.orders?.proc.stop();
    await parts.backend?.close();
    await parts.ca?.stop();
    tmp.cleanup();
  };
  try {
    initCa(join(tmp.dir, 'ca'), 'example.org', options.initArgs ?? []);
    const k8s = options.webK8sToken || options.ordersK8sToken ? await k8sTokenIssuer(tmp.dir) : undefined;
    const k8sToken = async (sa: string, wanted: boolean | undefined): Promise<{ tokenFile?: string }> =>
      k8s && wanted ? { tokenFile: await k8s.writeToken(join(tmp.dir, `${sa}.token`), { namespace: 'shop', serviceAccount: sa, ttlSeconds: 3600 }) } : {};
    const caArgs = [...(options.caArgs ?? []), ...(k8s?.caArgs ?? [])];
    const ca = (parts.ca = await startCa(join(tmp.dir, 'ca'), caArgs));
    const backend = (parts.backend = await (options.backend ?? (startBackend as unknown as () => Promise<B>))());
    const ttl = options.ttl ? { ttl: options.ttl } : {};
    const args = options.sidecarArgs ?? [];
    const orders = (parts.orders = await startSidecar(tmp.dir, ca, {
      name: 'orders',
      spiffeId: shopId('orders'),
      ...ttl,
      ...(await k8sToken('orders', options.ordersK8sToken)),
      inbound: { appPort: backend.port },
      policy: `ports:\n  "${backend.port}":\n    allow: [${shopId('web')}]\n`,
    }, args));
    const tokenFile = await k8sToken('web', options.webK8sToken);
    const web = (parts.web = await startSidecar(tmp.dir, ca, { name: 'web', spiffeId: shopId('web'), ...ttl, ...tokenFile, outbound: { upstreamPort: orders.inboundPort, spiffeId: shopId('orders') } }, args));
    return {
      dir: tmp.dir,
      get ca() {
        return parts.ca!;
      },
      set ca(c: RunningTestCa) {
        parts.ca = c;
      },
      async restartCa(how: CaRestart = {}) {
        const old = parts.ca!;
        await old.stop(how.signal);
        if (how.downMs) await new Promise((r) => setTimeout(r, how.downMs));
        parts.ca = await startCa(old.dir, [...caArgs, '--listen', `127.0.0.1:${old.grpcPort}`, '--admin', `127.0.0.1:${old.adminPort}`]);
        return parts.ca;
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
