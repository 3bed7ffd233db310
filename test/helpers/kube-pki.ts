// The small PKI a test Kubernetes API server needs, made with the real `openssl` command: a cluster
// CA, the API server's serving certificate (127.0.0.1), client certificates (user = CN, groups = O,
// as the API server reads them) and the service-account signing key pair. ECDSA P-256 throughout:
// fast to generate, and accepted by kube-apiserver 1.20 for serving, clients and token signing.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KubePki {
  readonly dir: string;
  /** Cluster CA: verifies the API server and signs client certificates. */
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Service-account token signing key (private, PEM) and its public half. */
  readonly saKey: string;
  readonly saPub: string;
}

export interface ClientCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const DAYS = '7';

function openssl(args: string[], dir: string, input?: string): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', input: input ?? '', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
}

function newKey(dir: string, name: string): string {
  const file = join(dir, `${name}.key`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir);
  return file;
}

/** Sign a fresh key's certificate with the cluster CA; `ext` is an openssl extension section body. */
function signed(pki: Pick<KubePki, 'dir' | 'caCert' | 'caKey'>, name: string, subject: string, ext: string[]): { certFile: string; keyFile: string } {
  const { dir } = pki;
  const keyFile = newKey(dir, name);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const certFile = join(dir, `${name}.crt`);
  writeFileSync(extFile, `${ext.join('\n')}\n`);
  openssl(['req', '-new', '-key', keyFile, '-subj', subject, '-out', csr], dir);
  const serial = `0x${randomBytes(16).toString('hex')}`;
  openssl(['x509', '-req', '-in', csr, '-CA', pki.caCert, '-CAkey', pki.caKey, '-set_serial', serial, '-days', DAYS, '-extfile', extFile, '-out', certFile], dir);
  return { certFile, keyFile };
}

/** openssl -subj syntax; the API server takes CN as the user name and each O as a group. */
function subjectOf(user: string, groups: readonly string[]): string {
  const esc = (s: string): string => s.replace(/[\\/,+=]/g, (c) => `\\${c}`);
  return `${groups.map((g) => `/O=${esc(g)}`).join('')}/CN=${esc(user)}`;
}

export function makeKubePki(dir: string): KubePki {
  const caKey = newKey(dir, 'ca');
  const caCert = join(dir, 'ca.crt');
  openssl(['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=tollgate-test-kube-ca', '-days', DAYS, '-out', caCert], dir);
  const ca = { dir, caCert, caKey };
  const server = signed(ca, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
  ]);
  const saKey = newKey(dir, 'sa');
  const saPub = join(dir, 'sa.pub');
  openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub], dir);
  return { dir, caCert, caKey, serverCert: server.certFile, serverKey: server.keyFile, saKey, saPub };
}

let clientCount = 0;

/** A client certificate for `user` in `groups`, signed by the cluster CA. */
export function makeClientCert(pki: KubePki, user: string, groups: readonly string[] = []): ClientCert {
  const name = `client-${++clientCount}`;
  const { certFile, keyFile } = signed(pki, name, subjectOf(user, groups), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
  ]);
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}
