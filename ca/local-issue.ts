// What the operator does with the store's keys and no server: `tollgate cert issue --ca-dir` (a leaf
// for workloads outside the mesh, tests and legacy clients) and `tollgate ca token create`. Reading
// the store is the attestation. Both append their decisions to <dir>/audit.log, refusals included.
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type { Clock } from '../common/clock.ts';
import { toTollgateError } from '../common/errors.ts';
import { createCsr, parseCsr } from '../pki/csr.ts';
import { certsToPem, toPem } from '../pki/pem.ts';
import { parseWorkloadId, refuseReservedId } from '../pki/spiffe-id.ts';
import { TollgateError } from '../common/errors.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import { AuditLog, type AuditRecord, type AuditSink } from './audit.ts';
import { SvidIssuer } from './issuer.ts';
import { DirectoryStore, type CaStore } from './store.ts';

export interface LocalIssueResult {
  readonly spiffeId: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly chainDer: readonly Buffer[];
  readonly chainPem: string;
  readonly keyPem: string;
  readonly keyPkcs8Der: Buffer;
}

function storeAudit(store: DirectoryStore, clock: Clock): AuditLog {
  return new AuditLog({ out: { write: (l: string) => appendFileSync(store.path('audit.log'), l, { mode: 0o600 }) }, clock });
}

/** Audit a refusal (with `refused`'s fields and the code); a missing store is not a decision. */
function auditRefusal(audit: AuditLog, refused: AuditRecord, e: unknown): void {
  const err = toTollgateError(e);
  if (err.code !== 'TG_STORE_MISSING') audit.record({ ...refused, code: err.code, message: err.message });
}

/** Run `fn`; a refusal is audited before it is rethrown. */
function audited<T>(audit: AuditLog, refused: AuditRecord, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    auditRefusal(audit, refused, e);
    throw e;
  }
}

export function issueFromStore(options: { dir: string; spiffeId: string; ttlSeconds?: number | undefined; clock: Clock }): LocalIssueResult {
  const store = new DirectoryStore({ dir: options.dir });
  const audit = storeAudit(store, options.clock);
  const svid = audited(audit, { event: 'svid_refused', spiffe_id: options.spiffeId, attestation: 'local_store', peer: 'cli' }, () => {
    const id = refuseReservedId(parseWorkloadId(options.spiffeId), '`cert issue`');
    const material = store.load();
    if (id.trustDomain !== material.trustDomain) {
      throw new TollgateError('TG_SPIFFE_ID_INVALID', `${id.id} is not in this CA's trust domain ${material.trustDomain}`);
    }
    const issuer = new SvidIssuer({ intermediate: material.intermediate, clock: options.clock });
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    return { key, ...issuer.issue({ spki: parseCsr(createCsr(key)).spki, spiffeId: id.id, ttlSeconds: options.ttlSeconds }) };
  });
  const keyPkcs8Der = svid.key.export({ format: 'der', type: 'pkcs8' });
  audit.record({
    event: 'svid_issued',
    spiffe_id: svid.spiffeId,
    serial: svid.serialHex,
    not_after: new Date(svid.notAfter).toISOString(),
    attestation: 'local_store',
    peer: 'cli',
  });
  return {
    spiffeId: svid.spiffeId,
    serial: svid.serialHex,
    notBefore: svid.notBefore,
    notAfter: svid.notAfter,
    chainDer: svid.chain,
    chainPem: certsToPem(svid.chain),
    keyPem: toPem('PRIVATE KEY', keyPkcs8Der),
    keyPkcs8Der,
  };
}

/**
 * `tollgate ca token create`: a single-use join token for one SPIFFE ID (never a reserved one), in
 * the store's join tokens. Audited to <dir>/audit.log for a directory store, else to `audit`.
 */
export async function createJoinToken(options: { store: CaStore; spiffeId: string; ttlMs: number; clock: Clock; audit?: AuditSink }): Promise<{ token: string; expiresAt: number; tokenId: string }> {
  const { store } = options;
  const audit = store instanceof DirectoryStore ? storeAudit(store, options.clock) : new AuditLog({ out: options.audit ?? process.stderr, clock: options.clock });
  const refused: AuditRecord = { event: 'join_token_refused', spiffe_id: options.spiffeId, peer: 'cli' };
  let t: { token: string; expiresAt: number; tokenId: string };
  try {
    const { records } = await store.read();
    const att = new JoinTokenAttestor({ tokens: store.joinTokens, clock: options.clock, trustDomain: records.trustDomain });
    t = await att.create({ spiffeId: options.spiffeId, ttlMs: options.ttlMs });
  } catch (e) {
    auditRefusal(audit, refused, e);
    throw e;
  }
  audit.record({ event: 'join_token_created', spiffe_id: options.spiffeId, not_after: new Date(t.expiresAt).toISOString(), peer: 'cli', details: { token_id: t.tokenId } });
  return t;
}
