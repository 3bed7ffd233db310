// The webhook's own serving certificate (CONTRACT.md: the CA process serves the injection webhook).
// A plain TLS server certificate for the API server to verify against the Tollgate bundle that
// caBundle holds: issued by the CA's current intermediate, fresh P-256 key in memory on every
// issue, DNS SANs (the Service names) and IP SANs, serverAuth, 24 h, renewed at half its life on
// the injected clock by every replica for itself (no leader: a replica never serves a certificate
// another one renewed). A failed renewal keeps the current certificate and retries with backoff.
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { Gauge, type Registry } from 'prom-client';
import { isHostName } from '../common/address.ts';
import type { Clock, TimerHandle } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { certsToPem } from '../pki/pem.ts';
import { bytes, x509 } from '../pki/x509-lib.ts';
import type { Authority } from './authority.ts';

export const WEBHOOK_CERT_LIFETIME_MS = 24 * 3600 * 1000;
export const WEBHOOK_CERT_EXPIRY_METRIC = 'tollgate_webhook_certificate_expiry_timestamp_seconds';
/** Backdated like the CA's own certificates, for API servers with a slightly slow clock. */
const BACKDATE_MS = 5 * 60 * 1000;
const RETRY = { firstMs: 10_000, maxMs: 5 * 60_000 };

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface WebhookCertificateOptions {
  /** The intermediate that signs now (read on every issue, so a rotation is followed). */
  readonly intermediate: () => Authority;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry?: Registry;
  readonly lifetimeMs?: number;
}

export interface ServingCertificate {
  /** Leaf then intermediate, PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly serialHex: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Check SANs before anything is issued: a typo here would only show as TLS errors in the API server. */
export function checkSans(dnsNames: readonly string[], ipAddresses: readonly string[]): void {
  if (dnsNames.length + ipAddresses.length === 0) throw new TollgateError('TG_USAGE', 'the webhook certificate needs a name: give --webhook-dns-names (e.g. tollgate-ca.tollgate-system.svc) or --webhook-ip-sans');
  for (const d of dnsNames) if (!isHostName(d) || isIP(d) !== 0) throw new TollgateError('TG_USAGE', `--webhook-dns-names: ${JSON.stringify(d)} is not a DNS name; IP addresses go in --webhook-ip-sans`);
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw new TollgateError('TG_USAGE', `--webhook-ip-sans: ${JSON.stringify(ip)} is not an IP address`);
}

/** Issue one serving certificate from `intermediate` (pure but for the key and serial it draws). */
export async function issueServingCertificate(o: { intermediate: Authority; dnsNames: readonly string[]; ipAddresses: readonly string[]; now: number; lifetimeMs: number }): Promise<ServingCertificate> {
  const inter = o.intermediate;
  const notAfter = Math.min(o.now + o.lifetimeMs, inter.parsed.notAfter);
  if (notAfter - o.now < 60_000) throw new TollgateError('TG_AUTHORITY_EXPIRED', 'the intermediate expires within a minute; rotate it (tollgate ca rotate intermediate) to issue the webhook certificate');
  const notBefore = Math.max(o.now - BACKDATE_MS, inter.parsed.notBefore);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const subtle = webcrypto.subtle;
  const spki = await subtle.importKey('spki', bytes(publicKey.export({ format: 'der', type: 'spki' })), EC, true, ['verify']);
  const signer = await subtle.importKey('pkcs8', bytes(inter.keyPkcs8), EC, false, ['sign']);
  const issuer = new x509.X509Certificate(bytes(inter.certificate));
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const cn = o.dnsNames[0] ?? o.ipAddresses[0]!;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: `O=Tollgate, CN=${cn}`,
    issuer: issuer.subject,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    signingAlgorithm: SIGN,
    publicKey: spki as unknown as CryptoKey,
    signingKey: signer as unknown as CryptoKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([...o.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...o.ipAddresses.map((value) => ({ type: 'ip' as const, value }))], false),
      await x509.SubjectKeyIdentifierExtension.create(spki as unknown as CryptoKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer),
    ],
  });
  return {
    certPem: certsToPem([Buffer.from(cert.rawData), inter.certificate]),
    keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    serialHex: serial.toString('hex'),
    notBefore: Math.floor(notBefore / 1000) * 1000,
    notAfter: Math.floor(notAfter / 1000) * 1000,
  };
}

