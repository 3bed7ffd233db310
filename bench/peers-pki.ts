// Test PKI for the peer proxies, made with the openssl CLI (as ../shared/peer-bench/pki.sh does):
// an ECDSA P-256 root, an intermediate and two leaves, each with the SPIFFE URI SAN plus a DNS SAN,
// because haproxy, nginx and stunnel can only check DNS names of the server. Valid 1 hour, fresh
// per run. The same shape as Tollgate's (root → intermediate → leaf, each side sending leaf +
// intermediate), so every contender sends, parses and verifies the same chain per handshake.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TRUST_DOMAIN = 'bench.local';
export const CLIENT_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/client`;
export const SERVER_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/server`;
/** The DNS SAN that the peers' client side checks on the server certificate. */
export const SERVER_NAME = 'server.bench.svc';

/** Files of one PKI; *.crt = leaf + intermediate, *.pem = the same + key (the form haproxy wants). */
export interface PeerPki {
  readonly dir: string;
  readonly root: string;
  readonly client: { crt: string; key: string; pem: string };
  readonly server: { crt: string; key: string; pem: string };
}

const ext = (id: string, dns: string): string => `basicConstraints       = critical,CA:FALSE
keyUsage               = critical,digitalSignature
extendedKeyUsage       = serverAuth,clientAuth
subjectAltName         = URI:${id},DNS:${dns}
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid`;

const CA_CNF = `[ ca ]
default_ca = bench
[ bench ]
dir              = .
database         = ./index.txt
new_certs_dir    = ./newcerts
rand_serial      = yes
default_md       = sha256
policy           = pol_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
[ ext_intermediate ]
basicConstraints       = critical,CA:TRUE,pathlen:0
keyUsage               = critical,keyCertSign,cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ pol_any ]
organizationName = optional
commonName       = optional
[ ext_client ]
${ext(CLIENT_ID, 'client.bench.svc')}
[ ext_server ]
${ext(SERVER_ID, SERVER_NAME)}
`;

/** openssl ca wants YYYYMMDDHHMMSSZ. */
const asn1Time = (d: Date): string => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

export function makePeerPki(dir: string): PeerPki {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'newcerts'), { recursive: true });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'ca.cnf'), CA_CNF);
  const ossl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  const genKey = (out: string): void => ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out);

  genKey('root.key');
  ossl('req', '-x509', '-new', '-key', 'root.key', '-sha256', '-days', '1', '-subj', '/O=tollgate-bench/CN=tollgate bench root CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash',
    '-out', 'root.crt');
  // Backdated 60 s: the proxies and openssl must not see a not-yet-valid certificate.
  const startDate = asn1Time(new Date(Date.now() - 60_000));
  const endDate = asn1Time(new Date(Date.now() + 3_540_000));
  const sign = (csr: string, out: string, issuer: string, extensions: string): void =>
    ossl('ca', '-batch', '-config', 'ca.cnf', '-cert', `${issuer}.crt`, '-keyfile', `${issuer}.key`, '-in', csr, '-out', out,
      '-extensions', extensions, '-startdate', startDate, '-enddate', endDate, '-notext');
  genKey('intermediate.key');
  ossl('req', '-new', '-key', 'intermediate.key', '-subj', '/O=tollgate-bench/CN=tollgate bench intermediate CA', '-out', 'intermediate.csr');
  sign('intermediate.csr', 'intermediate.crt', 'root', 'ext_intermediate');
  const intermediate = readFileSync(join(dir, 'intermediate.crt'), 'utf8');
  for (const name of ['client', 'server']) {
    genKey(`${name}.key`);
    ossl('req', '-new', '-key', `${name}.key`, '-subj', '/O=tollgate-bench', '-out', `${name}.csr`);
    sign(`${name}.csr`, `${name}.leaf.crt`, 'intermediate', `ext_${name}`);
    const chain = readFileSync(join(dir, `${name}.leaf.crt`), 'utf8') + intermediate;
    writeFileSync(join(dir, `${name}.crt`), chain);
    writeFileSync(join(dir, `${name}.pem`), chain + readFileSync(join(dir, `${name}.key`), 'utf8'));
    chmodSync(join(dir, `${name}.key`), 0o600);
    chmodSync(join(dir, `${name}.pem`), 0o600);
    ossl('verify', '-CAfile', 'root.crt', '-untrusted', 'intermediate.crt', '-purpose', 'sslclient', `${name}.leaf.crt`);
  }
  const leaf = (n: string): { crt: string; key: string; pem: string } => ({ crt: join(dir, `${n}.crt`), key: join(dir, `${n}.key`), pem: join(dir, `${n}.pem`) });
  return { dir, root: join(dir, 'root.crt'), client: leaf('client'), server: leaf('server') };
}
