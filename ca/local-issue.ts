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
import { AuditLog, type AuditRecord } from './audit.ts';
import { SvidIssuer } from './issuer.ts';
import { DirectoryStore, StoreFiles } from './store.ts';

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

/** Run `fn`; a refusal is audited (with `refused`'s fields and the code) before it is rethrown. */
function audited<T>(audit: AuditLog, refused: AuditRecord, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = toTollgateError(e);
    if (err.code !== 'TG_STORE_MISSING') audit.record({ ...refused, code: err.code, message: err.message });
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

/** `tollgate ca token create`: a single-use join token for one SPIFFE ID (never a reserved one). */
export function createJoinToken(options: { dir: string; spiffeId: string; ttlMs: number; clock: Clock }): { token: string; expiresAt: number } {
  const store = new DirectoryStore({ dir: options.dir });
  const audit = storeAudit(store, options.clock);
  const { trustDomain } = store.readState();
  const att = new JoinTokenAttestor({ dir: store.path(StoreFiles.tokens), clock: options.clock, trustDomain });
  const t = audited(audit, { event: 'join_token_refused', spiffe_id: options.spiffeId, peer: 'cli' }, () => att.create({ spiffeId: options.spiffeId, ttlMs: options.ttlMs }));
  audit.record({ event: 'join_token_created', spiffe_id: options.spiffeId, not_after: new Date(t.expiresAt).toISOString(), peer: 'cli' });
  return t;
}
