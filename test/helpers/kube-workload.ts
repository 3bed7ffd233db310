// Objects the real-API-server tests keep making: a workload (namespace, ServiceAccount, Pods that
// stay Pending: there is no scheduler, or a Deployment) and the CA's own ServiceAccount with exactly the RBAC the
// chart grants it for attestation (create tokenreviews).
import type { KubeObject } from './kube-client.ts';
import type { KubeCluster } from './kube-cluster.ts';

/** A Pod running as `serviceAccount`; its image is never pulled (no kubelet). */
export function podFor(namespace: string, serviceAccount: string, name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: serviceAccount } },
    spec: { serviceAccountName: serviceAccount, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
  };
}

/** A Deployment named like its ServiceAccount, whose Pods (labelled app=<serviceAccount>) run as it. */
export function deploymentFor(namespace: string, serviceAccount: string, o: { replicas?: number; annotations?: Record<string, string>; ports?: number[] } = {}): KubeObject {
  const app = { name: 'app', image: 'registry.invalid/app:1', ...(o.ports ? { ports: o.ports.map((containerPort) => ({ containerPort })) } : {}) };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: serviceAccount, namespace },
    spec: {
      replicas: o.replicas ?? 1,
      selector: { matchLabels: { app: serviceAccount } },
      template: { metadata: { labels: { app: serviceAccount }, ...(o.annotations ? { annotations: o.annotations } : {}) }, spec: { serviceAccountName: serviceAccount, containers: [app] } },
    },
  };
}

/** Namespace, ServiceAccount and Pods (idempotent: server-side apply). */
export async function workload(cluster: KubeCluster, namespace: string, serviceAccount: string, pods: string[] = []): Promise<void> {
  await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await cluster.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount, namespace } });
  for (const p of pods) await cluster.apply(podFor(namespace, serviceAccount, p));
}

export const TOKEN_REVIEWER_ROLE = 'tollgate-tokenreview';

/**
 * Make the CA's ServiceAccount, bind it to a ClusterRole that allows `create` on `tokenreviews` and
 * nothing else, and return a token for it (audience: the API server) for the CA's own API calls.
 */
export async function grantTokenReview(cluster: KubeCluster, sa: { namespace: string; serviceAccount: string }): Promise<string> {
  await workload(cluster, sa.namespace, sa.serviceAccount);
  await cluster.apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: TOKEN_REVIEWER_ROLE },
    rules: [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }],
  });
  await cluster.apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `${TOKEN_REVIEWER_ROLE}-${sa.namespace}-${sa.serviceAccount}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: TOKEN_REVIEWER_ROLE },
    subjects: [{ kind: 'ServiceAccount', name: sa.serviceAccount, namespace: sa.namespace }],
  });
  return (await cluster.tokenRequest({ namespace: sa.namespace, serviceAccount: sa.serviceAccount })).token;
}
