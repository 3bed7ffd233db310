// Authority slots (PRODUCT.md §4, after SPIRE's prepared/active/old slots): the records every CA
// process and the CLI share through the store, and the pure transitions between them. No I/O here:
// ca/store.ts persists the records, ca/rotation-steps.ts makes the certificates.
//
//   prepared ──activate──▶ active ──(successor activated)──▶ retiring ──retire──▶ retired
//
// `retiring` is the fourth slot the three of the brief cannot express: an authority that no longer
// issues but whose leaves may still be alive, so a retiring root stays in the bundle until `retire`.
// The records are plain JSON (times as ISO strings) so a Kubernetes Secret can hold them as they are.
import { TollgateError } from '../common/errors.ts';

export type AuthorityKind = 'root' | 'intermediate';
export type SlotName = 'prepared' | 'active' | 'retiring' | 'retired';
export type RotationPhase = 'prepared' | 'activated' | 'done';

export interface AuthorityRecord {
  readonly id: string;
  readonly kind: AuthorityKind;
  readonly slot: SlotName;
  /** Intermediates: the id of the root that signed it. */
  readonly parent?: string;
  /** Lower-case hex, as parsed from the certificate. */
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly createdAt: string;
  readonly activatedAt?: string;
  /** When it stopped issuing (its successor was activated). */
  readonly retiringAt?: string;
  readonly retiredAt?: string;
  /** False when the private key is kept outside the store (offline root). */
  readonly keyInStore: boolean;
  /** Roots made by rotation: a cross-certificate (base64 DER) of this root signed by `signer`. */
  readonly endorsement?: { readonly signer: string; readonly der: string };
}

export interface RotationRecord {
  readonly kind: AuthorityKind;
  readonly phase: RotationPhase;
  /** Started by `ca serve` on its own (intermediates only) rather than by `ca rotate`. */
  readonly automatic: boolean;
  /** Authorities being replaced (root rotation: the root and its active intermediate). */
  readonly old: readonly string[];
  /** Authorities replacing them (root rotation: the new root and its intermediate). */
  readonly new: readonly string[];
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly activatedAt?: string;
  readonly owner: { readonly pid: number; readonly host: string };
}

export interface StoreRecords {
  readonly format: 2;
  readonly trustDomain: string;
  /** Increases whenever the bundle's content (roots, their order, endorsements) changes. */
  readonly bundleVersion: number;
  readonly authorities: readonly AuthorityRecord[];
  /** The rotation in progress, or the last one (phase `done`); null before any. */
  readonly rotation: RotationRecord | null;
  /** Lifetimes (ms) of new authorities, set by `ca init`; the defaults of PRODUCT.md §3 when absent. */
  readonly lifetimes?: { readonly root: number; readonly intermediate: number };
  /** The deny-list (`tollgate ca deny`): part of the bundle, so a change bumps bundleVersion. */
  readonly denied?: readonly DeniedEntry[];
}

/** One deny-list entry: a SPIFFE ID or a leaf serial (lower-case hex), never issued or renewed for. */
export interface DeniedEntry {
  readonly kind: 'spiffe_id' | 'serial';
  readonly value: string;
  readonly reason?: string;
  readonly addedAt: string;
}

export interface Owner {
  readonly pid: number;
  readonly host: string;
}

export const DAY_MS = 24 * 3600 * 1000;
/** Lifetimes of new authorities (PRODUCT.md §3); an intermediate never outlives its root. */
export const ROOT_LIFETIME_MS = 365 * DAY_MS;
export const INTERMEDIATE_LIFETIME_MS = 30 * DAY_MS;
/** The last third of a certificate's life is its warning window (PRODUCT.md §4). */
export const WARNING_FRACTION = 1 / 3;
/** Automatic intermediate rotation: prepare at 1/2 of the active one's life, activate at 2/3. */
export const PREPARE_AT = 1 / 2;
export const ACTIVATE_AT = 2 / 3;

export const ms = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();

export function lifePoint(a: Pick<AuthorityRecord, 'notBefore' | 'notAfter'>, fraction: number): number {
  const nb = ms(a.notBefore);
  return nb + (ms(a.notAfter) - nb) * fraction;
}

