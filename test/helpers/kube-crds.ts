// CustomResourceDefinitions that the chart's optional objects need, for the real-API-server tier.
import type { KubeObject } from './kube-client.ts';
import type { KubeCluster } from './kube-cluster.ts';

// The Prometheus Operator's ServiceMonitor kind (monitoring.coreos.com/v1), reduced to the fields the
// chart renders: the full CRD is not reachable here. The server publishes this schema in its OpenAPI,
// so helm and kubectl refuse a ServiceMonitor field it does not name (seen: 'unknown field "jobLabel"
// in com.coreos.monitoring.v1.ServiceMonitor.spec' with jobLabel left out); the values themselves are
// checked against the upstream schema in test/helpers/kube-schema.ts.
const str = { type: 'string' };
export const serviceMonitorCrd: KubeObject = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'servicemonitors.monitoring.coreos.com' },
  spec: {
    group: 'monitoring.coreos.com',
    scope: 'Namespaced',
    names: { kind: 'ServiceMonitor', listKind: 'ServiceMonitorList', plural: 'servicemonitors', singular: 'servicemonitor' },
    versions: [{
      name: 'v1', served: true, storage: true,
      schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', required: ['selector', 'endpoints'], properties: {
        jobLabel: str,
        namespaceSelector: { type: 'object', properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: str } } },
        selector: { type: 'object', properties: { matchLabels: { type: 'object', additionalProperties: str } } },
        endpoints: { type: 'array', items: { type: 'object', properties: {
          port: str, path: str, scheme: { type: 'string', enum: ['http', 'https'] }, interval: str, scrapeTimeout: str,
        } } },
      } } } } },
    }],
  },
};

/** Apply a CRD and wait until the server serves its kind (condition Established). */
export async function applyCrd(cluster: KubeCluster, crd: KubeObject): Promise<void> {
  await cluster.apply(crd);
  await cluster.waitFor(async () => {
    const conditions = ((await cluster.read(crd)) as { status?: { conditions?: { type: string; status: string }[] } } | undefined)?.status?.conditions;
    return conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  }, `CustomResourceDefinition ${crd.metadata.name} to be established`);
}
