// The CA's own serving certificate (ca/server-identity.ts) on a ManualClock: issued at construction
// under the reserved CA identity, renewed at half of its life, handed to grpc-js listeners on every
// change, kept when a renewal fails, and switched to a new intermediate by setIssuer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { createLogger } from '../common/log.ts';
import { pemToCertDers } from '../pki/pem.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { parseCertificate } from '../pki/x509.ts';
import { createIntermediate, createRoot } from './authority.ts';
import { SvidIssuer } from './issuer.ts';
import { CaServerIdentity } from './server-identity.ts';

const CA_ID = 'spiffe://example.org/tollgate/ca';
const HOUR = 3600_000;

async function rig() {
  const clock = new ManualClock(Date.UTC(2026, 0, 10));
  const root = await createRoot({ trustDomain: 'example.org', clock });
  const intermediate = await createIntermediate({ trustDomain: 'example.org', root, clock });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ out: { write: (l: string) => logs.push(JSON.parse(l) as Record<string, unknown>) }, clock });
  const issuer = new SvidIssuer({ intermediate, clock });
  const identity = new CaServerIdentity({ spiffeId: CA_ID, issuer, roots: [root.certificate], clock, logger });
  const served: Buffer[][] = [];
  identity.addIdentityCertificateListener((u) => served.push(pemToCertDers(u!.certificate.toString())));
  const trusted: Buffer[][] = [];
  identity.addCaCertificateListener((u) => trusted.push(pemToCertDers(u!.caCertificate.toString())));
  await Promise.resolve(); // listeners get their first update after registration (a microtask)
  return { clock, root, intermediate, issuer, identity, served, trusted, logs };
}

const serial = (der: Buffer): string => parseCertificate(der).serialHex;

test('at start: a serving SVID for the CA identity, 24 h (the issuer maximum), chained to the root; listeners get it and the roots', async () => {
  const r = await rig();
  const [leaf, inter] = r.identity.chain;
  const v = verifySvidChain({ leaf: leaf!, intermediates: [inter!], roots: [r.root.certificate], now: r.clock.now() });
  assert.equal(v.spiffeId.id, CA_ID);
  assert.ok(inter!.equals(r.intermediate.certificate));
  assert.equal(r.identity.notAfter - r.clock.now(), 24 * HOUR);
  assert.equal(r.identity.notAfter, parseCertificate(leaf!).notAfter);
  assert.equal(r.served.length, 1);
  assert.ok(r.served[0]![0]!.equals(leaf!), 'grpc-js gets the same chain');
  assert.deepEqual(r.trusted, [[r.root.certificate]]);
  r.identity.stop();
});

test('renewed at half of its life, not before; listeners get the new certificate; the key stays', async () => {
  const r = await rig();
  const first = r.identity.chain[0]!;
  r.clock.advance(12 * HOUR - 1000);
  assert.ok(r.identity.chain[0]!.equals(first), 'not renewed before half-life');
  assert.equal(r.served.length, 1);
  r.clock.advance(1000);
  const second = r.identity.chain[0]!;
  assert.notEqual(serial(second), serial(first), 'renewed at half-life');
  assert.equal(r.identity.notAfter, r.clock.now() + 24 * HOUR);
  assert.equal(r.served.length, 2);
  assert.ok(r.served[1]![0]!.equals(second));
  assert.ok(parseCertificate(second).spki.equals(parseCertificate(first).spki), 'same in-memory key');
  r.clock.advance(12 * HOUR);
  assert.equal(r.served.length, 3, 'and again half a life later');
  r.identity.stop();
  r.clock.advance(48 * HOUR);
  assert.equal(r.served.length, 3, 'stop() cancels the next renewal');
});

test('a renewal that fails keeps the current certificate and logs it; setIssuer switches at once or keeps the old issuer', async () => {
  const r = await rig();
  const before = r.identity.chain[0]!;
  const past = new ManualClock(r.clock.now() - 40 * 24 * HOUR);
  const stale = await createIntermediate({ trustDomain: 'example.org', root: await createRoot({ trustDomain: 'example.org', clock: past }), clock: past });
  assert.throws(() => r.identity.setIssuer(new SvidIssuer({ intermediate: stale, clock: r.clock })), (e: Error & { code?: string }) => e.code === 'TG_AUTHORITY_EXPIRED');
  assert.ok(r.identity.chain[0]!.equals(before), 'a failed setIssuer keeps the certificate');
  r.identity.renew();
  assert.ok(r.identity.chain[1]!.equals(r.intermediate.certificate), '...and the previous issuer, which still renews');

  // Near the intermediate's end the issuer cuts leaves to its notAfter; past it, it refuses.
  r.clock.set(r.intermediate.parsed.notAfter - 2 * HOUR);
  r.identity.renew();
  const cut = r.identity.chain[0]!;
  assert.equal(r.identity.notAfter, r.intermediate.parsed.notAfter, 'never past the intermediate');
  // Renewals follow at half of each remaining life until the issuer refuses (less than its minimum TTL left).
  r.clock.advance(2 * HOUR);
  assert.ok(r.logs.some((l) => l.level === 'error' && /cannot renew the CA serving certificate/.test(String(l.msg))), 'the failed renewal is logged');
  const kept = r.identity.chain[0]!;
  assert.notEqual(serial(kept), serial(cut), 'renewed before the failure');
  assert.equal(r.identity.notAfter, r.intermediate.parsed.notAfter, 'the last good certificate stays');
  const freshRoot = await createRoot({ trustDomain: 'example.org', clock: r.clock });
  const fresh = await createIntermediate({ trustDomain: 'example.org', root: freshRoot, clock: r.clock });
  r.identity.setIssuer(new SvidIssuer({ intermediate: fresh, clock: r.clock }));
  assert.ok(r.identity.chain[1]!.equals(fresh.certificate), 'served from the new intermediate at once');
  assert.equal(r.identity.notAfter, r.clock.now() + 24 * HOUR);
  r.identity.setRoots([r.root.certificate, freshRoot.certificate]);
  assert.deepEqual(r.trusted.at(-1), [r.root.certificate, freshRoot.certificate], 'the new client-trust roots reach grpc-js');
  r.identity.stop();
});

test('a renewal that fails is tried again within a minute, not only at the next intermediate rotation', async () => {
  const r = await rig();
  let failures = 0;
  class FlakyIssuer extends SvidIssuer {
    override issue(...a: Parameters<SvidIssuer['issue']>): ReturnType<SvidIssuer['issue']> {
      if (failures > 0) {
        failures--;
        throw new Error('the store is briefly unreachable');
      }
      return super.issue(...a);
    }
  }
  r.identity.setIssuer(new FlakyIssuer({ intermediate: r.intermediate, clock: r.clock }));
  const first = serial(r.identity.chain[0]!);
  failures = 2;
  r.clock.advance(12 * HOUR); // half of its 24 h: the renewal fails
  assert.equal(serial(r.identity.chain[0]!), first, 'kept while renewals fail');
  assert.ok(r.logs.some((l) => /trying again/.test(String(l.msg)) && l.retry_in_ms === 60_000));
  r.clock.advance(60_000); // the retry fails too
  assert.equal(serial(r.identity.chain[0]!), first);
  r.clock.advance(60_000); // and the next one succeeds
  assert.notEqual(serial(r.identity.chain[0]!), first, 'renewed by a retry');
  assert.equal(r.identity.notAfter, r.clock.now() + 24 * HOUR);
  r.identity.stop();
});

