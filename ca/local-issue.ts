// `tollgate cert issue --ca-dir`: issue a leaf straight from a local CA store, for workloads outside
// the mesh, tests and legacy clients. The operator who can read the store's keys is the attestation.
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type { Clock } from '../common/clock.ts';
import { createCsr, parseCsr } from '../pki/csr.ts';
import { certsToPem, toPem } from '../pki/pem.ts';
import { parseWorkloadId } from '../pki/spiffe-id.ts';
import { TollgateError } from '../common/errors.ts';
import { AuditLog } from './audit.ts';
import { SvidIssuer } from './issuer.ts';
import { DirectoryStore } from './store.ts';

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

export function issueFromStore(options: { dir: string; spiffeId: string; ttlSeconds?: number | undefined; clock: Clock }): LocalIssueResult {
  const id = parseWorkloadId(options.spiffeId);
  const store = new DirectoryStore({ dir: options.dir });
  const material = store.load();
  if (id.trustDomain !== material.trustDomain) {
    throw new TollgateError('TG_SPIFFE_ID_INVALID', `${id.id} is not in this CA's trust domain ${material.trustDomain}`);
  }
  const issuer = new SvidIssuer({ intermediate: material.intermediate, clock: options.clock });
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const csr = parseCsr(createCsr(key));
  const svid = issuer.issue({ spki: csr.spki, spiffeId: id.id, ttlSeconds: options.ttlSeconds });
  const keyPkcs8Der = key.export({ format: 'der', type: 'pkcs8' });
  new AuditLog({ out: { write: (l: string) => appendFileSync(store.path('audit.log'), l, { mode: 0o600 }) }, clock: options.clock }).record({
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
