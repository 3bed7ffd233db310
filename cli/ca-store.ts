// Which store a `tollgate ca ...` command works on, from its flags: a directory (--dir) or the
// Kubernetes store (--store kubernetes: a Secret in --namespace, reached with the pod's own
// credentials, or with --k8s-api-server and its credential flags). Wiring only: ca/store.ts and
// ca/kube-store.ts hold the logic.
import type { Command } from 'commander';
import type { KubernetesStore } from '../ca/kube-store.ts';
import type { DirectoryStore } from '../ca/store.ts';
import type { Clock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import type { KubeClient } from '../common/kube-client.ts';
import type { Logger } from '../common/log.ts';

export interface KubeFlags {
  k8sApiServer?: string;
  k8sCaFile?: string;
  k8sTokenFile?: string;
  k8sClientCert?: string;
  k8sClientKey?: string;
}

export interface StoreFlags extends KubeFlags {
  store?: string;
  dir?: string;
  namespace?: string;
  secret?: string;
}

export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const DEFAULT_NAMESPACE = 'tollgate-system';

/** --k8s-api-server and its credentials (the pod's own when it is not given). */
export function addKubeOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--k8s-api-server <url>', `the Kubernetes API server (${what}); default in a pod: its own`)
    .option('--k8s-ca-file <file>', 'CA bundle of the API server', `${SA_DIR}/ca.crt`)
    .option('--k8s-token-file <file>', 'the bearer token for the API server', `${SA_DIR}/token`)
    .option('--k8s-client-cert <file>', 'authenticate to --k8s-api-server with this client certificate instead of the token (tests)')
    .option('--k8s-client-key <file>', 'the key of --k8s-client-cert');
}

/** --store, --dir, --namespace, --secret (and, unless the command has them already, the API flags). */
export function addStoreOptions(cmd: Command, o: { kubeFlags: boolean; dirHelp?: string }): Command {
  cmd
    .option('--store <kind>', 'where the CA keeps its state: directory (--dir) or kubernetes (Secret --secret in --namespace)', 'directory')
    .option('--dir <dir>', o.dirHelp ?? 'CA store directory (with --store directory)')
    .option('--namespace <ns>', `the CA's own namespace: where --store kubernetes keeps its objects; ca serve never injects it (default: the pod's own, else ${DEFAULT_NAMESPACE})`)
    .option('--secret <name>', 'with --store kubernetes: the Secret holding the authorities', 'tollgate-ca');
  return o.kubeFlags ? addKubeOptions(cmd, 'for --store kubernetes') : cmd;
}

/** A client for the API server named by the flags, else the pod's own. */
export async function kubeClientFromFlags(o: KubeFlags): Promise<KubeClient> {
  const { KubeClient, inClusterOptions, kubeClientOptions } = await import('../common/kube-client.ts');
  if (!o.k8sApiServer) return new KubeClient(inClusterOptions());
  const cert = o.k8sClientCert !== undefined || o.k8sClientKey !== undefined;
  return new KubeClient(kubeClientOptions({
    server: o.k8sApiServer,
    ...(o.k8sCaFile !== undefined ? { caFile: o.k8sCaFile } : {}),
    ...(cert ? { certFile: o.k8sClientCert ?? '', keyFile: o.k8sClientKey ?? '' } : o.k8sTokenFile !== undefined ? { tokenFile: o.k8sTokenFile } : {}),
  }));
}

/** The CA's namespace: --namespace, else the pod's, else tollgate-system. */
export async function namespaceFromFlags(o: { namespace?: string }): Promise<string> {
  const { inClusterNamespace } = await import('../common/kube-client.ts');
  return o.namespace ?? inClusterNamespace() ?? DEFAULT_NAMESPACE;
}

export type OpenedStore = { kind: 'directory'; store: DirectoryStore; close(): void } | { kind: 'kubernetes'; store: KubernetesStore; namespace: string; close(): void };

/** The store the flags name; `--dir` is required for the directory store. */
export async function openStore(o: StoreFlags, deps: { clock: Clock; logger?: Logger }): Promise<OpenedStore> {
  const kind = o.store ?? 'directory';
  if (kind === 'directory') {
    if (!o.dir) throw new TollgateError('TG_USAGE', 'say where the CA is: --dir DIR, or --store kubernetes (with --namespace NS)');
    const { DirectoryStore } = await import('../ca/store.ts');
    return { kind, store: new DirectoryStore({ dir: o.dir }), close: () => undefined };
  }
  if (kind !== 'kubernetes') throw new TollgateError('TG_USAGE', `--store ${JSON.stringify(kind)}: say directory or kubernetes`);
  if (o.dir) throw new TollgateError('TG_USAGE', '--dir is for --store directory; the Kubernetes store lives in a Secret (--namespace, --secret)');
  const [{ KubernetesStore }, client, namespace] = await Promise.all([import('../ca/kube-store.ts'), kubeClientFromFlags(o), namespaceFromFlags(o)]);
  const store = new KubernetesStore({ client, namespace, secretName: o.secret, clock: deps.clock, logger: deps.logger });
  return { kind, store, namespace, close: () => client.close() };
}

/** The flags that name this store again, for a command line printed to the operator. */
export function storeArgs(o: StoreFlags, opened: OpenedStore): string {
  if (opened.kind === 'directory') return `--dir ${o.dir}`;
  return `--store kubernetes --namespace ${opened.namespace}${o.secret && o.secret !== 'tollgate-ca' ? ` --secret ${o.secret}` : ''}`;
}
