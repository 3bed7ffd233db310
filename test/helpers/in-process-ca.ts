// The real CA code in-process (CaService, SvidIssuer, join-token, k8s-token and SVID attestors) behind
// the CaApi interface the sidecar's SvidManager talks to, on the test's ManualClock. The only fakes are
// injected failures (CA unreachable, tampered responses) and the transport, whose TLS checks the
// adapter reproduces. Used by sidecar/svid-manager.test.ts; lives here because sidecar/ code never
// imports ca/ (they meet only over gRPC).
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { Registry } from 'prom-client';
import { JoinTokenAttestor } from '../../ca/attestation/join-token.ts';
import { K8sTokenAttestor } from '../../ca/attestation/k8s-token.ts';
import { SvidAttestor } from '../../ca/attestation/svid.ts';
import { AuditLog } from '../../ca/audit.ts';
import { createIntermediate, createRoot } from '../../ca/authority.ts';
import { SvidIssuer, type IssuancePolicy } from '../../ca/issuer.ts';
import { CaMetrics } from '../../ca/metrics.ts';
import { CaService, type Bundle } from '../../ca/service.ts';
import type { ClientReportMsg } from '../../common/ca-api.ts';
import type { IssuedSvidResponse } from '../../common/ca-client.ts';
import type { CaConnectOptions } from '../../pki/ca-connect.ts';
import type { ManualClock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { pemToCertDers } from '../../pki/pem.ts';
import { parseCertificate } from '../../pki/x509.ts';
import type { CaApi } from '../../sidecar/svid-manager.ts';

export const TD = 'example.org';
export const WEB = 'spiffe://example.org/ns/shop/sa/web';
export const CA_ID = 'spiffe://example.org/tollgate/ca';
const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface Call {
  op: 'getBundle' | 'issue' | 'watch';
  mtls: boolean;
  token?: 'join' | 'k8s' | undefined;
  report?: ClientReportMsg | undefined;
  at: number;
  error?: string;
}

export const unavailable = () => new TollgateError('TG_UNAVAILABLE', 'CA at ca.test:8443 is unreachable: connect ECONNREFUSED');

/** The real CA service, behind the CaApi interface the manager talks to. */
export async function inProcessCa(clock: ManualClock, tmp: string, policy?: Partial<IssuancePolicy>) {
  const dir = mkdtempSync(join(tmp, 'ca-'));
  const root = await createRoot({ trustDomain: TD, clock });
  const intermediate = await createIntermediate({ trustDomain: TD, root, clock });
  const jwtKeys = await generateKeyPair('ES256');
  const joinTokens = new JoinTokenAttestor({ dir, clock, trustDomain: TD });
  const k8s = new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'jwks', issuer: K8S_ISSUER, jwks: { keys: [{ ...(await exportJWK(jwtKeys.publicKey)), kid: 'k1', alg: 'ES256' }] } } });
  let service: CaService;
  const svids = new SvidAttestor({ clock, trust: { trustDomain: TD, roots: () => service.bundle.roots, intermediates: () => [service.issuer.intermediate.certificate] } });
  service = new CaService({
    trustDomain: TD,
    clock,
    issuer: new SvidIssuer({ intermediate, clock, ...(policy ? { policy } : {}) }),
    attestors: [joinTokens, k8s, svids],
    audit: new AuditLog({ out: { write: () => true }, clock }),
    metrics: new CaMetrics(new Registry()),
    bundle: { trustDomain: TD, version: 1, roots: [root.certificate], refreshHintSeconds: 300 },
    limits: { perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 0, burst: 0 } },
  });
  const ca = {
    root,
    intermediate,
    service,
    calls: [] as Call[],
    /** Unary calls fail as if the CA were unreachable (watches are ended separately). */
    down: false,
    tamper: undefined as ((r: IssuedSvidResponse) => IssuedSvidResponse) | undefined,
    /** The root the CA's own serving certificate chains to: clients must trust it. */
    servingRoot: root.certificate,
    watches: new Set<(e?: TollgateError) => void>(),
    joinToken: async (id = WEB) => (await joinTokens.create({ spiffeId: id, ttlMs: 600_000 })).token,
    k8sToken: (exp: number) =>
      new SignJWT({
        aud: ['tollgate-ca'], iss: K8S_ISSUER, sub: 'system:serviceaccount:shop:web', exp: Math.floor(exp / 1000), iat: Math.floor(clock.now() / 1000),
        'kubernetes.io': { namespace: 'shop', pod: { name: 'web-1', uid: 'c1d2' }, serviceaccount: { name: 'web', uid: 'a1b2' } },
      }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(jwtKeys.privateKey as CryptoKey),
    endWatches(e?: TollgateError) {
      for (const end of [...ca.watches]) end(e);
    },
    issues: () => ca.calls.filter((c) => c.op === 'issue'),
    connect(o: CaConnectOptions): CaApi {
      // What TLS would check: the CA proves its SPIFFE ID under a root the client trusts, and a client
      // certificate comes with proof of its key.
      const handshake = (): void => {
        if (ca.down) throw unavailable();
        if (o.serverId !== CA_ID || !o.roots.some((r) => r.equals(ca.servingRoot))) throw new TollgateError('TG_UNAVAILABLE', 'CA certificate verify failed');
        if (o.identity) {
          const spki = createPublicKey(createPrivateKey(o.identity.keyPem)).export({ format: 'der', type: 'spki' });
          if (!parseCertificate(pemToCertDers(o.identity.certChainPem)[0]!).spki.equals(spki)) throw new Error('client key does not match its certificate');
        }
      };
      const record = (c: Omit<Call, 'at' | 'mtls'>) => ca.calls.push({ ...c, mtls: !!o.identity, at: clock.now() });
      return {
        async issue(req) {
          const call = { op: 'issue' as const, token: req.token ? (req.token.startsWith('tgjoin.') ? ('join' as const) : ('k8s' as const)) : undefined, report: req.report };
          try {
            handshake();
            const res = await service.issueSvid({
              csr: req.csr, token: req.token, ttlSeconds: req.ttlSeconds, peerAddress: '127.0.0.1',
              peerChain: o.identity ? pemToCertDers(o.identity.certChainPem) : undefined,
              report: req.report ? { bundleVersion: req.report.bundle_version, serial: req.report.serial } : undefined,
            });
            record(call);
            const out = { spiffeId: res.spiffeId, certChain: [...res.certChain], bundleVersion: res.bundleVersion, expiresAt: res.expiresAt };
            return ca.tamper ? ca.tamper(out) : out;
          } catch (e) {
            record({ ...call, error: (e as TollgateError).code });
            throw e;
          }
        },
        async getBundle(report) {
          record({ op: 'getBundle', report });
          handshake();
          return toResponse(service.bundle);
        },
        watchBundle(report, onBundle, onEnd) {
          record({ op: 'watch', report });
          let live = true;
          let stop = (): void => {};
          const end = (e?: TollgateError): void => {
            if (!live) return;
            live = false;
            stop();
            ca.watches.delete(end);
            queueMicrotask(() => onEnd(e));
          };
          try {
            handshake();
          } catch (e) {
            end(e as TollgateError);
            return () => (live = false);
          }
          ca.watches.add(end);
          stop = service.watchBundle((b) => queueMicrotask(() => live && onBundle(toResponse(b))));
          return () => {
            live = false;
            stop();
            ca.watches.delete(end);
          };
        },
        close() {},
      };
    },
  };
  return ca;
}
export type InProcessCa = Awaited<ReturnType<typeof inProcessCa>>;

function toResponse(b: Bundle) {
  return { version: b.version, roots: [...b.roots], refreshHintSeconds: b.refreshHintSeconds, trustDomain: b.trustDomain, endorsements: [...(b.endorsements ?? [])] };
}
