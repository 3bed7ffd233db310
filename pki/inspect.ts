// `tollgate cert inspect FILE|HOST:PORT [--bundle FILE] [--json]`: describe a certificate chain for
// humans (formatInspection) or scripts (the Inspection object, stable snake_case field names).
// Display fields come from @peculiar/x509; the verdicts (profile, chain) come from the same checks the
// CA and sidecar run (pki/svid-validate.ts), so inspect never disagrees with them.
import { formatDuration as formatMs } from '../common/duration.ts';
import { peerCertificateChain } from './tls-peer.ts';
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { parseHostPort, type HostPort } from '../common/address.ts';
import { TollgateError, isTollgateError } from '../common/errors.ts';
import { readCertificates } from './pem.ts';
import { parseSpiffeId } from './spiffe-id.ts';
import { checkLeafProfile, checkSigningProfile, verifySvidChain } from './svid-validate.ts';
import { parseCertificate, subjectAltNames, Oid } from './x509.ts';
import { bytes, x509 } from './x509-lib.ts';

export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** Lower-case hex, no leading zero bytes. */
  serial: string;
  not_before: string;
  not_after: string;
  /** Negative once expired. */
  expires_in_seconds: number;
  is_ca: boolean;
  /** e.g. "ECDSA P-256", "RSA 2048", "Ed25519" */
  key: string;
  uri_sans: string[];
  dns_sans: string[];
  key_usage: string[];
  ext_key_usage: string[];
  /** Colon-separated upper-case hex, as openssl and keytool print it. */
  fingerprint_sha256: string;
  /** X.509-SVID leaf profile for the first certificate, signing-certificate profile for the others. */
  profile: { ok: boolean; error?: string };
}

export interface Inspection {
  spiffe_id: string | null;
  chain: CertificateInfo[];
  verification: { checked: boolean; ok?: boolean; error?: string; code?: string };
}