export class WebhookServingCertificate {
  readonly #o: WebhookCertificateOptions;
  readonly #listeners = new Set<(c: ServingCertificate) => void>();
  readonly #expiry: Gauge | null;
  #current: ServingCertificate;
  #timer: TimerHandle | undefined;
  #retryMs = RETRY.firstMs;
  #stopped = false;
  #inFlight: Promise<void> = Promise.resolve();

  private constructor(o: WebhookCertificateOptions, first: ServingCertificate) {
    this.#o = o;
    this.#current = first;
    this.#expiry = o.registry ? new Gauge({ name: WEBHOOK_CERT_EXPIRY_METRIC, help: "Expiry of the webhook's serving certificate (Unix seconds)", registers: [o.registry] }) : null;
  }

  /** Check the SANs, issue the first certificate and schedule its renewal. */
  static async start(o: WebhookCertificateOptions): Promise<WebhookServingCertificate> {
    checkSans(o.dnsNames, o.ipAddresses);
    const self = new WebhookServingCertificate(o, await WebhookServingCertificate.#issue(o));
    self.#installed();
    return self;
  }

  static #issue(o: WebhookCertificateOptions): Promise<ServingCertificate> {
    return issueServingCertificate({ intermediate: o.intermediate(), dnsNames: o.dnsNames, ipAddresses: o.ipAddresses, now: o.clock.now(), lifetimeMs: o.lifetimeMs ?? WEBHOOK_CERT_LIFETIME_MS });
  }

  get current(): ServingCertificate {
    return this.#current;
  }

  /** The TLS options of the current certificate (the webhook server's getter). */
  tlsOptions(): { cert: string; key: string } {
    return { cert: this.#current.certPem, key: this.#current.keyPem };
  }

  /** Resolves when the renewal under way (if any) has finished, well or not. */
  get settled(): Promise<void> {
    return this.#inFlight;
  }

  /** Called with each new certificate (e.g. the webhook server's reloadTls). */
  onRenew(listener: (c: ServingCertificate) => void): void {
    this.#listeners.add(listener);
  }

  /** Issue a new certificate now (also after an intermediate rotation); a failure keeps the current one. */
  renew(): Promise<void> {
    this.#inFlight = this.#renew();
    return this.#inFlight;
  }

  async #renew(): Promise<void> {
    this.#timer?.cancel();
    try {
      this.#current = await WebhookServingCertificate.#issue(this.#o);
      this.#retryMs = RETRY.firstMs;
    } catch (e) {
      const wait = this.#retryMs;
      this.#retryMs = Math.min(this.#retryMs * 2, RETRY.maxMs);
      this.#o.logger.error('cannot renew the webhook serving certificate; keeping the current one', { error: (e as Error).message, retry_in_ms: wait, not_after: new Date(this.#current.notAfter).toISOString() });
      if (!this.#stopped) this.#timer = this.#o.clock.setTimer(wait, () => void this.renew());
      return;
    }
    this.#installed();
    for (const l of this.#listeners) l(this.#current);
  }

  #installed(): void {
    const c = this.#current;
    this.#expiry?.set(Math.floor(c.notAfter / 1000));
    this.#o.logger.info('webhook serving certificate issued', { serial: c.serialHex, not_after: new Date(c.notAfter).toISOString(), dns_names: this.#o.dnsNames, ip_sans: this.#o.ipAddresses });
    if (this.#stopped) return;
    const halfLife = Math.max(1000, (c.notAfter - this.#o.clock.now()) / 2);
    this.#timer = this.#o.clock.setTimer(halfLife, () => void this.renew());
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }
}
