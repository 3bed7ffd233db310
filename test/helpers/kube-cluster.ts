// A real Kubernetes control plane on loopback for the real-API-server test tier (test/kube/): etcd,
// kube-apiserver v1.20 and, on request, kube-controller-manager, from the directory
// scripts/kube-bin.sh fills (TOLLGATE_KUBE_BIN, else $TOLLGATE_KUBE_CACHE/bin, else
// /var/cache/tollgate-kube/bin). Every cluster has its own temporary directory and ports picked at
// run time, so test files running in parallel never share one. There is no scheduler and no kubelet:
// pods stay Pending, which is enough to see what admission did and to bind tokens to them.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, ok, type KubeIdentity } from './kube-client.ts';
import { makeClientCert, makeKubePki, type KubePki } from './kube-pki.ts';
import { awaitReady, Component, pollUntil, removeOnExit, startOnFreePorts } from './kube-procs.ts';
import { kubeTool, type KubeTool } from './kube-tools.ts';
import type { CliResult } from './procs.ts';

/** The service-account token issuer and the audiences the API server accepts. */
export const KUBE_ISSUER = 'https://kubernetes.default.svc';
export const KUBE_API_AUDIENCES = [KUBE_ISSUER, 'tollgate-ca'] as const;
const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;

/** Where the tier's binaries are looked for: TOLLGATE_KUBE_BIN, else the cache scripts/kube-bin.sh fills. */
function kubeBinCandidate(): string {
  return process.env.TOLLGATE_KUBE_BIN || join(process.env.TOLLGATE_KUBE_CACHE || '/var/cache/tollgate-kube', 'bin');
}

/** The directory holding the three binaries, or undefined. */
export function kubeBinDir(): string | undefined {
  const dir = kubeBinCandidate();
  try {
    for (const b of BINARIES) accessSync(join(dir, b), constants.X_OK);
    return dir;
  } catch {
    return undefined;
  }
}

/** Why the tier cannot run here, or undefined when it can: pass as `test(name, { skip }, fn)`. */
export function kubeTierMissing(): string | undefined {
  if (!kubeBinDir()) return `kube-apiserver, kube-controller-manager and etcd are not in ${kubeBinCandidate()} (run scripts/kube-bin.sh as root)`;
  if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status !== 0) return '`openssl` is not on the PATH';
  return undefined;
}

export interface KubeClusterOptions {
  /**
   * Also run kube-controller-manager (Deployments → ReplicaSets → Pods, default ServiceAccounts).
   * `controllers` is its --controllers list, default ['*']; e.g. ['*', '-serviceaccount-token'] turns
   * the token controller off (no token Secrets; the controllers then use the admin credential).
   */
  controllerManager?: boolean | { controllers?: string[] };
  /** Extra kube-apiserver flags. */
  apiServerArgs?: string[];
  /** Bound for each component to become ready; default 90 s (the machine is shared). */
  timeoutMs?: number;
}

export interface TokenRequestOptions {
  namespace: string;
  serviceAccount: string;
  /** Default: the API server's own audience (a token the API accepts as a credential). */
  audience?: string | string[];
  /** The server's minimum is 600. Default 3600. */
  expirationSeconds?: number;
  /** Bind the token to this Pod (name, or name and uid). */
  boundPod?: string | { name: string; uid?: string };
}

export interface KubeCluster {
  /** https://127.0.0.1:PORT */
  readonly server: string;
  /** PEM file (and text) of the cluster CA that verifies the API server. */
  readonly caFile: string;
  readonly caPem: string;
  /** Admin kubeconfig (system:masters) for kubectl and helm. */
  readonly kubeconfig: string;
  /** The service-account signing key (PEM): for tests that forge tokens "of this cluster". */
  readonly serviceAccountKeyFile: string;
  readonly issuer: string;
  /** The cluster's temporary directory (removed by stop()). */
  readonly dir: string;
  /** The admin's API client; request/get/post/put/patch/delete/apply/create/read/remove below are its. */
  readonly admin: KubeClient;
  readonly request: KubeClient['request'];
  readonly get: KubeClient['get'];
  readonly post: KubeClient['post'];
  readonly put: KubeClient['put'];
  readonly patch: KubeClient['patch'];
  readonly delete: KubeClient['delete'];
  readonly apply: KubeClient['apply'];
  readonly create: KubeClient['create'];
  readonly read: KubeClient['read'];
  readonly remove: KubeClient['remove'];
  /** Milliseconds from spawn to ready, per component. */
  readonly startMs: Readonly<Record<string, number>>;
  /** A token minted by the real TokenRequest API. */
  tokenRequest(options: TokenRequestOptions): Promise<{ token: string; expirationTimestamp: string }>;
  /** A client authenticated by a client certificate for `user` in `groups` (no rights until RBAC grants some). */
  clientFor(user: string, groups?: readonly string[]): KubeClient;
  /** A client authenticated by a bearer token (e.g. from tokenRequest). */
  clientWithToken(token: string): KubeClient;
  /** Poll `fn` until it returns something truthy, and return that; throws after timeoutMs (default 30 s). */
  waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs?: number): Promise<NonNullable<T>>;
  /** Run kubectl 1.33 (test/helpers/kube-tools.ts) with KUBECONFIG set to the admin's; `--kubeconfig` overrides it. */
  kubectl(args: string[], options?: { input?: string }): CliResult;
  /** Run helm v4 likewise, with its config, cache and data in the cluster's directory. */
  helm(args: string[], options?: { input?: string }): CliResult;
  /** Resident memory per component, in bytes. */
  rss(): Record<string, number>;
  /** The last lines of a component's log (etcd, kube-apiserver, kube-controller-manager). */
  logTail(component: string, lines?: number): string;
  stop(): Promise<void>;
}

