// `tollgate ca serve`: load the store, then serve the gRPC API and the admin endpoints.
import { Registry, collectDefaultMetrics } from 'prom-client';
import { startAdminServer, type AdminServer } from '../common/admin-server.ts';
import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import { caSpiffeId, isReservedId, parseSpiffeId } from '../pki/spiffe-id.ts';
import { TollgateError } from '../common/errors.ts';
import { parseCertificate } from '../pki/x509.ts';
import type { Attestor } from './attestation/attestor.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import { SvidAttestor } from './attestation/svid.ts';
import { AuditLog, type AuditSink } from './audit.ts';
import { SvidIssuer, type IssuancePolicy } from './issuer.ts';
import { CaMetrics } from './metrics.ts';
import { startCaGrpcServer, type CaGrpcServer } from './grpc-server.ts';
import { CaServerIdentity } from './server-identity.ts';
import { CaService, type CaServiceOptions } from './service.ts';
import { DirectoryStore, StoreFiles } from './store.ts';

export interface CaServerOptions {
  readonly dir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditSink;
  readonly host?: string;
  readonly port: number;
  readonly adminPort: number;
  readonly adminHost?: string;
  /** The CA's own SPIFFE ID, reserved (under /tollgate/); default spiffe://<td>/tollgate/ca. */
  readonly spiffeId?: string;
  readonly issuance?: Partial<IssuancePolicy>;
  readonly limits?: CaServiceOptions['limits'];
  /** Extra attestors (e.g. Kubernetes tokens), tried after join tokens. */
  readonly attestors?: (trustDomain: string) => Attestor[];
  readonly refreshHintSeconds?: number;
}

export interface RunningCa {
  readonly service: CaService;
  readonly grpc: CaGrpcServer;
  readonly admin: AdminServer;
  readonly registry: Registry;
  readonly identity: CaServerIdentity;
  readonly trustDomain: string;
  close(): Promise<void>;
}

export function defaultCaSpiffeId(trustDomain: string): string {
  return caSpiffeId(trustDomain);
}

export async function startCaServer(options: CaServerOptions): Promise<RunningCa> {
  const { clock, logger } = options;
  if (options.spiffeId !== undefined && !isReservedId(parseSpiffeId(options.spiffeId))) {
    throw new TollgateError('TG_USAGE', `--spiffe-id ${options.spiffeId} is not under /tollgate/: the CA's identity must be one no workload can be issued`);
  }
  const store = new DirectoryStore({ dir: options.dir });
  const material = store.load();
  const td = material.trustDomain;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new CaMetrics(registry);
  metrics.authorityExpiry.set({ slot: 'root' }, Math.floor(parseCertificate(material.rootCertificate).notAfter / 1000));
  metrics.authorityExpiry.set({ slot: 'intermediate' }, Math.floor(material.intermediate.parsed.notAfter / 1000));
  const issuer = new SvidIssuer({ intermediate: material.intermediate, clock, ...(options.issuance ? { policy: options.issuance } : {}) });
  const bundle = { trustDomain: td, version: material.bundleVersion, roots: material.bundle, refreshHintSeconds: options.refreshHintSeconds ?? 300 };
  const attestors: Attestor[] = [
    new JoinTokenAttestor({ dir: store.path(StoreFiles.tokens), clock, trustDomain: td }),
    ...(options.attestors?.(td) ?? []),
  ];
  let service: CaService;
  attestors.push(
    new SvidAttestor({
      clock,
      trust: {
        trustDomain: td,
        roots: () => service.bundle.roots,
        intermediates: () => [service.issuer.intermediate.certificate],
        bundleVersion: () => service.bundle.version,
      },
    }),
  );
  service = new CaService({
    trustDomain: td,
    clock,
    issuer,
    attestors,
    audit: new AuditLog({ out: options.audit, clock }),
    metrics,
    bundle,
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const identity = new CaServerIdentity({ spiffeId: options.spiffeId ?? defaultCaSpiffeId(td), issuer, roots: material.bundle, clock, logger });
  const grpcServer = await startCaGrpcServer({ service, identity, logger, port: options.port, ...(options.host ? { host: options.host } : {}) });
  const admin = await startAdminServer({
    port: options.adminPort,
    ...(options.adminHost ? { host: options.adminHost } : {}),
    registry,
    readiness: () => {
      const now = clock.now();
      const inter = service.issuer.intermediate.parsed;
      if (now >= inter.notAfter) return { ready: false, detail: 'the intermediate has expired; rotate it' };
      return { ready: true, detail: `serving trust domain ${td}, bundle version ${service.bundle.version}` };
    },
  });
  logger.info('CA serving', { trust_domain: td, grpc_port: grpcServer.port, admin_port: admin.port, spiffe_id: identity.spiffeId, bundle_version: bundle.version });
  return {
    service,
    grpc: grpcServer,
    admin,
    registry,
    identity,
    trustDomain: td,
    close: async () => {
      identity.stop();
      await Promise.all([grpcServer.close(), admin.close()]);
    },
  };
}
