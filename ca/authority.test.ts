import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../common/clock.ts';
import { certsToPem } from '../pki/pem.ts';
import { createCsr, parseCsr } from '../pki/csr.ts';
import { LeafTemplate } from '../pki/svid-template.ts';
import { checkSigningProfile, signedBy } from '../pki/svid-validate.ts';
import { p256 } from '../pki/test-chain.ts';
import { basicConstraints, keyUsageBits, KeyUsage, Oid, parseCertificate, subjectKeyId, authorityKeyId } from '../pki/x509.ts';
import { createIntermediate, createRoot, crossSign } from './authority.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tg-auth-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const clock = new ManualClock(Date.UTC(2026, 0, 1));

test('crossSign: the new root\'s subject and key, signed by the old root, with a root\'s extensions', async () => {
  const oldRoot = await createRoot({ trustDomain: 'example.org', clock });
  clock.advance(100 * 86400_000);
  const newRoot = await createRoot({ trustDomain: 'example.org', clock });
  const other = await createRoot({ trustDomain: 'example.org', clock });
  const der = await crossSign({ root: newRoot.certificate, signer: oldRoot, trustDomain: 'example.org' });
  const x = parseCertificate(der);
  const n = parseCertificate(newRoot.certificate);
  assert.ok(x.spki.equals(n.spki), 'carries the new root\'s public key');
  assert.ok(x.subject.equals(n.subject), 'and its subject');
  assert.ok(x.issuer.equals(oldRoot.parsed.subject));
  assert.ok(new X509Certificate(der).verify(new X509Certificate(oldRoot.certificate).publicKey), 'verifies with the old root\'s key');
  assert.equal(new X509Certificate(der).verify(new X509Certificate(other.certificate).publicKey), false);
  assert.ok(signedBy(x, oldRoot.parsed));
  assert.equal(basicConstraints(x.extensions.get(Oid.basicConstraints)!).ca, true);
  assert.deepEqual([...keyUsageBits(x.extensions.get(Oid.keyUsage)!)].sort(), [KeyUsage.keyCertSign, KeyUsage.cRLSign].sort());
  assert.ok(x.extensions.get(Oid.nameConstraints)?.critical);
  assert.equal(checkSigningProfile(x).trustDomain, 'example.org');
  assert.ok(subjectKeyId(x)!.equals(subjectKeyId(n)!));
  assert.ok(authorityKeyId(x)!.equals(subjectKeyId(oldRoot.parsed)!));
  assert.equal(x.notBefore, n.notBefore);
  assert.equal(x.notAfter, oldRoot.parsed.notAfter, 'never outlives its signer');
});

test('a client that trusts only the old root verifies a leaf of the new root through the cross-certificate (openssl)', async () => {
  const oldRoot = await createRoot({ trustDomain: 'example.org', clock });
  const newRoot = await createRoot({ trustDomain: 'example.org', clock });
  const int = await createIntermediate({ trustDomain: 'example.org', root: newRoot, clock });
  const cross = await crossSign({ root: newRoot.certificate, signer: oldRoot, trustDomain: 'example.org' });
  const leaf = new LeafTemplate({ issuerCertificate: int.certificate, issuerKey: int.key }).issue({
    spki: parseCsr(createCsr(p256().key)).spki, spiffeId: 'spiffe://example.org/ns/a/sa/b', notBefore: clock.now() - 1000, notAfter: clock.now() + 3600_000,
  });
  const f = (name: string, ders: Buffer[]) => {
    const p = join(tmp, name);
    writeFileSync(p, certsToPem(ders));
    return p;
  };
  const at = `-attime=${Math.floor(clock.now() / 1000) + 60}`;
  const verify = (ca: string, untrusted: string) => spawnSync('openssl', ['verify', at, '-CAfile', ca, '-untrusted', untrusted, f('leaf.pem', [leaf.der])], { encoding: 'utf8' });
  const ok = verify(f('old.pem', [oldRoot.certificate]), f('chain.pem', [int.certificate, cross]));
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  const without = verify(f('old2.pem', [oldRoot.certificate]), f('chain2.pem', [int.certificate]));
  assert.notEqual(without.status, 0, 'without the cross-certificate the old root does not reach the new leaf');
});