export async function startKubeCluster(options: KubeClusterOptions = {}): Promise<KubeCluster> {
  const missing = kubeTierMissing();
  if (missing) throw new Error(`cannot start a Kubernetes API server: ${missing}`);
  const bin = kubeBinDir()!;
  const timeoutMs = options.timeoutMs ?? 90_000;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-kube-'));
  removeOnExit(dir);
  const components: Component[] = [];
  const clients: KubeClient[] = [];
  const stop = async (): Promise<void> => {
    for (const c of clients) c.close();
    // Controllers first, etcd last: each keeps talking to the one below it until stopped.
    for (const c of [...components].reverse()) await c.stop();
    rmSync(dir, { recursive: true, force: true });
    removeOnExit(dir, false);
  };
  try {
    const pki = makeKubePki(dir);
    const startMs: Record<string, number> = {};

    const etcd = await startOnFreePorts(
      'etcd',
      2,
      ([client, peer]) => {
        const c = `http://127.0.0.1:${client}`;
        const p = `http://127.0.0.1:${peer}`;
        return Component.start('etcd', join(bin, 'etcd'), [
          '--name=default', `--data-dir=${join(dir, 'etcd-data')}`, `--listen-client-urls=${c}`, `--advertise-client-urls=${c}`,
          `--listen-peer-urls=${p}`, `--initial-advertise-peer-urls=${p}`, `--initial-cluster=default=${p}`, '--unsafe-no-fsync',
        ], dir);
      },
      async ([client]) => {
        const res = await fetch(`http://127.0.0.1:${client}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      },
      timeoutMs,
    );
    components.push(etcd.component);
    startMs.etcd = etcd.ms;

    const caPem = readFileSync(pki.caCert, 'utf8');
    const adminCert = makeClientCert(pki, 'tollgate-test-admin', ['system:masters']);
    let admin: KubeClient | undefined;
    const api = await startOnFreePorts(
      'kube-apiserver',
      1,
      ([port]) => {
        admin?.close();
        admin = new KubeClient({ server: `https://127.0.0.1:${port}`, caPem, identity: { cert: adminCert }, kubeconfigFile: join(dir, 'admin.kubeconfig') });
        return Component.start('kube-apiserver', join(bin, 'kube-apiserver'), apiServerArgs(pki, dir, etcd.ports[0]!, port!, options.apiServerArgs ?? []), dir);
      },
      async () => (await admin!.get('/readyz')).status === 200,
      timeoutMs,
    );
    components.push(api.component);
    startMs['kube-apiserver'] = api.ms;
    clients.push(admin!);
    const server = admin!.server;

    const identityClient = (identity: KubeIdentity): KubeClient => {
      const c = new KubeClient({ server, caPem, identity, kubeconfigFile: join(dir, `client-${clients.length}.kubeconfig`) });
      clients.push(c);
      return c;
    };

    const runTool = (tool: KubeTool, args: string[], o: { input?: string } = {}): CliResult => {
      const env = {
        ...process.env,
        KUBECONFIG: admin!.kubeconfig,
        HELM_CONFIG_HOME: join(dir, 'helm/config'),
        HELM_CACHE_HOME: join(dir, 'helm/cache'),
        HELM_DATA_HOME: join(dir, 'helm/data'),
      };
      const r = spawnSync(kubeTool(tool), args, { encoding: 'utf8', input: o.input ?? '', timeout: 120_000, env });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr || (r.error?.message ?? '') };
    };

    const cm = options.controllerManager;
    if (cm) {
      const controllers = typeof cm === 'object' && cm.controllers ? cm.controllers : ['*'];
      const runs = (name: string): boolean => (controllers.includes('*') || controllers.includes(name)) && !controllers.includes(`-${name}`);
      const kcm = Component.start('kube-controller-manager', join(bin, 'kube-controller-manager'), [
        `--kubeconfig=${admin!.kubeconfig}`, '--bind-address=127.0.0.1', '--secure-port=0', '--port=0', '--leader-elect=false',
        // As in a real cluster, each controller acts as its own ServiceAccount under the bootstrap RBAC
        // roles; that needs the token controller to mint their token Secrets. Without it, they act as admin.
        `--use-service-account-credentials=${runs('serviceaccount-token')}`, `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCert}`, `--controllers=${controllers.join(',')}`,
      ], dir);
      components.push(kcm);
      // Its health port is off (the default is a fixed port that parallel clusters would share), so
      // ready means its first visible work: the default namespace's ServiceAccount.
      startMs['kube-controller-manager'] = await awaitReady(
        kcm,
        async () => !runs('serviceaccount') || (await admin!.get('/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
        timeoutMs,
      );
    }

    const cluster: KubeCluster = {
      server,
      caFile: pki.caCert,
      caPem,
      kubeconfig: admin!.kubeconfig,
      serviceAccountKeyFile: pki.saKey,
      issuer: KUBE_ISSUER,
      dir,
      admin: admin!,
      request: admin!.request.bind(admin),
      get: admin!.get.bind(admin),
      post: admin!.post.bind(admin),
      put: admin!.put.bind(admin),
      patch: admin!.patch.bind(admin),
      delete: admin!.delete.bind(admin),
      apply: admin!.apply.bind(admin),
      create: admin!.create.bind(admin),
      read: admin!.read.bind(admin),
      remove: admin!.remove.bind(admin),
      startMs,
      tokenRequest: (o) => tokenRequest(admin!, o),
      clientFor: (user, groups = []) => identityClient({ cert: makeClientCert(pki, user, groups) }),
      clientWithToken: (token) => identityClient({ token }),
      waitFor: (fn, what, ms = 30_000) => pollUntil(fn, what, ms),
      kubectl: (args, o) => runTool('kubectl', args, o),
      helm: (args, o) => runTool('helm', args, o),
      rss: () => Object.fromEntries(components.map((c) => [c.name, rssBytes(c.proc.pid)])),
      logTail: (name, lines) => components.find((c) => c.name === name)?.tail(lines) ?? `(no component ${name})`,
      stop,
    };
    return cluster;
  } catch (e) {
    await stop();
    throw e;
  }
}

function apiServerArgs(pki: KubePki, dir: string, etcdPort: number, port: number, extra: string[]): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${port}`, `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${pki.serverCert}`, `--tls-private-key-file=${pki.serverKey}`, `--client-ca-file=${pki.caCert}`,
    `--service-account-issuer=${KUBE_ISSUER}`, `--service-account-key-file=${pki.saPub}`, `--service-account-signing-key-file=${pki.saKey}`,
    `--api-audiences=${KUBE_API_AUDIENCES.join(',')}`,
    '--service-cluster-ip-range=10.0.0.0/24', '--authorization-mode=RBAC', '--allow-privileged=true', '--profiling=false',
    // Without the ServiceAccount admission plugin, pods need no token Secret (there is no kubelet to
    // mount one) and keep exactly the serviceAccountName a test gives them.
    '--disable-admission-plugins=ServiceAccount',
    '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
    // Never dial a Service's ClusterIP (10.0.0.x): no cluster network exists here, and such a packet
    // would leave the machine. With aggregator routing the server resolves a Service (e.g. a
    // Service-based webhook) through its Endpoints, which in these tests are empty or on loopback.
    '--enable-aggregator-routing=true',
    ...extra,
  ];
}

async function tokenRequest(admin: KubeClient, o: TokenRequestOptions): Promise<{ token: string; expirationTimestamp: string }> {
  const audiences = o.audience === undefined ? [KUBE_ISSUER] : Array.isArray(o.audience) ? o.audience : [o.audience];
  const pod = typeof o.boundPod === 'string' ? { name: o.boundPod } : o.boundPod;
  const spec = {
    audiences,
    expirationSeconds: o.expirationSeconds ?? 3600,
    ...(pod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) } } : {}),
  };
  const path = `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/serviceaccounts/${encodeURIComponent(o.serviceAccount)}/token`;
  const res = await admin.post<{ status: { token: string; expirationTimestamp: string } }>(path, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec });
  return ok(res, `TokenRequest for ${o.namespace}/${o.serviceAccount}`).status;
}

function rssBytes(pid: number | undefined): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
