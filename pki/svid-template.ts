// Leaf X.509-SVIDs built by splicing a precomputed DER template and signing with node:crypto.
// @peculiar/x509 builds ~580 certs/s here; this path is bounded by one ECDSA signature per leaf.
// Building a credential is kept apart from validating one (pki/svid-validate.ts), as SPIRE does.
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import { Tag, encodeOid, encodeTime, tlv } from './der.ts';
import { TollgateError } from './errors.ts';
import { parseWorkloadId } from './spiffe-id.ts';
import { Oid, keyIdentifier, parseCertificate, subjectKeyId } from './x509.ts';

const VERSION_3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const ECDSA_SHA256 = tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256));
const EMPTY_NAME = Buffer.from([0x30, 0x00]);
const CRITICAL = Buffer.from([0x01, 0x01, 0xff]);

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? tlv(Tag.SEQUENCE, encodeOid(oid), CRITICAL, tlv(Tag.OCTET_STRING, value)) : tlv(Tag.SEQUENCE, encodeOid(oid), tlv(Tag.OCTET_STRING, value));
}

// Constant extensions of every leaf: cA=false; keyUsage digitalSignature only (critical);
// extKeyUsage serverAuth + clientAuth.
const FIXED_EXTENSIONS = Buffer.concat([
  extension(Oid.basicConstraints, true, Buffer.from([0x30, 0x00])),
  extension(Oid.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80])),
  extension(Oid.extKeyUsage, false, tlv(Tag.SEQUENCE, encodeOid(Oid.serverAuth), encodeOid(Oid.clientAuth))),
]);
const SKI_PREFIX = Buffer.concat([Buffer.from([0x30, 0x1d]), encodeOid(Oid.subjectKeyId), Buffer.from([0x04, 0x16, 0x04, 0x14])]);

export interface LeafRequest {
  /** DER SubjectPublicKeyInfo of the workload key (already verified from its CSR). */
  readonly spki: Buffer;
  readonly spiffeId: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** 16 bytes; random when omitted. */
  readonly serial?: Buffer;
}

export interface IssuedLeaf {
  readonly der: Buffer;
  readonly serialHex: string;
}

/** 128-bit positive serial: DER INTEGER 0x00 + 16 bytes with the top bit set, so its length is fixed. */
export function newSerial(): Buffer {
  const b = randomBytes(16);
  b[0]! |= 0x80;
  return b;
}

export class LeafTemplate {
  readonly #issuerName: Buffer;
  readonly #akiExt: Buffer;
  readonly #key: KeyObject;
  readonly issuerNotAfter: number;
  readonly issuerNotBefore: number;

  constructor(options: { issuerCertificate: Buffer; issuerKey: KeyObject }) {
    const issuer = parseCertificate(options.issuerCertificate);
    this.#issuerName = issuer.subject;
    const kid = subjectKeyId(issuer) ?? keyIdentifier(issuer.spki);
    this.#akiExt = extension(Oid.authorityKeyId, false, tlv(Tag.SEQUENCE, tlv(0x80, kid)));
    this.#key = options.issuerKey;
    this.issuerNotAfter = issuer.notAfter;
    this.issuerNotBefore = issuer.notBefore;
  }

  issue(req: LeafRequest): IssuedLeaf {
    parseWorkloadId(req.spiffeId);
    if (req.notAfter > this.issuerNotAfter) {
      throw new TollgateError('TG_AUTHORITY_EXPIRED', 'a leaf may not outlive its issuer: notAfter is past the intermediate\'s notAfter');
    }
    if (req.notAfter <= req.notBefore) throw new TollgateError('TG_TTL_INVALID', 'notAfter must be after notBefore');
    const serial = req.serial ?? newSerial();
    if (serial.length !== 16 || (serial[0]! & 0x80) === 0) throw new TollgateError('TG_INTERNAL', 'serial must be 16 bytes with the top bit set');
    const uri = Buffer.from(req.spiffeId, 'ascii');
    // Subject is empty, so the SAN extension is critical (RFC 5280 4.2.1.6, SPIFFE X509-SVID 4.1).
    const san = extension(Oid.subjectAltName, true, tlv(Tag.SEQUENCE, tlv(0x86, uri)));
    const ski = Buffer.concat([SKI_PREFIX, keyIdentifier(req.spki)]);
    const tbs = tlv(
      Tag.SEQUENCE,
      VERSION_3,
      tlv(Tag.INTEGER, Buffer.from([0]), serial),
      ECDSA_SHA256,
      this.#issuerName,
      tlv(Tag.SEQUENCE, encodeTime(req.notBefore), encodeTime(req.notAfter)),
      EMPTY_NAME,
      req.spki,
      tlv(Tag.CTX3, tlv(Tag.SEQUENCE, FIXED_EXTENSIONS, san, ski, this.#akiExt)),
    );
    const sig = sign('sha256', tbs, this.#key);
    const der = tlv(Tag.SEQUENCE, tbs, ECDSA_SHA256, tlv(Tag.BIT_STRING, Buffer.from([0]), sig));
    return { der, serialHex: serial.toString('hex') };
  }
}
