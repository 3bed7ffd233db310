// What injection adds to a pod (CONTRACT.md names): the sidecar container tollgate-proxy with its
// config in TOLLGATE_SIDECAR_CONFIG, the capture init container tollgate-init, the projected token
// volume and the policy ConfigMap volume. Plain JSON objects in the Kubernetes v1 shape.
import { stringify } from 'yaml';
import { formatHostPort } from '../common/address.ts';
import { sidecarEnvVars } from '../common/sidecar-runtime.ts';
import type { InjectorConfig } from './config.ts';
import { Ports, type MeshAnnotations } from './annotations.ts';

export type Json = Record<string, unknown>;

export const Names = {
  proxy: 'tollgate-proxy',
  init: 'tollgate-init',
  tokenVolume: 'tollgate-token',
  policyVolume: 'tollgate-policy',
  /** iptables-legacy takes a lock in /run; a read-only root needs a writable /run for it. */
  xtablesVolume: 'tollgate-xtables-lock',
} as const;

/** The sidecar runs as this UID and GID; the capture rules exclude its traffic. */
export const SIDECAR_UID = 2102;
export const CONFIG_ENV = 'TOLLGATE_SIDECAR_CONFIG';
export const TOKEN_AUDIENCE = 'tollgate-ca';
export const TOKEN_DIR = '/var/run/secrets/tollgate';
export const TOKEN_FILE = `${TOKEN_DIR}/token`;
export const POLICY_DIR = '/etc/tollgate/policy';
export const POLICY_KEY = 'policy.yaml';
/** How long the <1.29 fallback's postStart hook holds the app back for the sidecar. */
export const WAIT_TIMEOUT = '60s';

export interface PartsInput {
  readonly config: InjectorConfig;
  readonly bundlePem: string;
  readonly mesh: MeshAnnotations;
}

/** Whether tollgate-init redirects the pod's inbound ports (capture iptables and at least one port). */
const captures = (mesh: MeshAnnotations): boolean => mesh.capture === 'iptables' && mesh.inboundPorts.length > 0;

/** The sidecar's YAML config (sidecar/config.ts reads it from TOLLGATE_SIDECAR_CONFIG). */
export function sidecarConfigYaml({ config, bundlePem, mesh }: PartsInput): string {
  const doc: Json = {
    trustDomain: config.trustDomain,
    ca: { address: config.caAddress, spiffeId: config.caSpiffeId, bundlePem },
    attestation: { tokenFile: TOKEN_FILE },
    inbound: mesh.inboundPorts.map((appPort, i) => ({ listen: `0.0.0.0:${Ports.firstInbound + i}`, appPort })),
    outbound: mesh.upstreams.map((u) => ({ listen: `127.0.0.1:${u.localPort}`, upstream: formatHostPort(u.address), spiffeId: u.spiffeId })),
    ...(mesh.policyConfigMap ? { policy: { file: `${POLICY_DIR}/${POLICY_KEY}` } } : {}),
    // The kubelet's probes come from outside the pod, so admin listens on every address.
    admin: { listen: `0.0.0.0:${Ports.admin}` },
    log: { level: config.logLevel },
    // Tells the sidecar whether tollgate-init redirects its ports: without capture it checks that the
    // app listens on loopback only, with capture the app's 0.0.0.0 is expected and not reported.
    capture: captures(mesh) ? 'iptables' : 'none',
  };
  return stringify(doc, { lineWidth: 0 });
}

const restricted = (): Json => ({
  runAsUser: SIDECAR_UID,
  runAsGroup: SIDECAR_UID,
  runAsNonRoot: true,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
});

const resources = (config: InjectorConfig): Json => JSON.parse(JSON.stringify(config.resources)) as Json;

const probe = (path: string, periodSeconds: number, failureThreshold: number): Json => ({
  httpGet: { path, port: Ports.admin },
  periodSeconds,
  failureThreshold,
  timeoutSeconds: 1,
});

/**
 * The sidecar container. Native (an init container with restartPolicy Always): its startup probe
 * holds every later container until it holds an SVID. Fallback (a regular container placed first):
 * a postStart hook that returns only once the sidecar is ready, which keeps the kubelet from
 * starting the next container until then.
 */
export function proxyContainer(input: PartsInput): Json {
  const { config, mesh } = input;
  return {
    name: Names.proxy,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    args: ['sidecar', 'run', '--config-env', CONFIG_ENV],
    ...(config.nativeSidecar ? { restartPolicy: 'Always' } : {}),
    // Config first (tests and tools read env[0]), then the memory settings (common/sidecar-runtime.ts).
    env: [{ name: CONFIG_ENV, value: sidecarConfigYaml(input) }, ...sidecarEnvVars()],
    ports: [{ name: 'tollgate-admin', containerPort: Ports.admin, protocol: 'TCP' }],
    // Two minutes to reach the CA and get the first SVID before the kubelet restarts the sidecar.
    startupProbe: probe('/readyz', 1, 120),
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    ...(config.nativeSidecar ? {} : { lifecycle: { postStart: { exec: { command: ['tollgate', 'sidecar', 'wait', '--admin', `127.0.0.1:${Ports.admin}`, '--timeout', WAIT_TIMEOUT] } } } }),
    resources: resources(config),
    securityContext: restricted(),
    volumeMounts: [
      { name: Names.tokenVolume, mountPath: TOKEN_DIR, readOnly: true },
      ...(mesh.policyConfigMap ? [{ name: Names.policyVolume, mountPath: POLICY_DIR, readOnly: true }] : []),
    ],
  };
}

/** The capture init container, or null when nothing is captured (capture none, or no inbound port). */
export function captureContainer({ config, mesh }: PartsInput): Json | null {
  if (!captures(mesh)) return null;
  const inbound = mesh.inboundPorts.map((p, i) => `${p}:${Ports.firstInbound + i}`).join(',');
  return {
    name: Names.init,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    args: ['capture', '--inbound', inbound, '--exclude-uid', String(SIDECAR_UID)],
    resources: resources(config),
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: Names.xtablesVolume, mountPath: '/run' }],
  };
}

/** The volumes the added containers mount. */
export function meshVolumes(input: PartsInput, withCapture: boolean): Json[] {
  const { config, mesh } = input;
  return [
    {
      name: Names.tokenVolume,
      projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: config.tokenExpirationSeconds, path: 'token' } }] },
    },
    ...(mesh.policyConfigMap ? [{ name: Names.policyVolume, configMap: { name: mesh.policyConfigMap, items: [{ key: POLICY_KEY, path: POLICY_KEY }] } }] : []),
    ...(withCapture ? [{ name: Names.xtablesVolume, emptyDir: {} }] : []),
  ];
}
