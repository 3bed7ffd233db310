// A new CA: a root and an intermediate with their slot records, ready to commit to any store in one
// write (`tollgate ca init`, and `ca serve --init-if-empty` on an empty store).
import { TollgateError, isTollgateError } from '../common/errors.ts';
import { writeFileAtomic } from '../common/files.ts';
import { toPem } from '../pki/pem.ts';
import { parseTrustDomain } from '../pki/spiffe-id.ts';
import { authorityRecord, createIntermediate, createRoot, type Authority } from './authority.ts';
import { INTERMEDIATE_LIFETIME_MS, ROOT_LIFETIME_MS, type StoreRecords } from './slots.ts';
import type { AuthorityStore, InitOptions, NewMaterial, Versioned } from './store.ts';

export interface NewCa {
  readonly records: StoreRecords;
  readonly material: readonly NewMaterial[];
  readonly root: Authority;
  readonly intermediate: Authority;
}

/**
 * The authorities and records of a new CA. Over `previous` (ca init --force) the bundle version
 * goes on from the old one's, so sidecars holding the old bundle accept the new one's number. In
 * offline-root mode the root key is written to `rootKeyOut` (0600) and left out of the material.
 */
export async function newCa(o: InitOptions, previous?: StoreRecords): Promise<NewCa> {
  const trustDomain = parseTrustDomain(o.trustDomain);
  const root = await createRoot({ trustDomain, clock: o.clock, lifetimeMs: o.rootLifetimeMs });
  const intermediate = await createIntermediate({ trustDomain, root, clock: o.clock, lifetimeMs: o.intermediateLifetimeMs });
  const now = o.clock.now();
  const rootRec = authorityRecord(root.certificate, { kind: 'root', slot: 'active', now, keyInStore: !o.rootKeyOut });
  const intRec = authorityRecord(intermediate.certificate, { kind: 'intermediate', slot: 'active', parent: rootRec.id, now, keyInStore: true });
  if (o.rootKeyOut) writeFileAtomic(o.rootKeyOut, toPem('PRIVATE KEY', root.keyPkcs8), 0o600);
  const records: StoreRecords = {
    format: 2,
    trustDomain,
    bundleVersion: (previous?.bundleVersion ?? 0) + 1,
    authorities: [rootRec, intRec],
    rotation: null,
    ...(o.rootLifetimeMs || o.intermediateLifetimeMs
      ? { lifetimes: { root: o.rootLifetimeMs ?? ROOT_LIFETIME_MS, intermediate: o.intermediateLifetimeMs ?? INTERMEDIATE_LIFETIME_MS } }
      : {}),
  };
  const material: NewMaterial[] = [
    { id: rootRec.id, certificate: root.certificate, keyPkcs8: o.rootKeyOut ? undefined : root.keyPkcs8 },
    { id: intRec.id, certificate: intermediate.certificate, keyPkcs8: intermediate.keyPkcs8 },
  ];
  return { records, material, root, intermediate };
}

/**
 * First start: the store's records, or, when it holds none, a new CA committed at revision 0. The
 * commit is the store's compare-and-swap (create-if-absent), so when several processes start on one
 * empty store together exactly one CA is created: every other commit conflicts, its authorities
 * (never written anywhere) are dropped, and it reads the winner's. A process that dies before its
 * commit leaves nothing behind; the commit itself writes authorities and records at once.
 */
export async function initIfEmpty(store: AuthorityStore, o: Omit<InitOptions, 'force' | 'rootKeyOut'>): Promise<{ created: boolean; lostRace: boolean; current: Versioned }> {
  try {
    return { created: false, lostRace: false, current: await store.read() };
  } catch (e) {
    if (!isTollgateError(e, 'TG_STORE_MISSING')) throw e;
  }
  const made = await newCa(o);
  try {
    const revision = await store.commit(0, made.records, made.material);
    return { created: true, lostRace: false, current: { revision, records: made.records } };
  } catch (e) {
    if (!isTollgateError(e, 'TG_STORE_CONFLICT')) throw e;
    return { created: false, lostRace: true, current: await store.read() };
  }
}

/** Refuse a store made for another trust domain than the one this process was told to serve. */
export function expectTrustDomain(records: StoreRecords, trustDomain: string | undefined, where: string): void {
  if (trustDomain === undefined || records.trustDomain === parseTrustDomain(trustDomain)) return;
  throw new TollgateError('TG_CONFIG_INVALID', `the CA in ${where} is for trust domain ${records.trustDomain}, not ${trustDomain}; give the same --trust-domain (the chart's trustDomain) or point at the right store`);
}