export function lifetimes(r: StoreRecords): { root: number; intermediate: number } {
  return { root: r.lifetimes?.root ?? ROOT_LIFETIME_MS, intermediate: r.lifetimes?.intermediate ?? INTERMEDIATE_LIFETIME_MS };
}

export function inProgress(r: StoreRecords): RotationRecord | undefined {
  return r.rotation && r.rotation.phase !== 'done' ? r.rotation : undefined;
}

function corrupt(why: string): TollgateError {
  return new TollgateError('TG_STORE_CORRUPT', `the authority records are inconsistent: ${why}; restore the store from a backup`);
}

export function find(r: StoreRecords, id: string): AuthorityRecord {
  const a = r.authorities.find((x) => x.id === id);
  if (!a) throw corrupt(`authority ${id} is referenced but not recorded`);
  return a;
}

function only(r: StoreRecords, kind: AuthorityKind, slot: SlotName): AuthorityRecord[] {
  return r.authorities.filter((a) => a.kind === kind && a.slot === slot);
}

export function active(r: StoreRecords): { root: AuthorityRecord; intermediate: AuthorityRecord } {
  const [root] = only(r, 'root', 'active');
  const [intermediate] = only(r, 'intermediate', 'active');
  if (!root || !intermediate) throw corrupt('there is no active root or no active intermediate');
  return { root, intermediate };
}

export function prepared(r: StoreRecords, kind: AuthorityKind): AuthorityRecord | undefined {
  return only(r, kind, 'prepared')[0];
}

/** Throws TG_STORE_CORRUPT unless the records keep every invariant. */
export function validateRecords(r: StoreRecords): StoreRecords {
  if (r?.format !== 2 || typeof r.trustDomain !== 'string' || !Number.isSafeInteger(r.bundleVersion) || !Array.isArray(r.authorities)) {
    throw corrupt('format, trustDomain, bundleVersion or authorities is missing');
  }
  const ids = new Set<string>();
  for (const a of r.authorities) {
    if (ids.has(a.id)) throw corrupt(`authority ${a.id} is recorded twice`);
    ids.add(a.id);
    if (!['root', 'intermediate'].includes(a.kind) || !['prepared', 'active', 'retiring', 'retired'].includes(a.slot)) throw corrupt(`authority ${a.id} has kind ${a.kind}, slot ${a.slot}`);
    if (Number.isNaN(ms(a.notBefore)) || Number.isNaN(ms(a.notAfter))) throw corrupt(`authority ${a.id} has no valid notBefore/notAfter`);
  }
  for (const kind of ['root', 'intermediate'] as const) {
    if (only(r, kind, 'active').length !== 1) throw corrupt(`there must be exactly one active ${kind}`);
    if (only(r, kind, 'prepared').length > 1) throw corrupt(`there is more than one prepared ${kind}`);
  }
  const act = active(r);
  if (act.intermediate.parent !== act.root.id) throw corrupt(`the active intermediate ${act.intermediate.id} is not signed by the active root ${act.root.id}`);
  for (const a of r.authorities) {
    if (a.kind === 'intermediate' && (!a.parent || find(r, a.parent).kind !== 'root')) throw corrupt(`intermediate ${a.id} has no recorded root`);
  }
  if (r.rotation) for (const id of [...r.rotation.old, ...r.rotation.new]) find(r, id);
  for (const d of r.denied ?? []) {
    if (!['spiffe_id', 'serial'].includes(d?.kind) || typeof d.value !== 'string' || !d.value) throw corrupt(`deny-list entry ${JSON.stringify(d)} is malformed`);
  }
  return r;
}

/** The bundle as a function of the records: the active root first, then prepared, then retiring. */
export function bundleOf(r: StoreRecords): { rootIds: string[]; endorsements: string[] } {
  const rank: Partial<Record<SlotName, number>> = { active: 0, prepared: 1, retiring: 2 };
  const roots = r.authorities
    .filter((a) => a.kind === 'root' && rank[a.slot] !== undefined)
    .sort((a, b) => rank[a.slot]! - rank[b.slot]! || ms(a.createdAt) - ms(b.createdAt));
  return { rootIds: roots.map((a) => a.id), endorsements: roots.flatMap((a) => (a.endorsement ? [a.endorsement.der] : [])) };
}