const KEY_USAGE_NAMES: ReadonlyArray<[number, string]> = [
  [x509.KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [x509.KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [x509.KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [x509.KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [x509.KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [x509.KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [x509.KeyUsageFlags.cRLSign, 'cRLSign'],
  [x509.KeyUsageFlags.encipherOnly, 'encipherOnly'],
  [x509.KeyUsageFlags.decipherOnly, 'decipherOnly'],
];

const EKU_NAMES: Readonly<Record<string, string>> = {
  [x509.ExtendedKeyUsage.serverAuth]: 'serverAuth',
  [x509.ExtendedKeyUsage.clientAuth]: 'clientAuth',
  [x509.ExtendedKeyUsage.codeSigning]: 'codeSigning',
  [x509.ExtendedKeyUsage.emailProtection]: 'emailProtection',
  [x509.ExtendedKeyUsage.timeStamping]: 'timeStamping',
  [x509.ExtendedKeyUsage.ocspSigning]: 'OCSPSigning',
};

const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

function describeKey(cert: X509Certificate): string {
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      return `ECDSA ${CURVES[d.namedCurve ?? ''] ?? d.namedCurve ?? 'unknown curve'}`;
    case 'rsa':
    case 'rsa-pss':
      return `RSA ${d.modulusLength ?? '?'}`;
    case 'ed25519':
      return 'Ed25519';
    case 'ed448':
      return 'Ed448';
    default:
      return key.asymmetricKeyType ?? 'unknown';
  }
}

function sans(cert: x509.X509Certificate, der: Buffer): { uris: string[]; dns: string[] } {
  try {
    const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const items = ext?.names.items ?? [];
    return { uris: items.filter((n) => n.type === 'url').map((n) => n.value), dns: items.filter((n) => n.type === 'dns').map((n) => n.value) };
  } catch {
    // @peculiar/x509 refuses some GeneralName forms (otherName, x400Address); fall back to the DER reader.
    const ext = parseCertificate(der).extensions.get(Oid.subjectAltName);
    const s = ext ? subjectAltNames(ext) : { uris: [], dns: [] };
    return { uris: s.uris, dns: s.dns };
  }
}

function profileOf(der: Buffer, isLeaf: boolean): { ok: boolean; error?: string } {
  try {
    const parsed = parseCertificate(der);
    if (isLeaf) checkLeafProfile(parsed);
    else checkSigningProfile(parsed);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function describeOne(der: Buffer, index: number, now: number): CertificateInfo {
  let cert: x509.X509Certificate;
  let node: X509Certificate;
  try {
    cert = new x509.X509Certificate(bytes(der));
    node = new X509Certificate(der);
  } catch (e) {
    throw new TollgateError('TG_CERT_INVALID', `certificate ${index} of the chain is not a valid X.509 certificate: ${(e as Error).message}`, { cause: e });
  }
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const { uris, dns } = sans(cert, der);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serial: cert.serialNumber.toLowerCase().replace(/^(00)+(?=..)/, ''),
    not_before: cert.notBefore.toISOString(),
    not_after: cert.notAfter.toISOString(),
    expires_in_seconds: Math.floor((cert.notAfter.getTime() - now) / 1000),
    is_ca: cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
    key: describeKey(node),
    uri_sans: uris,
    dns_sans: dns,
    key_usage: ku ? KEY_USAGE_NAMES.filter(([flag]) => (ku.usages & flag) !== 0).map(([, name]) => name) : [],
    // Array.from: `usages` is an Array subclass, and the Inspection must be plain JSON data.
    ext_key_usage: eku ? Array.from(eku.usages, (u) => EKU_NAMES[String(u)] ?? String(u)) : [],
    fingerprint_sha256: node.fingerprint256,
    profile: profileOf(der, index === 0),
  };
}

function spiffeIdOf(uris: readonly string[]): string | null {
  for (const u of uris) {
    try {
      return parseSpiffeId(u).id;
    } catch {
      // not a SPIFFE ID; keep looking
    }
  }
  return null;
}

/** Describe a chain (leaf first); verify it against `bundle` (trusted roots) when one is given. */
export function describeCertificates(chainDer: readonly Buffer[], options: { bundle?: readonly Buffer[]; now: number }): Inspection {
  if (chainDer.length === 0) throw new TollgateError('TG_CERT_INVALID', 'no certificate to inspect');
  const chain = chainDer.map((der, i) => describeOne(der, i, options.now));
  let verification: Inspection['verification'] = { checked: false };
  if (options.bundle !== undefined) {
    try {
      verifySvidChain({ leaf: chainDer[0]!, intermediates: chainDer.slice(1), roots: options.bundle, now: options.now });
      verification = { checked: true, ok: true };
    } catch (e) {
      const code = isTollgateError(e) ? e.code : 'TG_INTERNAL';
      verification = { checked: true, ok: false, code, error: (e as Error).message };
    }
  }
  return { spiffe_id: spiffeIdOf(chain[0]!.uri_sans), chain, verification };
}

/** "58m", "2h 5m", "29d 23h", "45s" */
// Whole durations for humans (seconds in, e.g. "58m", "2h5m"): one formatter for the whole CLI.
function formatDuration(seconds: number): string {
  return formatMs(Math.abs(seconds) * 1000);
}

function validity(c: CertificateInfo): string {
  const now = Date.parse(c.not_after) - c.expires_in_seconds * 1000;
  const nb = Date.parse(c.not_before);
  let state: string;
  if (now < nb) state = `NOT YET VALID, starts in ${formatDuration(Math.ceil((nb - now) / 1000))}`;
  else if (c.expires_in_seconds < 0) state = `EXPIRED ${formatDuration(c.expires_in_seconds)} ago`;
  else state = `expires in ${formatDuration(c.expires_in_seconds)}`;
  return `${c.not_before} to ${c.not_after} (${state})`;
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}

/** Human-readable report: SPIFFE ID, each certificate, then the chain verdict. */
export function formatInspection(i: Inspection): string {
  const lines: string[] = [`SPIFFE ID: ${i.spiffe_id ?? '(none)'}`];
  i.chain.forEach((c, n) => {
    const role = n === 0 ? 'leaf' : c.is_ca ? 'CA' : 'not a CA';
    lines.push('', `Certificate ${n} (${role})`);
    const rows: Array<[string, string]> = [
      ['Subject', c.subject === '' ? '(empty)' : c.subject],
      ['Issuer', c.issuer === '' ? '(empty)' : c.issuer],
      ['Serial', c.serial],
      ['Validity', validity(c)],
      ['Key', c.key],
      ['URI SANs', list(c.uri_sans)],
    ];
    if (c.dns_sans.length > 0) rows.push(['DNS SANs', list(c.dns_sans)]);
    rows.push(
      ['Key usage', list(c.key_usage)],
      ['Ext key usage', list(c.ext_key_usage)],
      ['SHA-256', c.fingerprint_sha256],
      ['Profile', c.profile.ok ? `OK (${n === 0 ? 'X.509-SVID leaf' : 'signing certificate'})` : `INVALID: ${c.profile.error}`],
    );
    for (const [k, v] of rows) lines.push(`  ${`${k}:`.padEnd(15)}${v}`);
  });
  lines.push('');
  const v = i.verification;
  if (!v.checked) lines.push('Verification: not checked (no --bundle given)');
  else if (v.ok) lines.push('Verification: OK against bundle');
  else lines.push(`Verification: FAILED ${v.code}: ${v.error}`);
  return `${lines.join('\n')}\n`;
}

/** Certificates in a PEM file (any number) or a DER file (one). */
export function loadCertificateFile(path: string): Buffer[] {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new TollgateError('TG_CERT_INVALID', `cannot read certificate file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return readCertificates(data, path);
}

export type Target = { kind: 'file'; path: string } | { kind: 'network'; host: string; port: number };

/** "host:port", "1.2.3.4:port" or "[v6]:port" with a port 1..65535, else undefined. */
export function splitHostPort(s: string): HostPort | undefined {
  const r = parseHostPort(s, { allowPortZero: false });
  return 'problem' in r ? undefined : r;
}

function showTarget(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** FILE or HOST:PORT? An existing readable file wins. */
export function parseTarget(s: string): Target {
  try {
    if (statSync(s).isFile()) {
      accessSync(s, constants.R_OK);
      return { kind: 'file', path: s };
    }
  } catch {
    // not a readable file: try HOST:PORT
  }
  const hp = splitHostPort(s);
  if (hp) return { kind: 'network', ...hp };
  throw new TollgateError('TG_USAGE', `${JSON.stringify(s)} is neither a readable file nor HOST:PORT`);
}

export interface FetchOptions {
  /** Default 5000. */
  timeoutMs?: number;
  clientCertPem?: string;
  clientKeyPem?: string;
  /** SNI; defaults to the host when it is a name, none for an IP address. */
  servername?: string;
}

const HANDSHAKE_ABORTED = /certificate required|handshake failure|peer did not return a certificate|disconnected before secure TLS connection|ECONNRESET/i;


/** Connect with TLS (no verification), return the certificates the server sent, leaf first. */
export function fetchPeerChain(target: string, options: FetchOptions = {}): Promise<Buffer[]> {
  const hp = splitHostPort(target);
  if (!hp) return Promise.reject(new TollgateError('TG_USAGE', `${JSON.stringify(target)} is not HOST:PORT`));
  const { host, port } = hp;
  const shown = showTarget(host, port);
  const timeoutMs = options.timeoutMs ?? 5000;
  const servername = options.servername ?? (isIP(host) === 0 ? host : undefined);
  const withClientCert = options.clientCertPem !== undefined && options.clientKeyPem !== undefined;
  return new Promise((resolve, reject) => {
    let settled = false;
    const socket = tls.connect({
      host,
      port,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      ...(servername !== undefined ? { servername } : {}),
      ...(withClientCert ? { cert: options.clientCertPem, key: options.clientKeyPem } : {}),
    });
    const timer = setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    function settle(): boolean {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      return true;
    }
    function fail(e: Error): void {
      if (!settle()) return;
      // OpenSSL errors carry a short `reason` ("sslv3 alert handshake failure"); prefer it to the
      // multi-line message with source file names.
      const short = (e as Error & { reason?: unknown }).reason;
      let reason = typeof short === 'string' && short !== '' ? short : e.message.trim();
      // Over TLS 1.2 a server that demands a client certificate (a Tollgate sidecar does) ends the
      // handshake before its Finished, and Node exposes no peer certificate before 'secureConnect'.
      // Over TLS 1.3 the client's handshake completes first, so the chain is read there.
      if (!withClientCert && HANDSHAKE_ABORTED.test(reason)) {
        reason += ' (the server may require a client certificate: pass one to read its chain)';
      }
      reject(new TollgateError('TG_UNAVAILABLE', `cannot connect to ${shown}: ${reason}`, { cause: e }));
    }
    socket.once('secureConnect', () => {
      const chain = peerCertificateChain(socket.getPeerCertificate(true));
      if (chain.length === 0) return fail(new Error('the server sent no certificate'));
      if (settle()) resolve(chain);
    });
    // After settling, a late alert (e.g. the server refusing our missing client certificate) is ignored.
    socket.on('error', (e) => fail(e));
    socket.once('close', () => fail(new Error('connection closed before the TLS handshake completed')));
  });
}
