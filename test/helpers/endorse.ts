// Test support: a cross-certificate that vouches for `subject` (a root) with the key of `by` (a root
// already trusted), as the CA puts in Bundle.endorsements during a root rotation.
import { randomBytes, webcrypto } from 'node:crypto';
import type { Authority } from '../../ca/authority.ts';
import { bytes, x509 } from '../../pki/x509-lib.ts';

const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function endorse(subject: Authority, by: Authority): Promise<Buffer> {
  const s = new x509.X509Certificate(bytes(subject.certificate));
  const b = new x509.X509Certificate(bytes(by.certificate));
  const signingKey = await webcrypto.subtle.importKey('pkcs8', bytes(by.keyPkcs8), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `40${randomBytes(15).toString('hex')}`,
    subject: s.subject,
    issuer: b.subject,
    notBefore: s.notBefore,
    notAfter: new Date(Math.min(s.notAfter.getTime(), b.notAfter.getTime())),
    signingAlgorithm: SIGN,
    publicKey: s.publicKey,
    signingKey: signingKey as unknown as CryptoKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ...s.extensions.filter((e) => e.type === '2.5.29.17'),
    ],
  });
  return Buffer.from(cert.rawData);
}