/** The deny-list as the bundle carries it: SPIFFE IDs and serials, each sorted. */
export function deniedOf(r: StoreRecords): { ids: string[]; serials: string[] } {
  const of = (kind: DeniedEntry['kind']) => (r.denied ?? []).filter((d) => d.kind === kind).map((d) => d.value).sort();
  return { ids: of('spiffe_id'), serials: of('serial') };
}

/** `next` with bundleVersion one above `prev`'s when the bundle changed, else `prev`'s. */
export function withBundleVersion(prev: StoreRecords | undefined, next: Omit<StoreRecords, 'bundleVersion'> & { bundleVersion?: number }): StoreRecords {
  const pushed = (r: StoreRecords) => JSON.stringify([bundleOf(r), deniedOf(r)]);
  const same = prev !== undefined && pushed(prev) === pushed(next as StoreRecords);
  const bundleVersion = prev === undefined ? (next.bundleVersion ?? 1) : same ? prev.bundleVersion : prev.bundleVersion + 1;
  return { ...next, bundleVersion } as StoreRecords;
}

export function refuseIfInProgress(r: StoreRecords, kind: AuthorityKind): void {
  const running = inProgress(r);
  if (!running) return;
  const how = running.automatic
    ? `an automatic intermediate rotation (started ${running.startedAt}) is in phase ${running.phase}`
    : `a ${running.kind} rotation started ${running.startedAt} by pid ${running.owner.pid} on ${running.owner.host} is in phase ${running.phase}`;
  throw new TollgateError('TG_ROTATION_IN_PROGRESS', `cannot start a ${kind} rotation: ${how}; continue it with \`tollgate ca rotate ${running.kind} --resume\``, {
    details: { rotation: running },
  });
}

function update(r: StoreRecords, changes: ReadonlyMap<string, Partial<AuthorityRecord>>, rest: Partial<StoreRecords>): StoreRecords {
  const authorities = r.authorities.map((a) => (changes.has(a.id) ? { ...a, ...changes.get(a.id) } : a));
  return validateRecords(withBundleVersion(r, { ...r, ...rest, authorities }));
}

/** Add a new intermediate under the active root, in `prepared`. */
export function prepareIntermediate(r: StoreRecords, o: { intermediate: AuthorityRecord; now: number; owner: Owner; automatic: boolean }): StoreRecords {
  refuseIfInProgress(r, 'intermediate');
  const act = active(r);
  if (o.intermediate.kind !== 'intermediate' || o.intermediate.slot !== 'prepared' || o.intermediate.parent !== act.root.id) {
    throw new TollgateError('TG_ROTATION_STATE', `a new intermediate must be prepared under the active root ${act.root.id}`);
  }
  if (prepared(r, 'intermediate')) throw new TollgateError('TG_ROTATION_STATE', `intermediate ${prepared(r, 'intermediate')!.id} is already prepared`);
  const rotation: RotationRecord = {
    kind: 'intermediate', phase: 'prepared', automatic: o.automatic, old: [act.intermediate.id], new: [o.intermediate.id],
    startedAt: iso(o.now), updatedAt: iso(o.now), owner: o.owner,
  };
  return validateRecords(withBundleVersion(r, { ...r, authorities: [...r.authorities, o.intermediate], rotation }));
}

