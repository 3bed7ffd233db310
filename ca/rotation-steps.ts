// Each rotation step as one compare-and-swap on the store: read the records, make what the step
// needs (keys and certificates for a prepare), apply the pure transition of ca/slots.ts, commit at
// the revision read. A loser of a race gets TG_STORE_CONFLICT and re-reads; nothing is half done.
// Used by automatic rotation in `ca serve` and by `tollgate ca rotate`.
import { hostname } from 'node:os';
import type { Clock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { writeFileAtomic } from '../common/files.ts';
import { toPem } from '../pki/pem.ts';
import { authorityRecord, createIntermediate, createRoot, crossSign, loadAuthority, type Authority } from './authority.ts';
import { activate, active, lifetimes, prepareIntermediate, prepareRoot, pruneRetired, refuseIfInProgress, retire, type Owner, type StoreRecords } from './slots.ts';
import type { AuthorityStore, Versioned } from './store.ts';

/** Retired authorities are kept this long after they expire, for the record, then dropped. */
export const KEEP_RETIRED_MS = 7 * 24 * 3600 * 1000;

export interface StepContext {
  readonly store: AuthorityStore;
  readonly clock: Clock;
  readonly owner?: Owner;
  /** PKCS#8 DER of the active root's key when it is kept offline (`--root-key FILE`). */
  readonly rootKey?: Buffer | undefined;
}

export function currentOwner(): Owner {
  return { pid: process.pid, host: hostname() };
}

/** The active root with its key: from `rootKey` (offline) or the store. */
async function activeRoot(ctx: StepContext, records: StoreRecords): Promise<Authority> {
  const act = active(records);
  const certificate = await ctx.store.certificate(act.root.id);
  if (ctx.rootKey) {
    try {
      return loadAuthority({ certificate, keyPkcs8: ctx.rootKey, what: '--root-key' });
    } catch (e) {
      throw new TollgateError('TG_USAGE', `the key given with --root-key is not the key of the active root ${act.root.id}: ${(e as Error).message}`, { cause: e });
    }
  }
  const keyPkcs8 = act.root.keyInStore ? await ctx.store.privateKey(act.root.id) : undefined;
  if (!keyPkcs8) {
    throw new TollgateError('TG_ROOT_KEY_MISSING', `the active root ${act.root.id} keeps its key offline; pass it with --root-key FILE`);
  }
  try {
    return loadAuthority({ certificate, keyPkcs8, what: `the key of root ${act.root.id}` });
  } catch (e) {
    throw new TollgateError('TG_STORE_CORRUPT', `the key of root ${act.root.id} in the store is unusable: ${(e as Error).message}; restore the store from a backup`, { cause: e });
  }
}

export async function prepareIntermediateStep(ctx: StepContext, o: { automatic: boolean }): Promise<Versioned> {
  const { revision, records } = await ctx.store.read();
  refuseIfInProgress(records, 'intermediate');
  const root = await activeRoot(ctx, records);
  const now = ctx.clock.now();
  const int = await createIntermediate({ trustDomain: records.trustDomain, root, clock: ctx.clock, lifetimeMs: lifetimes(records).intermediate });
  const rec = authorityRecord(int.certificate, { kind: 'intermediate', slot: 'prepared', parent: active(records).root.id, now, keyInStore: true });
  const next = prepareIntermediate(records, { intermediate: rec, now, owner: ctx.owner ?? currentOwner(), automatic: o.automatic });
  const r = await ctx.store.commit(revision, next, [{ id: rec.id, certificate: int.certificate, keyPkcs8: int.keyPkcs8 }]);
  return { revision: r, records: next };
}

/**
 * A new root, cross-signed by the active one, and its first intermediate, both prepared. With
 * `newRootKeyOut` the new root's key is written there (0600) instead of into the store (offline root).
 */
export async function prepareRootStep(ctx: StepContext, o: { newRootKeyOut?: string | undefined }): Promise<Versioned> {
  const { revision, records } = await ctx.store.read();
  refuseIfInProgress(records, 'root');
  const oldRoot = await activeRoot(ctx, records);
  const now = ctx.clock.now();
  const life = lifetimes(records);
  const td = records.trustDomain;
  const root = await createRoot({ trustDomain: td, clock: ctx.clock, lifetimeMs: life.root });
  const cross = await crossSign({ root: root.certificate, signer: oldRoot, trustDomain: td });
  const int = await createIntermediate({ trustDomain: td, root, clock: ctx.clock, lifetimeMs: life.intermediate });
  const signer = active(records).root.id;
  const rootRec = authorityRecord(root.certificate, {
    kind: 'root', slot: 'prepared', now, keyInStore: !o.newRootKeyOut, endorsement: { signer, der: cross.toString('base64') },
  });
  const intRec = authorityRecord(int.certificate, { kind: 'intermediate', slot: 'prepared', parent: rootRec.id, now, keyInStore: true });
  const next = prepareRoot(records, { root: rootRec, intermediate: intRec, now, owner: ctx.owner ?? currentOwner() });
  if (o.newRootKeyOut) writeFileAtomic(o.newRootKeyOut, toPem('PRIVATE KEY', root.keyPkcs8), 0o600);
  const r = await ctx.store.commit(revision, next, [
    { id: rootRec.id, certificate: root.certificate, keyPkcs8: o.newRootKeyOut ? undefined : root.keyPkcs8 },
    { id: intRec.id, certificate: int.certificate, keyPkcs8: int.keyPkcs8 },
  ]);
  return { revision: r, records: next };
}

export async function activateStep(ctx: StepContext): Promise<Versioned> {
  const { revision, records } = await ctx.store.read();
  const next = activate(records, { now: ctx.clock.now(), owner: ctx.owner ?? currentOwner() });
  return { revision: await ctx.store.commit(revision, next), records: next };
}

export async function retireStep(ctx: StepContext): Promise<Versioned> {
  const { revision, records } = await ctx.store.read();
  const now = ctx.clock.now();
  const next = pruneRetired(retire(records, { now, owner: ctx.owner ?? currentOwner() }), now, KEEP_RETIRED_MS).records;
  return { revision: await ctx.store.commit(revision, next), records: next };
}
