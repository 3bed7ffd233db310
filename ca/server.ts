// `tollgate ca serve`: the CA runtime (ca/runtime.ts) behind the gRPC API and the admin endpoints.
import { Registry, collectDefaultMetrics } from 'prom-client';
import { startAdminServer, type AdminServer, type Readiness } from '../common/admin-server.ts';
import type { Health } from './schedule.ts';
import { caSpiffeId } from '../pki/spiffe-id.ts';
import { startCaGrpcServer, type CaGrpcServer } from './grpc-server.ts';
import type { ConnectionLimits } from './connection-guard.ts';
import { startCaRuntime, type CaRuntime, type CaRuntimeOptions } from './runtime.ts';
import type { CaServerIdentity } from './server-identity.ts';
import type { CaService } from './service.ts';
import type { Authority } from './authority.ts';

export interface CaServerOptions extends Omit<CaRuntimeOptions, 'registry'> {
  readonly host?: string;
  readonly port: number;
  readonly adminPort: number;
  readonly adminHost?: string;
  /** Caps on connections and streams of the gRPC port; defaults in DEFAULT_CONNECTION_LIMITS. */
  readonly connectionLimits?: Partial<ConnectionLimits>;
}

export interface RunningCa {
  readonly runtime: CaRuntime;
  readonly service: CaService;
  readonly grpc: CaGrpcServer;
  readonly admin: AdminServer;
  readonly registry: Registry;
  readonly identity: CaServerIdentity;
  readonly trustDomain: string;
  /** The intermediate that signs now: the one narrow way in for the webhook's serving certificate. */
  currentIntermediate(): Authority;
  close(): Promise<void>;
}

/**
 * /readyz: 503 only once the CA cannot issue (its active intermediate or root has expired). Inside
 * a warning window it stays 200, saying "ready (degraded)" (or "(warning)") with what to do: a 503
 * would pull every CA replica out of its Service at the same moment and turn a warning into the
 * outage it warns about. Alert on tollgate_ca_expiry_warning or the x-tollgate-health header.
 */
export function caReadiness(h: Health, serving: string, auditFailure?: string): Readiness {
  if (h.state === 'expired') return { ready: false, detail: h.detail };
  // Decisions that cannot be recorded must not be made quietly: out of the Service until fixed.
  if (auditFailure) return { ready: false, detail: auditFailure };
  return { ready: true, state: h.state, detail: h.state === 'ok' ? `serving ${serving}; ${h.detail}` : h.detail };
}

export function defaultCaSpiffeId(trustDomain: string): string {
  return caSpiffeId(trustDomain);
}

export async function startCaServer(options: CaServerOptions): Promise<RunningCa> {
  const { logger } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const runtime = await startCaRuntime({ ...options, registry });
  const { service, identity, trustDomain: td } = runtime;
  const grpcServer = await startCaGrpcServer({ service, identity, logger, port: options.port, limits: options.connectionLimits ?? {}, ...(options.host ? { host: options.host } : {}) });
  const admin = await startAdminServer({
    port: options.adminPort,
    ...(options.adminHost ? { host: options.adminHost } : {}),
    registry,
    readiness: () => caReadiness(runtime.health(), `trust domain ${td}, bundle version ${service.bundle.version}`, runtime.audit.failure),
    json: { '/status': () => runtime.status() },
  });
  logger.info('CA serving', { trust_domain: td, grpc_port: grpcServer.port, admin_port: admin.port, spiffe_id: identity.spiffeId, bundle_version: service.bundle.version });
  return {
    runtime,
    service,
    grpc: grpcServer,
    admin,
    registry,
    identity,
    trustDomain: td,
    currentIntermediate: () => service.issuer.intermediate,
    close: async () => {
      runtime.stop();
      await Promise.all([grpcServer.close(), admin.close()]);
      await runtime.audit.close();
    },
  };
}
