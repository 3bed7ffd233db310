// gRPC transport for tollgate.ca.v1.CertificateAuthority: adapts calls to CaService, maps errors in
// ca/grpc-errors.ts, caps message sizes. TLS always: the CA serves its own SVID and asks for (but does
// not require) a client certificate, since first issue comes with a token and renewal with an SVID.
// The listening socket is ours (grpc-js's connection injector), so connections are counted and capped
// before TLS; see ca/connection-guard.ts for the limits.
import { createServer, type Server as NetServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {
  CertificateAuthorityService,
  MAX_MESSAGE_BYTES,
  type BundleMsg,
  type GetBundleRequestMsg,
  type IssueSVIDRequestMsg,
  type IssueSVIDResponseMsg,
} from '../common/ca-api.ts';
import { TollgateError, toTollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { toServiceError } from './grpc-errors.ts';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, SlotCounter, type ConnectionLimits } from './connection-guard.ts';
import { peerInfo } from './grpc-peer.ts';
import { addressKey } from './rate-limit.ts';
import type { Bundle, CaService } from './service.ts';
import type { CaServerIdentity } from './server-identity.ts';

function bundleMsg(b: Bundle): BundleMsg {
  return { version: b.version, roots: [...b.roots], refresh_hint_seconds: b.refreshHintSeconds, trust_domain: b.trustDomain, endorsements: [...(b.endorsements ?? [])], denied_ids: [...(b.deniedIds ?? [])], denied_serials: [...(b.deniedSerials ?? [])] };
}

// grpc-js answers a request body it cannot deserialize with INTERNAL "Error deserializing request"
// before any handler runs: no TG_ code for the caller, no count, no audit. Deserializers that never
// throw hand the handler this marker instead, and the handler refuses it like any other bad request.
const UNDECODABLE = Symbol('undecodable request');
type Undecodable = { readonly [UNDECODABLE]: true };

function tolerantDeserializers(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(service)) {
    out[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return m.requestDeserialize(bytes);
        } catch {
          return { [UNDECODABLE]: true } satisfies Undecodable;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

const undecodable = (request: unknown): boolean => typeof request === 'object' && request !== null && UNDECODABLE in request;

export interface CaGrpcServer {
  readonly server: grpc.Server;
  readonly port: number;
  /** TCP connections open now (admitted under the connection caps). */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startCaGrpcServer(options: {
  service: CaService;
  identity: CaServerIdentity;
  logger: Logger;
  host?: string;
  port: number;
  limits?: Partial<ConnectionLimits>;
}): Promise<CaGrpcServer> {
  const { service, logger } = options;
  const limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...options.limits };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': 1024 * 1024,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    'grpc.max_connection_age_ms': limits.maxAgeMs,
    'grpc.max_connection_age_grace_ms': 60_000,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    // channelz bookkeeping costs every call; nothing here reads it.
    'grpc.enable_channelz': 0,
  });
  const watchers = new Set<grpc.ServerWritableStream<GetBundleRequestMsg, BundleMsg>>();
  const anonymousWatches = new SlotCounter({ max: limits.maxAnonymousWatches, perKey: limits.maxAnonymousWatchesPerAddress });
  const refuse = (call: grpc.ServerWritableStream<GetBundleRequestMsg, BundleMsg>, e: unknown): void => {
    call.emit('error', toServiceError(toTollgateError(e)));
  };

  server.addService(tolerantDeserializers(CertificateAuthorityService), {
    IssueSVID(call: grpc.ServerUnaryCall<IssueSVIDRequestMsg, IssueSVIDResponseMsg>, callback: grpc.sendUnaryData<IssueSVIDResponseMsg>) {
      const peer = peerInfo(call);
      const r = call.request;
      if (undecodable(r)) {
        callback(toServiceError(service.refuseUndecodable(peer.address, 'the IssueSVID request')));
        return;
      }
      service
        .issueSvid({
          csr: r.csr ?? Buffer.alloc(0),
          token: r.token ? r.token : undefined,
          ttlSeconds: r.ttl_seconds || undefined,
          peerChain: peer.chain,
          peerAddress: peer.address,
          report: r.report ? { bundleVersion: r.report.bundle_version, serial: r.report.serial } : undefined,
        })
        .then(
          (res) => callback(null, { spiffe_id: res.spiffeId, cert_chain: [...res.certChain], bundle_version: res.bundleVersion, expires_at: res.expiresAt }),
          (e: unknown) => {
            const err = toTollgateError(e);
            if (err.code === 'TG_INTERNAL') logger.error('IssueSVID failed', { error: err.message, stack: (e as Error).stack });
            callback(toServiceError(err));
          },
        );
    },
    GetBundle(call: grpc.ServerUnaryCall<GetBundleRequestMsg, BundleMsg>, callback: grpc.sendUnaryData<BundleMsg>) {
      const peer = peerInfo(call);
      if (undecodable(call.request)) {
        callback(toServiceError(service.refuseUndecodable(peer.address, 'the GetBundle request')));
        return;
      }
      const r = call.request.report;
      try {
        service.chargeAddress(peer.address);
      } catch (e) {
        callback(toServiceError(toTollgateError(e)));
        return;
      }
      // Answered at once; the report is counted once the caller's SVID has been checked.
      callback(null, bundleMsg(service.bundle));
      if (r) void service.reportBundle(peer, { bundleVersion: r.bundle_version, serial: r.serial });
    },
    WatchBundle(call: grpc.ServerWritableStream<GetBundleRequestMsg, BundleMsg>) {
      const peer = peerInfo(call);
      if (undecodable(call.request)) {
        refuse(call, service.refuseUndecodable(peer.address, 'the WatchBundle request'));
        return;
      }
      const r = call.request.report;
      if (r) void service.reportBundle(peer, { bundleVersion: r.bundle_version, serial: r.serial });
      // A caller with a valid SVID may watch (bounded by the connection caps); one without (a sidecar
      // that has just been issued its first SVID on its bootstrap connection) only within a small
      // per-address and total budget.
      void service.isAuthenticated(peer.chain).then((authenticated) => {
        if (call.cancelled) return;
        const release = authenticated ? () => {} : anonymousWatches.acquire(addressKey(peer.address));
        if (!release) {
          refuse(call, new TollgateError('TG_RATE_LIMITED', `too many bundle watches without a valid SVID from ${peer.address}; watch over mTLS with your SVID`));
          return;
        }
        watch(call, release);
      });
    },
  });

  function watch(call: grpc.ServerWritableStream<GetBundleRequestMsg, BundleMsg>, release: () => void): void {
    watchers.add(call);
    const stop = service.watchBundle((b) => {
      if (!call.cancelled && call.writable) call.write(bundleMsg(b));
    });
    const done = (): void => {
      stop();
      release();
      watchers.delete(call);
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  }

  const creds = grpc.experimental.createCertificateProviderServerCredentials(options.identity, options.identity, false);
  // grpc-js has no handshake timeout option, but hands its credentials' constructor options to
  // http2.createSecureServer: Node's TLS server then closes a connection whose handshake is not
  // done in handshakeTimeout (default 120 s), whether the client is silent or drips bytes.
  Object.assign(creds._getConstructorOptions() ?? {}, { handshakeTimeout: limits.handshakeTimeoutMs });
  const injector = server.createConnectionInjector(creds);
  const guard = new ConnectionGuard({ limits });
  const listener: NetServer = createServer((socket) => {
    if (guard.admit(socket)) injector.injectConnection(socket);
  });
  const port = await new Promise<number>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port, options.host ?? '0.0.0.0', () => {
      listener.off('error', reject);
      resolve((listener.address() as { port: number }).port);
    });
  });
  return {
    server,
    port,
    get connections() {
      return guard.open;
    },
    close: () =>
      new Promise<void>((resolve) => {
        listener.close();
        for (const w of watchers) w.end();
        const t = setTimeout(() => {
          server.forceShutdown();
          guard.destroyAll();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          guard.destroyAll();
          resolve();
        });
      }),
  };
}
