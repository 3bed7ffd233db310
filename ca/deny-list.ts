// The deny-list (`tollgate ca deny`, PRODUCT.md §3): SPIFFE IDs and leaf serials the CA never issues
// or renews for and that sidecars refuse as peers. It lives in the store records (`denied`), so the
// directory and the Kubernetes store both carry it, every change is a compare-and-swap, and a change
// bumps the bundle version: the running CAs push it to sidecars with the bundle.
import type { Clock } from '../common/clock.ts';
import { isTollgateError, TollgateError } from '../common/errors.ts';
import { parseSpiffeId } from '../pki/spiffe-id.ts';
import { validateRecords, withBundleVersion, type DeniedEntry, type StoreRecords } from './slots.ts';
import type { AuthorityStore } from './store.ts';

const ATTEMPTS = 10;

export type DenyTarget = { readonly kind: 'spiffe_id' | 'serial'; readonly value: string };

/** A SPIFFE ID as parsed, a serial as lower-case hex bytes without leading zero bytes or colons. */
export function denyTarget(o: { spiffeId?: string | undefined; serial?: string | undefined }): DenyTarget {
  if ((o.spiffeId === undefined) === (o.serial === undefined)) throw new TollgateError('TG_USAGE', 'give exactly one of --spiffe-id ID or --serial HEX');
  if (o.spiffeId !== undefined) return { kind: 'spiffe_id', value: parseSpiffeId(o.spiffeId).id };
  let hex = o.serial!.replace(/[:\s]/g, '').toLowerCase();
  if (hex.length % 2 === 1) hex = `0${hex}`;
  hex = hex.replace(/^(00)+(?=..)/, ''); // as certificates' serials are read: leading zero bytes dropped
  if (!/^[0-9a-f]{2,40}$/.test(hex)) throw new TollgateError('TG_USAGE', `--serial ${JSON.stringify(o.serial)} is not a hexadecimal serial number`);
  return { kind: 'serial', value: hex };
}

function changed(r: StoreRecords, denied: readonly DeniedEntry[]): StoreRecords {
  return validateRecords(withBundleVersion(r, { ...r, denied }));
}

/** Records with `target` listed (unchanged when it already is). */
export function withDenied(r: StoreRecords, target: DenyTarget, o: { reason?: string | undefined; now: number }): StoreRecords {
  const list = r.denied ?? [];
  if (list.some((d) => d.kind === target.kind && d.value === target.value)) return r;
  return changed(r, [...list, { ...target, ...(o.reason ? { reason: o.reason } : {}), addedAt: new Date(o.now).toISOString() }]);
}

/** Records without `target` (unchanged when it is not listed). */
export function withoutDenied(r: StoreRecords, target: DenyTarget): StoreRecords {
  const list = r.denied ?? [];
  const rest = list.filter((d) => !(d.kind === target.kind && d.value === target.value));
  return rest.length === list.length ? r : changed(r, rest);
}

/** Apply `change` to the store's records with compare-and-swap, re-reading when another writer won. */
export async function updateDenyList(store: AuthorityStore, change: (r: StoreRecords) => StoreRecords): Promise<{ records: StoreRecords; changed: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const { revision, records } = await store.read();
    const next = change(records);
    if (next === records) return { records, changed: false };
    try {
      await store.commit(revision, next);
      return { records: next, changed: true };
    } catch (e) {
      if (!isTollgateError(e, 'TG_STORE_CONFLICT') || attempt >= ATTEMPTS) throw e;
    }
  }
}

export async function denyAdd(o: { store: AuthorityStore; target: DenyTarget; reason?: string | undefined; clock: Clock }) {
  return updateDenyList(o.store, (r) => withDenied(r, o.target, { reason: o.reason, now: o.clock.now() }));
}

export async function denyRemove(o: { store: AuthorityStore; target: DenyTarget }) {
  return updateDenyList(o.store, (r) => withoutDenied(r, o.target));
}
