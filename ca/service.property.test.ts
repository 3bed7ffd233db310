// Property tests over the CA's request path (issue 13): whatever an IssueSVID request holds —
// garbled, truncated or wrong-curve CSRs, any ttl_seconds, JWT-shaped garbage, random, expired or
// reused join tokens, Kubernetes tokens with any claims, self-signed / foreign / expired / CA
// certificates as the renewal chain, any report, any peer address — CaService.issueSvid either
// answers with a chain that verifies for an identity the evidence proved, or refuses with a
// TollgateError whose TG_ code maps to a gRPC status (ca/grpc-errors.ts). Never anything else, never
// TG_INTERNAL (an exception the CA did not expect), every call settles, every refusal is counted,
// and the tables requests grow stay within their bounds. Time is a ManualClock moved between calls.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { Registry } from 'prom-client';
import * as grpc from '@grpc/grpc-js';
import { ManualClock } from '../common/clock.ts';
import { ERROR_CODE_KEY } from '../common/ca-api.ts';
import { ErrorCodes, TollgateError } from '../common/errors.ts';
import { caSpiffeId, isReservedId } from '../pki/spiffe-id.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { buildCert, leafFrom, p256, testChain, type CertSpec } from '../pki/test-chain.ts';
import { Oid } from '../pki/x509.ts';
import { hashToken } from './attestation/join-token-store.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import { K8sTokenAttestor } from './attestation/k8s-token.ts';
import { SvidAttestor } from './attestation/svid.ts';
import { AuditLog } from './audit.ts';
import { createIntermediate, createRoot } from './authority.ts';
import { grpcStatusFor, toServiceError } from './grpc-errors.ts';
import { SvidIssuer } from './issuer.ts';
import { CaMetrics } from './metrics.ts';
import { CaService, CSR_CACHE_SIZE, type IssueRequest } from './service.ts';
import { csrArb, flip, garbageTokenArb, k8sNameArb, ttlArb } from '../test/helpers/ca-arbitraries.ts';

const TD = 'example.org';
const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const DENIED_ID = `spiffe://${TD}/ns/x/sa/denied`;
const IDS = [`spiffe://${TD}/ns/a/sa/b`, `spiffe://${TD}/ns/shop/sa/web`, DENIED_ID];
const MAX_KEYS = 16;
const NUM_RUNS = 500;
// FC_SEED=<seed from a failure> replays a run (state is shared across runs, so replay from the start).
/** Liveness, not speed: a call that has not settled after this long is a hang. */
const SETTLE_MS = 30_000;

const clock = new ManualClock(Date.UTC(2026, 2, 1));
const root = await createRoot({ trustDomain: TD, clock });
const intermediate = await createIntermediate({ trustDomain: TD, root, clock });
const clusterKey = await generateKeyPair('ES256');
const strangerKey = await generateKeyPair('ES256');
const dir = mkdtempSync(join(tmpdir(), 'tg-svc-prop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const registry = new Registry();
const tokens = new JoinTokenAttestor({ dir, clock, trustDomain: TD });
const service = new CaService({
  trustDomain: TD,
  clock,
  issuer: new SvidIssuer({ intermediate, clock }),
  attestors: [
    tokens,
    new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'jwks', issuer: K8S_ISSUER, jwks: { keys: [{ ...(await exportJWK(clusterKey.publicKey)), kid: 'k1', alg: 'ES256' }] } } }),
    new SvidAttestor({ clock, trust: { trustDomain: TD, roots: () => [root.certificate], intermediates: () => [intermediate.certificate], bundleVersion: () => 1 } }),
  ],
  audit: new AuditLog({ out: { write: () => true }, clock }),
  metrics: new CaMetrics(registry),
  bundle: { trustDomain: TD, version: 1, roots: [root.certificate], refreshHintSeconds: 300, deniedIds: [DENIED_ID] },
  // Small tables and tight budgets, so eviction and refusals happen within the run.
  limits: { perAddress: { perSecond: 0.001, burst: 20 }, perIdentity: { perSecond: 0.01, burst: 3 }, maxKeys: MAX_KEYS },
});

const { arb: csrs } = csrArb();

