// fast-check arbitraries for what a caller can put in an IssueSVID request, shared by the CA's
// property tests: in-process (ca/service.property.test.ts) and over real gRPC
// (test/ca-malformed-requests.test.ts).
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { createCsr } from '../../pki/csr.ts';
import { p256 } from '../../pki/test-chain.ts';

export const flip = (b: Buffer, i: number, x: number): Buffer => {
  const c = Buffer.from(b);
  c[i % c.length]! ^= x;
  return c;
};

/** Well-formed P-256 CSRs (weighted up), others' keys, random, truncated and bit-flipped DER, sizes around the 4 KiB cap. */
export function csrArb(goodCount = 4): { goodCsrs: Buffer[]; arb: fc.Arbitrary<Buffer> } {
  const goodCsrs = Array.from({ length: goodCount }, () => createCsr(p256().key));
  const wrongKeyCsrs = [
    createCsr(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey),
    createCsr(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey),
    createCsr(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey),
  ];
  const arb = fc.oneof(
    { arbitrary: fc.constantFrom(...goodCsrs), weight: 4 },
    fc.constantFrom(...wrongKeyCsrs),
    fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
    fc.tuple(fc.constantFrom(...goodCsrs), fc.nat()).map(([c, n]) => c.subarray(0, n % c.length)),
    fc.tuple(fc.constantFrom(...goodCsrs), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([c, i, x]) => flip(c, i, x)),
    // DER headers that promise more than they hold, and sizes around the cap.
    fc.constantFrom(Buffer.alloc(0), Buffer.from('3084ffffffff', 'hex'), Buffer.from('3080', 'hex'), Buffer.alloc(4097, 0x30), Buffer.alloc(8 * 1024, 0xff)),
  );
  return { goodCsrs, arb };
}

const b64u = fc.stringMatching(/^[A-Za-z0-9_-]{0,60}$/);
const b64json = fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v)).toString('base64url'));

/** Token strings no CA issued: any text, JWT-shaped garbage (some with JSON parts), join-token-shaped strings, one over 16 KiB. */
export const garbageTokenArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.tuple(b64u, b64u, b64u).map(([a, b, c]) => `${a}.${b}.${c}`),
  fc.tuple(b64json, b64json, b64u).map(([a, b, c]) => `${a}.${b}.${c}`),
  b64u.map((s) => `tgjoin.${s}`),
  fc.stringMatching(/^tgjoin\.[A-Za-z0-9_-]{43}$/),
  fc.constant('x'.repeat(17 * 1024)),
);

/** Namespace or service-account names a token's claims might carry, valid or not. */
export const k8sNameArb: fc.Arbitrary<string> = fc.oneof(fc.constantFrom('shop', 'web', 'a', 'tollgate', '..', '.', '', 'a/b', 'UPPER', 'x'.repeat(300)), fc.string({ maxLength: 20 }));

/** ttl_seconds as the proto's uint32 can carry it: absent, edges around min/max, anything. */
export const ttlArb: fc.Arbitrary<number | undefined> = fc.option(fc.oneof(fc.constantFrom(0, 1, 4, 5, 6, 3600, 86_400, 86_401, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 })), { nil: undefined });
