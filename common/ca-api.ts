// The generated API of proto/tollgate/ca/v1/ca.proto, loaded once and typed here so the CA (server),
// the sidecar and the CLI (clients) speak exactly the same messages.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_PATH = fileURLToPath(new URL('../proto/tollgate/ca/v1/ca.proto', import.meta.url));
export const SERVICE_NAME = 'tollgate.ca.v1.CertificateAuthority';
/** Transport cap on any message; the CA applies tighter per-field caps and audits them. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

export interface ClientReportMsg {
  bundle_version: number;
  serial: string;
}
export interface IssueSVIDRequestMsg {
  csr: Buffer;
  token?: string;
  ttl_seconds?: number;
  report?: ClientReportMsg | null;
}
export interface IssueSVIDResponseMsg {
  spiffe_id: string;
  cert_chain: Buffer[];
  bundle_version: number;
  expires_at: number;
}
export interface GetBundleRequestMsg {
  report?: ClientReportMsg | null;
}
export interface BundleMsg {
  version: number;
  roots: Buffer[];
  refresh_hint_seconds: number;
  trust_domain: string;
  endorsements: Buffer[];
  denied_ids?: string[];
  denied_serials?: string[];
}

const definition = protoLoader.loadSync(PROTO_PATH, {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  tollgate: { ca: { v1: { CertificateAuthority: grpc.ServiceClientConstructor } } };
};

export const CertificateAuthorityService = loaded.tollgate.ca.v1.CertificateAuthority.service;
export const CertificateAuthorityClientCtor = loaded.tollgate.ca.v1.CertificateAuthority;

export interface CertificateAuthorityClient extends grpc.Client {
  IssueSVID(req: IssueSVIDRequestMsg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: IssueSVIDResponseMsg) => void): grpc.ClientUnaryCall;
  GetBundle(req: GetBundleRequestMsg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: BundleMsg) => void): grpc.ClientUnaryCall;
  WatchBundle(req: GetBundleRequestMsg, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<BundleMsg>;
}

/** gRPC trailer key that carries the stable Tollgate error code of a refusal. */
export const ERROR_CODE_KEY = 'tollgate-error-code';
