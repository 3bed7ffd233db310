// The API of proto/tollgate/ca/v1/ca.proto, typed here so the CA (server), the sidecar and the CLI
// (clients) speak exactly the same messages. The messages are encoded by a static codec
// (common/protobuf-wire.ts) from the tables below, not by loading the .proto at run time: that cost
// every start ~20 ms. The .proto stays the source of truth; common/ca-api.test.ts checks the tables
// against it and the codec against protobufjs.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { decodeMessage, encodeMessage, messageSpec } from './protobuf-wire.ts';

/** The API's source of truth; read by its tests, never at run time. */
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

const PACKAGE = 'tollgate.ca.v1';

const ClientReport = messageSpec(`${PACKAGE}.ClientReport`, [
  { name: 'bundle_version', number: 1, type: 'uint64' },
  { name: 'serial', number: 2, type: 'string' },
]);

/** Every message of ca.proto, by short name. */
export const CA_MESSAGES = Object.freeze({
  ClientReport,
  IssueSVIDRequest: messageSpec(`${PACKAGE}.IssueSVIDRequest`, [
    { name: 'csr', number: 1, type: 'bytes' },
    { name: 'token', number: 2, type: 'string' },
    { name: 'ttl_seconds', number: 3, type: 'uint32' },
    { name: 'report', number: 4, type: ClientReport },
  ]),
  IssueSVIDResponse: messageSpec(`${PACKAGE}.IssueSVIDResponse`, [
    { name: 'spiffe_id', number: 1, type: 'string' },
    { name: 'cert_chain', number: 2, type: 'bytes', repeated: true },
    { name: 'bundle_version', number: 3, type: 'uint64' },
    { name: 'expires_at', number: 4, type: 'int64' },
  ]),
  GetBundleRequest: messageSpec(`${PACKAGE}.GetBundleRequest`, [{ name: 'report', number: 1, type: ClientReport }]),
  WatchBundleRequest: messageSpec(`${PACKAGE}.WatchBundleRequest`, [{ name: 'report', number: 1, type: ClientReport }]),
  Bundle: messageSpec(`${PACKAGE}.Bundle`, [
    { name: 'version', number: 1, type: 'uint64' },
    { name: 'roots', number: 2, type: 'bytes', repeated: true },
    { name: 'refresh_hint_seconds', number: 3, type: 'uint32' },
    { name: 'trust_domain', number: 4, type: 'string' },
    { name: 'endorsements', number: 5, type: 'bytes', repeated: true },
    { name: 'denied_ids', number: 6, type: 'string', repeated: true },
    { name: 'denied_serials', number: 7, type: 'string', repeated: true },
  ]),
});

/** The service's methods as in ca.proto: name, request and response message, server streaming. */
export const CA_METHODS = Object.freeze([
  { name: 'IssueSVID', request: 'IssueSVIDRequest', response: 'IssueSVIDResponse', responseStream: false },
  { name: 'GetBundle', request: 'GetBundleRequest', response: 'Bundle', responseStream: false },
  { name: 'WatchBundle', request: 'WatchBundleRequest', response: 'Bundle', responseStream: true },
] as const);

function methodDefinition(m: (typeof CA_METHODS)[number]): grpc.MethodDefinition<object, object> {
  const req = CA_MESSAGES[m.request];
  const res = CA_MESSAGES[m.response];
  return {
    path: `/${SERVICE_NAME}/${m.name}`,
    requestStream: false,
    responseStream: m.responseStream,
    requestSerialize: (v: object) => encodeMessage(req, v),
    requestDeserialize: (b: Buffer) => decodeMessage(req, b),
    responseSerialize: (v: object) => encodeMessage(res, v),
    responseDeserialize: (b: Buffer) => decodeMessage(res, b),
  };
}

export const CertificateAuthorityService: grpc.ServiceDefinition = Object.freeze(Object.fromEntries(CA_METHODS.map((m) => [m.name, methodDefinition(m)])));
export const CertificateAuthorityClientCtor: grpc.ServiceClientConstructor = grpc.makeGenericClientConstructor(CertificateAuthorityService, 'CertificateAuthority');

export interface CertificateAuthorityClient extends grpc.Client {
  IssueSVID(req: IssueSVIDRequestMsg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: IssueSVIDResponseMsg) => void): grpc.ClientUnaryCall;
  GetBundle(req: GetBundleRequestMsg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: BundleMsg) => void): grpc.ClientUnaryCall;
  WatchBundle(req: GetBundleRequestMsg, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<BundleMsg>;
}

/** gRPC trailer key that carries the stable Tollgate error code of a refusal. */
export const ERROR_CODE_KEY = 'tollgate-error-code';
