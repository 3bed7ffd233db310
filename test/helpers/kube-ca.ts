// The CA on the Kubernetes store against a real API server: the chart's own RBAC for the CA
// (rendered by helm from charts/tollgate and applied, nothing added), a TokenRequest token of the
// CA's ServiceAccount as its credential, `tollgate ca serve --store kubernetes` processes, and the
// store as the test's own code sees it (for join tokens and for reading the Secret).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubernetesStore } from '../../ca/kube-store.ts';
import { systemClock } from '../../common/clock.ts';
import type { CaClient } from '../../common/ca-client.ts';
import { KubeClient as ApiClient } from '../../common/kube-client.ts';
import { connectCa } from '../../pki/ca-connect.ts';
import { pemToCertDers } from '../../pki/pem.ts';
import { after, before } from 'node:test';
import { renderObjects } from './chart.ts';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from './kube-cluster.ts';
import { startTollgate, tempDir, type Started } from './procs.ts';

export const CA_NAMESPACE = 'tollgate-system';
export const CA_SERVICE_ACCOUNT = 'tollgate-ca';
const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

/**
 * Exactly the chart's identity and RBAC for the CA in `namespace` (helm template of charts/tollgate
 * with `set`), applied to the cluster; returns a file holding a token of the CA's ServiceAccount.
 */
export async function installChartRbac(cluster: KubeCluster, o: { namespace?: string; dir: string; set?: string[] }): Promise<{ tokenFile: string; token: string; objects: Array<{ kind: string; metadata: { name: string } }> }> {
  const namespace = o.namespace ?? CA_NAMESPACE;
  await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  const objects = renderObjects({ namespace, set: o.set ?? [] }).filter((x) => RBAC_KINDS.has(x.kind));
  for (const obj of objects) await cluster.apply(obj as never);
  const { token } = await cluster.tokenRequest({ namespace, serviceAccount: CA_SERVICE_ACCOUNT, expirationSeconds: 3600 });
  const tokenFile = join(o.dir, `ca-token-${namespace}`);
  writeFileSync(tokenFile, token, { mode: 0o600 });
  return { tokenFile, token, objects: objects as never };
}

/** The flags that point a `tollgate ca ...` command at the Kubernetes store with the CA's token. */
export function kubeStoreFlags(cluster: KubeCluster, o: { tokenFile: string; namespace?: string }): string[] {
  return ['--store', 'kubernetes', '--namespace', o.namespace ?? CA_NAMESPACE, '--k8s-api-server', cluster.server, '--k8s-ca-file', cluster.caFile, '--k8s-token-file', o.tokenFile];
}

/** The store as a test process sees it, with the CA's own credential. */
export function kubeStoreFor(cluster: KubeCluster, o: { token: string; namespace?: string }): { store: KubernetesStore; client: ApiClient } {
  const client = new ApiClient({ server: cluster.server, caPem: cluster.caPem, token: () => o.token });
  return { client, store: new KubernetesStore({ client, namespace: o.namespace ?? CA_NAMESPACE, clock: systemClock }) };
}

export interface KubeCa {
  readonly proc: Started;
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly serverId: string;
  readonly auditFile: string;
  auditLines(): Array<Record<string, unknown>>;
  /** A gRPC client trusting `roots`. */
  client(roots: readonly Buffer[]): CaClient;
  status(): Promise<Record<string, any>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `tollgate ca serve --store kubernetes` on loopback ports, auditing to `<dir>/<name>.audit`. */
export async function startKubeCa(cluster: KubeCluster, o: { tokenFile: string; dir: string; name: string; namespace?: string; extra?: string[] }): Promise<KubeCa> {
  const auditFile = join(o.dir, `${o.name}.audit`);
  const proc = await startTollgate(['ca', 'serve', ...kubeStoreFlags(cluster, o), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit-log', auditFile, ...(o.extra ?? [])], 60_000);
  const grpcPort = proc.ready.grpc_port as number;
  const adminPort = proc.ready.admin_port as number;
  const clients: CaClient[] = [];
  return {
    proc,
    grpcPort,
    adminPort,
    serverId: proc.ready.spiffe_id as string,
    auditFile,
    auditLines: () => readAudit(auditFile),
    client(roots) {
      const c = connectCa({ address: `127.0.0.1:${grpcPort}`, roots, serverId: proc.ready.spiffe_id as string, deadlineMs: 15_000 });
      clients.push(c);
      return c;
    },
    status: async () => (await fetch(`http://127.0.0.1:${adminPort}/status`)).json() as Promise<Record<string, any>>,
    async stop(signal) {
      for (const c of clients) c.close();
      return proc.stop(signal);
    },
  };
}

export function readAudit(file: string): Array<Record<string, unknown>> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The DER roots of a bundle PEM. */
export const rootsOf = (pem: string): Buffer[] => pemToCertDers(pem);

/**
 * A test file's cluster with the chart's RBAC for the CA in tollgate-system: started before the
 * file's tests (unless the tier is missing), then `setup` (Node 20 runs a file's `before` hooks
 * concurrently, so what needs the cluster goes here); stopped after them with every CA handed to
 * `track`.
 */
export function kubeCaForFile(o: { prefix: string; set?: string[]; setup?: () => Promise<void> }): {
  readonly cluster: KubeCluster;
  readonly dir: string;
  readonly rbac: Awaited<ReturnType<typeof installChartRbac>>;
  track<T extends { stop(): Promise<unknown> }>(ca: T): T;
} {
  const state: { cluster?: KubeCluster; tmp?: ReturnType<typeof tempDir>; rbac?: Awaited<ReturnType<typeof installChartRbac>> } = {};
  const tracked: Array<{ stop(): Promise<unknown> }> = [];
  before(async () => {
    if (kubeTierMissing()) return;
    state.tmp = tempDir(o.prefix);
    state.cluster = await startKubeCluster();
    state.rbac = await installChartRbac(state.cluster, { dir: state.tmp.dir, ...(o.set ? { set: o.set } : {}) });
    await o.setup?.();
  });
  after(async () => {
    await Promise.all(tracked.map((c) => c.stop()));
    await state.cluster?.stop();
    state.tmp?.cleanup();
  });
  return {
    get cluster() {
      return state.cluster!;
    },
    get dir() {
      return state.tmp!.dir;
    },
    get rbac() {
      return state.rbac!;
    },
    track(ca) {
      tracked.push(ca);
      return ca;
    },
  };
}
