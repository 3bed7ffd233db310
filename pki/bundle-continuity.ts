// Trust continuity (PRODUCT.md §4, §10.8): a holder of trust accepts a new bundle only if its version
// is higher (an equal version must be the same roots), and every root it does not yet trust comes
// with an endorsement — a certificate for that root's subject and public key, signed by a root it
// already trusts and valid now. A stolen CA serving identity can push bundles, but it holds no root
// key, so it can never add a root of its own. Removing roots is always allowed: trust only shrinks.
import { TollgateError } from '../common/errors.ts';
import { checkSigningProfile, signedBy } from './svid-validate.ts';
import { parseCertificate, type ParsedCertificate } from './x509.ts';

export interface HeldTrust {
  /** 0 before any bundle from the CA: the bootstrap roots of the config. */
  readonly version: number;
  readonly roots: readonly Buffer[];
}

export interface OfferedBundle {
  readonly version: number;
  readonly roots: readonly Buffer[];
  readonly endorsements: readonly Buffer[];
}

export type ContinuityVerdict =
  | { readonly accept: true; readonly added: readonly Buffer[]; readonly removed: readonly Buffer[] }
  | { readonly accept: false; readonly unchanged: true };

function sameRoots(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((x) => b.some((y) => y.equals(x)));
}

function subjectText(c: ParsedCertificate): string {
  return c.subject.toString('hex').slice(0, 24);
}

/** The trusted root that vouches for `root` through one of `endorsements`, if any. */
export function endorserOf(root: ParsedCertificate, endorsements: readonly ParsedCertificate[], trusted: readonly ParsedCertificate[], now: number): ParsedCertificate | undefined {
  for (const e of endorsements) {
    if (!e.subject.equals(root.subject) || !e.spki.equals(root.spki)) continue;
    if (now < e.notBefore || now > e.notAfter) continue;
    try {
      checkSigningProfile(e);
    } catch {
      continue;
    }
    const by = trusted.find((t) => signedBy(e, t));
    if (by) return by;
  }
  return undefined;
}

/**
 * Decide whether `offered` may replace `held`. Returns `{accept: false, unchanged: true}` for a
 * repeat of the held bundle (nothing to do); throws TG_BUNDLE_ROLLBACK or TG_BUNDLE_UNENDORSED, with
 * what the operator can do, when it must be refused.
 */
export function checkContinuity(held: HeldTrust, offered: OfferedBundle, now: number): ContinuityVerdict {
  if (offered.version < held.version) {
    throw new TollgateError('TG_BUNDLE_ROLLBACK', `bundle version ${offered.version} is older than the held version ${held.version}; kept the current bundle`);
  }
  if (offered.version === held.version) {
    if (sameRoots(offered.roots, held.roots)) return { accept: false, unchanged: true };
    throw new TollgateError('TG_BUNDLE_ROLLBACK', `bundle version ${offered.version} has other roots than the held bundle of the same version; kept the current bundle`);
  }
  const trusted = held.roots.map((d) => parseCertificate(d));
  let endorsements: ParsedCertificate[] | null = null;
  const added: Buffer[] = [];
  for (const der of offered.roots) {
    if (held.roots.some((r) => r.equals(der))) continue;
    const root = parseCertificate(der);
    endorsements ??= offered.endorsements.flatMap((d) => {
      try {
        return [parseCertificate(d)];
      } catch {
        return [];
      }
    });
    if (!endorserOf(root, endorsements, trusted, now)) {
      throw new TollgateError(
        'TG_BUNDLE_UNENDORSED',
        `bundle version ${offered.version} adds root ${root.serialHex} (subject ${subjectText(root)}…) that no root this workload trusts has cross-signed; kept the current bundle. ` +
          'If every old root was lost, restart the workload with the new bundle as its bootstrap bundle',
      );
    }
    added.push(der);
  }
  const removed = held.roots.filter((r) => !offered.roots.some((o) => o.equals(r)));
  return { accept: true, added, removed };
}
