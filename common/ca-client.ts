// A client of the CA's gRPC API, shared by the sidecar, the CLI, tests and the benchmark. It turns
// refusals back into TollgateErrors carrying the CA's stable code. How the server proves it is the CA
// (its SPIFFE ID, not a DNS name) is X.509 work and is handed in by pki/ca-connect.ts.
import * as grpc from '@grpc/grpc-js';
import {
  CertificateAuthorityClientCtor,
  ERROR_CODE_KEY,
  MAX_MESSAGE_BYTES,
  type BundleMsg,
  type CertificateAuthorityClient,
  type ClientReportMsg,
  type IssueSVIDResponseMsg,
} from './ca-api.ts';
import { ErrorCodes, TollgateError, type ErrorCode } from './errors.ts';

export interface CaClientOptions {
  /** host:port of the CA */
  readonly address: string;
  /** PEM roots used to verify the CA's certificate chain. */
  readonly rootsPem: string;
  /** Accepts the CA's leaf (DER) once the chain verified, or says why not. */
  readonly verifyServer: (leafDer: Buffer) => Error | undefined;
  /** Client identity for renewal over mTLS: PEM chain and PEM key. */
  readonly identity?: { readonly certChainPem: string; readonly keyPem: string } | undefined;
  readonly deadlineMs?: number;
}

export interface IssuedSvidResponse {
  readonly spiffeId: string;
  readonly certChain: Buffer[];
  readonly bundleVersion: number;
  readonly expiresAt: number;
}

export interface BundleResponse {
  readonly version: number;
  readonly roots: Buffer[];
  readonly refreshHintSeconds: number;
  readonly trustDomain: string;
  /** DER cross-signatures: a root of `roots` signed by another root (trust continuity). */
  readonly endorsements: Buffer[];
  /** The deny-list: SPIFFE IDs and leaf serials (lower-case hex) to refuse. */
  readonly deniedIds?: readonly string[];
  readonly deniedSerials?: readonly string[];
}

function fromServiceError(e: grpc.ServiceError, address: string): TollgateError {
  const code = e.metadata?.get(ERROR_CODE_KEY)?.[0];
  if (typeof code === 'string' && code in ErrorCodes) {
    const msg = (e.details ?? '').replace(new RegExp(`^${code}: `), '');
    return new TollgateError(code as ErrorCode, msg, { details: { grpc_status: e.code } });
  }
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
    return new TollgateError('TG_UNAVAILABLE', `CA at ${address} is unreachable: ${e.details || e.message}`, { details: { grpc_status: e.code } });
  }
  if (e.code === grpc.status.RESOURCE_EXHAUSTED) {
    return new TollgateError('TG_REQUEST_TOO_LARGE', `CA at ${address} refused the request: ${e.details}`, { details: { grpc_status: e.code } });
  }
  return new TollgateError('TG_UNAVAILABLE', `CA at ${address} failed: ${e.details || e.message}`, { details: { grpc_status: e.code } });
}

export class CaClient {
  readonly #o: CaClientOptions;
  readonly #client: CertificateAuthorityClient;

  constructor(options: CaClientOptions) {
    this.#o = options;
    const creds = grpc.credentials.createSsl(
      Buffer.from(options.rootsPem),
      options.identity ? Buffer.from(options.identity.keyPem) : null,
      options.identity ? Buffer.from(options.identity.certChainPem) : null,
      // The CA is identified by what verifyServer checks, whatever name or address we dialled.
      { checkServerIdentity: (_host, cert) => options.verifyServer(cert.raw) },
    );
    this.#client = new CertificateAuthorityClientCtor(options.address, creds, {
      'grpc.max_receive_message_length': 1024 * 1024,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.ssl_target_name_override': 'tollgate-ca',
      'grpc.default_authority': 'tollgate-ca',
    }) as unknown as CertificateAuthorityClient;
  }

  #deadline(): grpc.CallOptions {
    return { deadline: Date.now() + (this.#o.deadlineMs ?? 10_000) };
  }

  issue(req: { csr: Buffer; token?: string | undefined; ttlSeconds?: number | undefined; report?: ClientReportMsg | undefined }): Promise<IssuedSvidResponse> {
    return new Promise((resolve, reject) => {
      this.#client.IssueSVID(
        { csr: req.csr, token: req.token ?? '', ttl_seconds: req.ttlSeconds ?? 0, report: req.report ?? null },
        new grpc.Metadata(),
        this.#deadline(),
        (err, res?: IssueSVIDResponseMsg) => {
          if (err) return reject(fromServiceError(err, this.#o.address));
          resolve({ spiffeId: res!.spiffe_id, certChain: res!.cert_chain, bundleVersion: res!.bundle_version, expiresAt: res!.expires_at });
        },
      );
    });
  }

  getBundle(report?: ClientReportMsg): Promise<BundleResponse> {
    return new Promise((resolve, reject) => {
      this.#client.GetBundle({ report: report ?? null }, new grpc.Metadata(), this.#deadline(), (err, res?: BundleMsg) => {
        if (err) return reject(fromServiceError(err, this.#o.address));
        resolve(toBundle(res!));
      });
    });
  }

  /** Follow bundle changes. `onEnd` gets the error (or undefined) when the stream ends; re-watch then. */
  watchBundle(report: ClientReportMsg | undefined, onBundle: (b: BundleResponse) => void, onEnd: (e?: TollgateError) => void): () => void {
    const stream = this.#client.WatchBundle({ report: report ?? null });
    let ended = false;
    const end = (e?: TollgateError): void => {
      if (ended) return;
      ended = true;
      onEnd(e);
    };
    stream.on('data', (m: BundleMsg) => onBundle(toBundle(m)));
    stream.on('error', (e: grpc.ServiceError) => end(e.code === grpc.status.CANCELLED ? undefined : fromServiceError(e, this.#o.address)));
    stream.on('end', () => end());
    return () => {
      ended = true;
      stream.cancel();
    };
  }

  close(): void {
    this.#client.close();
  }
}

function toBundle(m: BundleMsg): BundleResponse {
  return { version: m.version, roots: m.roots, refreshHintSeconds: m.refresh_hint_seconds, trustDomain: m.trust_domain, endorsements: m.endorsements ?? [], deniedIds: m.denied_ids ?? [], deniedSerials: m.denied_serials ?? [] };
}