// ---- tokens: specs, turned into strings inside the property (signing is async) ----
type TokenSpec =
  | { kind: 'none' }
  | { kind: 'text'; value: string }
  | { kind: 'join'; id: string; ttlMs: number }
  | { kind: 'join-reused' }
  | { kind: 'join-record'; spiffeId: string; expiresAt: string }
  | { kind: 'k8s'; key: 'cluster' | 'stranger'; iss: string; aud: unknown; expIn: number; ns: string; sa: string; pod: boolean; alg: 'ES256' | 'none' };
const tokenArb: fc.Arbitrary<TokenSpec> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  garbageTokenArb.map((value) => ({ kind: 'text' as const, value })),
  fc.record({ kind: fc.constant('join' as const), id: fc.constantFrom(...IDS), ttlMs: fc.constantFrom(1, 60_000, 600_000) }),
  fc.constant({ kind: 'join-reused' as const }),
  fc.record({
    kind: fc.constant('join-record' as const),
    spiffeId: fc.oneof(fc.constantFrom(...IDS, caSpiffeId(TD), 'spiffe://other.org/ns/a/sa/b', `spiffe://${TD}`), fc.string({ maxLength: 40 })),
    expiresAt: fc.oneof(fc.constantFrom('2026-03-01T01:00:00.000Z', '2099-01-01T00:00:00.000Z', 'garbage', ''), fc.string({ maxLength: 10 })),
  }),
  { arbitrary: fc.record({
    kind: fc.constant('k8s' as const),
    key: fc.constantFrom('cluster' as const, 'stranger' as const),
    iss: fc.constantFrom(K8S_ISSUER, 'https://evil.example'),
    aud: fc.constantFrom('tollgate-ca', ['tollgate-ca', 'x'], 'other', [], undefined),
    expIn: fc.integer({ min: -7200, max: 7200 }),
    ns: k8sNameArb,
    sa: k8sNameArb,
    pod: fc.boolean(),
    alg: fc.constantFrom('ES256' as const, 'none' as const),
  }), weight: 2 },
);

const usedJoinTokens: string[] = [];
let tokensCreated = 0;

