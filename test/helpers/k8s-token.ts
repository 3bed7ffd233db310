// A stand-in for a cluster's service-account token issuer: an ES256 key whose public half is written as
// the JWKS file `ca serve --k8s-jwks` reads, and projected tokens signed with it in the shape a real
// kubelet writes (audience tollgate-ca, pod-bound, the `kubernetes.io` claims).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';

export const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface K8sTokenIssuer {
  /** The JWKS file for `--k8s-jwks`. */
  readonly jwksFile: string;
  /** The `ca serve` flags that make the CA accept these tokens. */
  readonly caArgs: string[];
  /** Write a token for system:serviceaccount:NS:SA, valid for `ttlSeconds`, to FILE; returns FILE. */
  writeToken(file: string, o: { namespace: string; serviceAccount: string; ttlSeconds: number }): Promise<string>;
}

export async function k8sTokenIssuer(dir: string): Promise<K8sTokenIssuer> {
  const kp = await generateKeyPair('ES256');
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(kp.publicKey)), kid: 'cluster-key', alg: 'ES256', use: 'sig' }] }));
  return {
    jwksFile,
    caArgs: ['--k8s-issuer', K8S_ISSUER, '--k8s-jwks', jwksFile],
    async writeToken(file, o) {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({
        'kubernetes.io': {
          namespace: o.namespace,
          pod: { name: `${o.serviceAccount}-7d4b9c-x2x`, uid: '0f6d1b7e-1111-2222-3333-444455556666' },
          serviceaccount: { name: o.serviceAccount, uid: '9a1c2d3e-1111-2222-3333-444455556666' },
        },
      })
        .setProtectedHeader({ alg: 'ES256', kid: 'cluster-key' })
        .setIssuer(K8S_ISSUER)
        .setAudience('tollgate-ca')
        .setSubject(`system:serviceaccount:${o.namespace}:${o.serviceAccount}`)
        .setIssuedAt(now - 60)
        .setNotBefore(now - 60)
        .setExpirationTime(now + o.ttlSeconds)
        .sign(kp.privateKey as CryptoKey);
      writeFileSync(file, token, { mode: 0o600 });
      return file;
    },
  };
}

/**
 * A token shaped like a projected one issued at `nowS` (pod-bound, audience tollgate-ca, issuer
 * https://kubernetes.default.svc) with a dummy signature: for the checks that never verify it.
 */
export function unsignedProjectedJwt(nowS: number, over: Record<string, unknown> = {}, header: Record<string, unknown> = { alg: 'RS256', kid: 'k' }): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = {
    aud: ['tollgate-ca'], exp: nowS + 3600, iat: nowS, nbf: nowS, iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:shop:web',
    'kubernetes.io': { namespace: 'shop', pod: { name: 'web-1', uid: 'u-1' }, serviceaccount: { name: 'web', uid: 's-1' } },
    ...over,
  };
  return `${b64(header)}.${b64(claims)}.c2ln`;
}
