// A bounded first-issue load over gRPC against one or more `ca serve` replicas: each job is one join
// token and one fresh key's CSR; it is sent to its replicas in order, and moves to the next one only
// when the CA cannot be reached (TG_UNAVAILABLE), as a client with several CA addresses would. Every
// attempt is recorded, so a test can say which calls failed, where and when.
import { generateKeyPairSync } from 'node:crypto';
import type { CaClient } from '../../common/ca-client.ts';
import { toTollgateError } from '../../common/errors.ts';
import { createCsr } from '../../pki/csr.ts';
import { parseCertificate } from '../../pki/x509.ts';

export interface IssueJob {
  readonly token: string;
  readonly tokenId: string;
  readonly spiffeId: string;
  readonly csr: Buffer;
}

export interface Attempt {
  readonly replica: string;
  readonly ok: boolean;
  readonly code?: string;
  /** How many jobs had finished when this attempt ended. */
  readonly doneBefore: number;
}

export interface IssueOutcome {
  readonly job: IssueJob;
  readonly attempts: Attempt[];
  chain?: Buffer[];
  serial?: string;
}

/** A fresh P-256 key's CSR per job (made before the clock starts). */
export function freshCsr(): Buffer {
  return createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
}

export async function runIssuance(o: {
  jobs: readonly IssueJob[];
  concurrency: number;
  /** Replica names to try, in order, for job i. */
  route: (i: number) => readonly string[];
  clients: Readonly<Record<string, CaClient>>;
  /** Called after each job ends, with the count of finished jobs. */
  afterEach?: (done: number) => void;
}): Promise<IssueOutcome[]> {
  const out: IssueOutcome[] = o.jobs.map((job) => ({ job, attempts: [] }));
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < o.jobs.length) {
      const i = next++;
      const r = out[i]!;
      for (const replica of o.route(i)) {
        try {
          const res = await o.clients[replica]!.issue({ csr: r.job.csr, token: r.job.token });
          r.chain = res.certChain;
          r.serial = parseCertificate(res.certChain[0]!).serialHex.toLowerCase();
          r.attempts.push({ replica, ok: true, doneBefore: done });
          break;
        } catch (e) {
          const code = toTollgateError(e).code;
          r.attempts.push({ replica, ok: false, code, doneBefore: done });
          if (code !== 'TG_UNAVAILABLE') break;
        }
      }
      done += 1;
      o.afterEach?.(done);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return out;
}