async function tokenOf(spec: TokenSpec): Promise<{ token: string | undefined; proves: boolean }> {
  switch (spec.kind) {
    case 'none':
      return { token: undefined, proves: false };
    case 'text':
      return { token: spec.value, proves: false };
    case 'join': {
      tokensCreated++;
      return { token: (await tokens.create({ spiffeId: spec.id, ttlMs: spec.ttlMs })).token, proves: true };
    }
    case 'join-reused':
      return { token: usedJoinTokens.at(-1) ?? 'tgjoin.', proves: false };
    case 'join-record': {
      // A record as a hand edit or an old version might have left it.
      const token = `tgjoin.${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')}`;
      tokensCreated++;
      await tokens.tokens.add(hashToken(token), { spiffe_id: spec.spiffeId, created_at: new Date(clock.now()).toISOString(), expires_at: spec.expiresAt });
      return { token, proves: true };
    }
    case 'k8s': {
      const now = Math.floor(clock.now() / 1000);
      const claims: Record<string, unknown> = {
        'kubernetes.io': { namespace: spec.ns, serviceaccount: { name: spec.sa, uid: 'u1' }, ...(spec.pod ? { pod: { name: 'p', uid: 'p1' } } : {}) },
      };
      if (spec.aud !== undefined) claims.aud = spec.aud;
      const jwt = new SignJWT(claims).setIssuer(spec.iss).setSubject(`system:serviceaccount:${spec.ns}:${spec.sa}`).setIssuedAt(now - 60).setExpirationTime(now + spec.expIn);
      if (spec.alg === 'none') {
        const signed = await jwt.setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(clusterKey.privateKey as CryptoKey);
        const [, payload] = signed.split('.');
        return { token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`, proves: false };
      }
      const key = spec.key === 'cluster' ? clusterKey : strangerKey;
      return { token: await jwt.setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(key.privateKey as CryptoKey), proves: spec.key === 'cluster' };
    }
  }
}

// ---- renewal chains ----
const issuedChains: Buffer[][] = [];
const foreign = testChain(TD, clock.now());
const otherTd = testChain('other.org', clock.now());
const ours = (over: Partial<CertSpec>): Buffer => {
  const k = p256();
  return buildCert({
    subject: '', issuerName: 'unused', issuerKey: intermediate.key, issuerSpki: intermediate.parsed.spki, spki: k.spki,
    notBefore: clock.now() - 60_000, notAfter: clock.now() + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: [IDS[0]!], ...over,
  });
};
const self = p256();
const fixedChains: Record<string, () => Buffer[]> = {
  root: () => [root.certificate],
  intermediate: () => [intermediate.certificate],
  rootAndIntermediate: () => [intermediate.certificate, root.certificate],
  selfSigned: () => [buildCert({ issuerName: 'me', issuerKey: self.key, issuerSpki: self.spki, spki: self.spki, notBefore: clock.now() - 60_000, notAfter: clock.now() + 3600_000, ca: false, eku: [Oid.clientAuth], uris: [IDS[0]!] })],
  foreignRoot: () => [leafFrom({ ...foreign, now: clock.now() }), foreign.intermediate],
  otherTrustDomain: () => [leafFrom({ ...otherTd, now: clock.now() }, { uris: ['spiffe://other.org/ns/a/sa/b'] }), otherTd.intermediate],
  expired: () => [ours({ notBefore: clock.now() - 7200_000, notAfter: clock.now() - 3600_000 }), intermediate.certificate],
  caLeaf: () => [ours({ ca: true, keyUsage: [0x01, 0x06] }), intermediate.certificate],
  reservedId: () => [ours({ uris: [caSpiffeId(TD)] }), intermediate.certificate],
  twoUris: () => [ours({ uris: [IDS[0]!, IDS[1]!] }), intermediate.certificate],
};
type ChainSpec = { kind: 'none' } | { kind: 'issued'; pick: number; mangle?: { at: number; x: number; cut: boolean } } | { kind: 'fixed'; name: string } | { kind: 'garbage'; certs: Buffer[] };
const chainArb: fc.Arbitrary<{ spec: ChainSpec; extra: Buffer[] }> = fc.record({
  spec: fc.oneof(
    { arbitrary: fc.constant({ kind: 'none' as const }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('issued' as const), pick: fc.nat() }), weight: 3 },
    fc.record({ kind: fc.constant('issued' as const), pick: fc.nat(), mangle: fc.record({ at: fc.nat(), x: fc.integer({ min: 1, max: 255 }), cut: fc.boolean() }) }),
    fc.record({ kind: fc.constant('fixed' as const), name: fc.constantFrom(...Object.keys(fixedChains)) }),
    fc.record({ kind: fc.constant('garbage' as const), certs: fc.array(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { maxLength: 3 }) }),
  ),
  extra: fc.array(fc.oneof(fc.uint8Array({ maxLength: 100 }).map((a) => Buffer.from(a)), fc.constant(root.certificate)), { maxLength: 2 }),
});

function chainOf(c: { spec: ChainSpec; extra: Buffer[] }): { chain: Buffer[] | undefined; proves: boolean } {
  const s = c.spec;
  if (s.kind === 'none') return { chain: undefined, proves: false };
  if (s.kind === 'garbage') return { chain: [...s.certs, ...c.extra], proves: false };
  if (s.kind === 'fixed') return { chain: [...fixedChains[s.name]!(), ...c.extra], proves: false };
  const picked = issuedChains.length ? issuedChains[s.pick % issuedChains.length]! : [intermediate.certificate];
  if (!s.mangle) return { chain: [...picked, ...c.extra], proves: issuedChains.length > 0 };
  const leaf = s.mangle.cut ? picked[0]!.subarray(0, s.mangle.at % picked[0]!.length) : flip(picked[0]!, s.mangle.at, s.mangle.x);
  return { chain: [leaf, ...picked.slice(1), ...c.extra], proves: false };
}

const requestArb = fc.record({
  advanceMs: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, fc.nat({ max: 60_000 }), fc.nat({ max: 3600_000 })),
  csr: csrs,
  token: tokenArb,
  chain: chainArb,
  ttlSeconds: ttlArb,
  peerAddress: fc.oneof({ arbitrary: fc.constantFrom('10.0.0.1', '127.0.0.1', '::1', '::ffff:10.0.0.1'), weight: 6 }, fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 30 })),
  report: fc.option(fc.record({ bundleVersion: fc.oneof(fc.nat(), fc.constant(2 ** 64)), serial: fc.string({ maxLength: 40 }) }), { nil: undefined }),
});

/** Rejects the test if `p` has not settled within SETTLE_MS. */
async function settled<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`issueSvid did not settle in ${SETTLE_MS} ms`)), SETTLE_MS)));
  try {
    return await Promise.race([p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })), hang]);
  } finally {
    clearTimeout(timer);
  }
}

const tally = { issued: 0, refused: new Map<string, number>() };

test(`issueSvid on arbitrary requests: a verified chain for proven evidence, or a TG_ refusal that maps to a gRPC status (${NUM_RUNS} runs)`, { timeout: 300_000 }, async (t) => {
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 8 }), async (requests) => {
      for (const r of requests) {
        clock.advance(r.advanceMs);
        const { token, proves: tokenProves } = await tokenOf(r.token);
        const { chain, proves: chainProves } = chainOf(r.chain);
        const req: IssueRequest = { csr: r.csr, token, ttlSeconds: r.ttlSeconds, peerChain: chain, peerAddress: r.peerAddress, report: r.report };
        const out = await settled(service.issueSvid(req));
        if (out.ok) {
          tally.issued++;
          // Only proof issues: a join token or cluster-signed token sent now, or (with no token; an empty
          // one is none, as proto3's default) a chain the CA issued.
          assert.ok(token ? tokenProves : chainProves, `issued without proof: ${JSON.stringify(r.token)} ${JSON.stringify(r.chain.spec)}`);
          const v = verifySvidChain({ leaf: out.value.certChain[0]!, intermediates: out.value.certChain.slice(1), roots: [root.certificate], now: clock.now(), usage: 'client', trustDomain: TD });
          assert.equal(v.spiffeId.id, out.value.spiffeId);
          assert.ok(!isReservedId(v.spiffeId) && v.spiffeId.id !== DENIED_ID, v.spiffeId.id);
          issuedChains.push([...out.value.certChain]);
          if (issuedChains.length > 20) issuedChains.shift();
          if (token?.startsWith('tgjoin.')) usedJoinTokens.push(token);
          continue;
        }
        const e = out.error;
        assert.ok(e instanceof TollgateError, `not a TollgateError: ${String(e)}`);
        assert.ok(e.code in ErrorCodes && e.code.startsWith('TG_'), e.code);
        assert.notEqual(e.code, 'TG_INTERNAL', `an unexpected exception: ${e.message} ${String((e.cause as Error | undefined)?.stack)}`);
        const status = grpcStatusFor(e.code);
        assert.ok(typeof status === 'number' && status !== grpc.status.OK, `${e.code} has no gRPC status`);
        const se = toServiceError(e);
        assert.equal(se.code, status);
        assert.deepEqual(se.metadata!.get(ERROR_CODE_KEY), [e.code]);
        assert.ok(se.details!.startsWith(`${e.code}: `));
        tally.refused.set(e.code, (tally.refused.get(e.code) ?? 0) + 1);
      }
      // Bounded state, whatever came in.
      const sizes = service.tableSizes();
      assert.ok(sizes.byAddress <= MAX_KEYS && sizes.byIdentity <= MAX_KEYS && sizes.lineage <= MAX_KEYS, JSON.stringify(sizes));
      assert.ok(sizes.verifiedCsrs <= CSR_CACHE_SIZE);
      assert.equal(service.watcherCount, 0);
    }),
    { numRuns: NUM_RUNS, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
  ).catch((e: Error) => {
    // fast-check's summary holds the counterexample; the assertion that failed is its cause.
    throw new Error(`${e.message}\ncause: ${String((e.cause as Error | undefined)?.stack ?? e.cause)}`);
  });
  // The service never adds to the token store; a join token is either still there or marked used.
  assert.equal(readdirSync(dir).length, tokensCreated);
  // Every refusal is counted in tollgate_ca_refused_total{code}.
  const counted = (await registry.getSingleMetric('tollgate_ca_refused_total')!.get()).values;
  for (const [code, n] of tally.refused) assert.equal(counted.find((v) => v.labels.code === code)?.value, n, code);
  const seen = [...tally.refused.entries()].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
  t.diagnostic(`${NUM_RUNS} runs in ${Math.round(performance.now() - started)} ms: issued ${tally.issued}; refused ${seen}`);
  t.diagnostic(`tables at the end: ${JSON.stringify(service.tableSizes())}`);
  // The run reached past the easy refusals (else the property says little).
  for (const code of ['TG_CSR_INVALID', 'TG_TOKEN_INVALID', 'TG_RATE_LIMITED', 'TG_TOKEN_REUSED', 'TG_DENIED']) assert.ok(tally.refused.get(code), `no ${code} in the run`);
  assert.ok(tally.issued > 0);
});