/** Add a new root (endorsed by the active root) and its first intermediate, both `prepared`. */
export function prepareRoot(r: StoreRecords, o: { root: AuthorityRecord; intermediate: AuthorityRecord; now: number; owner: Owner }): StoreRecords {
  refuseIfInProgress(r, 'root');
  const act = active(r);
  if (o.root.kind !== 'root' || o.root.slot !== 'prepared' || o.root.endorsement?.signer !== act.root.id) {
    throw new TollgateError('TG_ROTATION_STATE', `a new root must be prepared with a cross-signature by the active root ${act.root.id}`);
  }
  if (o.intermediate.kind !== 'intermediate' || o.intermediate.slot !== 'prepared' || o.intermediate.parent !== o.root.id) {
    throw new TollgateError('TG_ROTATION_STATE', 'the new root comes with one prepared intermediate it signed');
  }
  for (const kind of ['root', 'intermediate'] as const) {
    if (prepared(r, kind)) throw new TollgateError('TG_ROTATION_STATE', `${kind} ${prepared(r, kind)!.id} is already prepared`);
  }
  const rotation: RotationRecord = {
    kind: 'root', phase: 'prepared', automatic: false, old: [act.root.id, act.intermediate.id], new: [o.root.id, o.intermediate.id],
    startedAt: iso(o.now), updatedAt: iso(o.now), owner: o.owner,
  };
  return validateRecords(withBundleVersion(r, { ...r, authorities: [...r.authorities, o.root, o.intermediate], rotation }));
}

function expectPhase(r: StoreRecords, phase: RotationPhase, step: string): RotationRecord {
  const rot = r.rotation;
  if (!rot || rot.phase !== phase) {
    throw new TollgateError('TG_ROTATION_STATE', `cannot ${step}: ${rot ? `the ${rot.kind} rotation is in phase ${rot.phase}` : 'no rotation was started'}, not ${phase}`);
  }
  return rot;
}

/** The prepared authorities start issuing; the ones they replace become `retiring`. */
export function activate(r: StoreRecords, o: { now: number; owner: Owner }): StoreRecords {
  const rot = expectPhase(r, 'prepared', 'activate');
  const t = iso(o.now);
  const changes = new Map<string, Partial<AuthorityRecord>>();
  for (const id of rot.new) changes.set(id, { slot: 'active', activatedAt: t });
  for (const id of rot.old) changes.set(id, { slot: 'retiring', retiringAt: t });
  return update(r, changes, { rotation: { ...rot, phase: 'activated', activatedAt: t, updatedAt: t, owner: o.owner } });
}

/** The replaced authorities (and, for a root, every intermediate it signed) leave the bundle. */
export function retire(r: StoreRecords, o: { now: number; owner: Owner }): StoreRecords {
  const rot = expectPhase(r, 'activated', 'retire');
  const t = iso(o.now);
  const changes = new Map<string, Partial<AuthorityRecord>>();
  const gone = new Set(rot.old);
  for (const a of r.authorities) {
    if (a.slot === 'retired') continue;
    if (gone.has(a.id) || (a.parent !== undefined && gone.has(a.parent) && find(r, a.parent).kind === 'root')) changes.set(a.id, { slot: 'retired', retiredAt: t });
  }
  return update(r, changes, { rotation: { ...rot, phase: 'done', updatedAt: t, owner: o.owner } });
}

/** The rotation in progress, now driven by `owner` (a `--resume`): recorded so a third process sees it. */
export function claimRotation(r: StoreRecords, o: { now: number; owner: Owner }): StoreRecords {
  const rot = inProgress(r);
  if (!rot) throw new TollgateError('TG_ROTATION_STATE', 'no rotation is in progress');
  return { ...r, rotation: { ...rot, owner: o.owner, updatedAt: iso(o.now) } };
}

/** Retired authorities expired more than `keepMs` ago carry nothing worth keeping. */
export function pruneRetired(r: StoreRecords, now: number, keepMs: number): { records: StoreRecords; removed: string[] } {
  const referenced = new Set([...(r.rotation?.old ?? []), ...(r.rotation?.new ?? [])]);
  const live = new Set(r.authorities.filter((a) => a.slot !== 'retired').map((a) => a.parent ?? a.id));
  const removed = r.authorities
    .filter((a) => a.slot === 'retired' && ms(a.notAfter) + keepMs < now && !referenced.has(a.id) && !live.has(a.id))
    .map((a) => a.id);
  if (removed.length === 0) return { records: r, removed };
  const out = { ...r, authorities: r.authorities.filter((a) => !removed.includes(a.id)) };
  return { records: out, removed };
}
