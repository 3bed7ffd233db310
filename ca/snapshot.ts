// One consistent view of the store for a running CA: the records at one revision, the active
// intermediate with its key, the bundle, and every intermediate certificate the store knows (a
// renewing client's chain may run through any of them). Built completely before it replaces the
// previous one, so a bad or partial revision never reaches the issuer or the watchers.
import { TollgateError } from '../common/errors.ts';
import { parseCertificate } from '../pki/x509.ts';
import { loadAuthority, type Authority } from './authority.ts';
import type { Bundle } from './service.ts';
import { active, bundleOf, deniedOf, type AuthorityRecord, type StoreRecords } from './slots.ts';
import type { AuthorityStore } from './store.ts';

export interface CaSnapshot {
  readonly revision: number;
  readonly records: StoreRecords;
  readonly trustDomain: string;
  readonly intermediate: Authority;
  readonly intermediateRecord: AuthorityRecord;
  /** The active root with its key: only when asked for (automatic rotation) and held in the store. */
  readonly root: Authority | undefined;
  readonly bundle: Bundle;
  /** Every intermediate certificate recorded (active, prepared, retiring, retired). */
  readonly intermediates: readonly Buffer[];
  /** Authority id by certificate serial (lower-case hex). */
  readonly idBySerial: ReadonlyMap<string, string>;
}

async function load(store: AuthorityStore, a: AuthorityRecord, certificate: Buffer): Promise<Authority> {
  const keyPkcs8 = await store.privateKey(a.id);
  if (!keyPkcs8) throw new TollgateError('TG_ROOT_KEY_MISSING', `the private key of ${a.kind} ${a.id} is not in the store`);
  return loadAuthority({ certificate, keyPkcs8, what: `${a.kind} ${a.id}` });
}

export async function loadSnapshot(store: AuthorityStore, o: { withRootKey: boolean; refreshHintSeconds: number }): Promise<CaSnapshot> {
  const { revision, records } = await store.read();
  const act = active(records);
  const certs = new Map<string, Buffer>();
  for (const a of records.authorities) {
    if (a.slot === 'retired' && a.kind === 'root') continue;
    const der = await store.certificate(a.id);
    if (parseCertificate(der).serialHex.toLowerCase() !== a.serial) {
      throw new TollgateError('TG_STORE_CORRUPT', `the certificate of ${a.id} does not have the recorded serial ${a.serial}`);
    }
    certs.set(a.id, der);
  }
  const intermediate = await load(store, act.intermediate, certs.get(act.intermediate.id)!);
  const root = o.withRootKey && act.root.keyInStore ? await load(store, act.root, certs.get(act.root.id)!) : undefined;
  const b = bundleOf(records);
  return {
    revision,
    records,
    trustDomain: records.trustDomain,
    intermediate,
    intermediateRecord: act.intermediate,
    root,
    bundle: {
      trustDomain: records.trustDomain,
      version: records.bundleVersion,
      roots: b.rootIds.map((id) => certs.get(id)!),
      endorsements: b.endorsements.map((der) => Buffer.from(der, 'base64')),
      refreshHintSeconds: o.refreshHintSeconds,
      deniedIds: deniedOf(records).ids,
      deniedSerials: deniedOf(records).serials,
    },
    intermediates: records.authorities.filter((a) => a.kind === 'intermediate').map((a) => certs.get(a.id)!),
    idBySerial: new Map(records.authorities.map((a) => [a.serial, a.id])),
  };
}
