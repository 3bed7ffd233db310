// gRPC transport for tollgate.ca.v1.CertificateAuthority: adapts calls to CaService, maps errors in
// ca/grpc-errors.ts, caps message sizes. TLS always: the CA serves its own SVID and asks for (but does
// not require) a client certificate, since first issue comes with a token and renewal with an SVID.
import * as grpc from '@grpc/grpc-js';
import {
  CertificateAuthorityService,
  MAX_MESSAGE_BYTES,
  type BundleMsg,
  type GetBundleRequestMsg,
  type IssueSVIDRequestMsg,
  type IssueSVIDResponseMsg,
} from '../common/ca-api.ts';
import { toTollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { toServiceError } from './grpc-errors.ts';
import { peerInfo } from './grpc-peer.ts';
import type { Bundle, CaService } from './service.ts';
import type { CaServerIdentity } from './server-identity.ts';

function bundleMsg(b: Bundle): BundleMsg {
  return { version: b.version, roots: [...b.roots], refresh_hint_seconds: b.refreshHintSeconds, trust_domain: b.trustDomain, endorsements: [...(b.endorsements ?? [])], denied_ids: [...(b.deniedIds ?? [])], denied_serials: [...(b.deniedSerials ?? [])] };
}

export interface CaGrpcServer {
  readonly server: grpc.Server;
  readonly port: number;
  close(): Promise<void>;
}

export async function startCaGrpcServer(options: {
  service: CaService;
  identity: CaServerIdentity;
  logger: Logger;
  host?: string;
  port: number;
}): Promise<CaGrpcServer> {
  const { service, logger } = options;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': 1024 * 1024,
    'grpc.max_concurrent_streams': 1000,
    'grpc.keepalive_time_ms': 60_000,
    // channelz bookkeeping costs every call; nothing here reads it.
    'grpc.enable_channelz': 0,
  });
  const watchers = new Set<grpc.ServerWritableStream<GetBundleRequestMsg, BundleMsg>>();

  server.addService(CertificateAuthorityService, {
    IssueSVID(call: grpc.ServerUnaryCall<IssueSVIDRequestMsg, IssueSVIDResponseMsg>, callback: grpc.sendUnaryData<IssueSVIDResponseMsg>) {
      const peer = peerInfo(call);
      const r = call.request;
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
      const r = call.request.report;
      // Answered at once; the report is counted once the caller's SVID has been checked.
      callback(null, bundleMsg(service.bundle));
      if (r) void service.reportBundle(peer, { bundleVersion: r.bundle_version, serial: r.serial });
    },
    WatchBundle(call: grpc.ServerWritableStream<GetBundleRequestMsg, BundleMsg>) {
      const peer = peerInfo(call);
      const r = call.request.report;
      if (r) void service.reportBundle(peer, { bundleVersion: r.bundle_version, serial: r.serial });
      watchers.add(call);
      const stop = service.watchBundle((b) => {
        if (!call.cancelled && call.writable) call.write(bundleMsg(b));
      });
      const done = (): void => {
        stop();
        watchers.delete(call);
      };
      call.on('cancelled', done);
      call.on('close', done);
      call.on('error', done);
    },
  });

  const creds = grpc.experimental.createCertificateProviderServerCredentials(options.identity, options.identity, false);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host ?? '0.0.0.0'}:${options.port}`, creds, (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const w of watchers) w.end();
        const t = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
