// The CA's Kubernetes attestation in TokenReview mode (what `tollgate ca serve --k8s-api-server`
// uses) against a real kube-apiserver v1.20: tokens minted by the real TokenRequest API, the CA's own
// calls made with a ServiceAccount token whose only right is a real ClusterRole for `tokenreviews`
// create, and a second real cluster for a token that is genuine but not ours.
//
// Expiry: the server will not mint a token shorter than 600 s, so the expired token is forged from
// a genuine token's claims with exp moved into the past and signed with this cluster's own
// service-account key (the test holds it): the real server then judges a real expired token of its
// own issuer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeJwt, decodeProtectedHeader, importPKCS8, SignJWT, type JWTHeaderParameters } from 'jose';
import { K8sTokenAttestor } from '../../ca/attestation/k8s-token.ts';
import { systemClock } from '../../common/clock.ts';
import { TollgateError, type ErrorCode } from '../../common/errors.ts';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from '../helpers/kube-cluster.ts';
import { grantTokenReview, podFor, workload } from '../helpers/kube-workload.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
let cluster: KubeCluster;
let other: KubeCluster;
let attestor: K8sTokenAttestor;
let caToken: string;

/** A pod-bound token for the CA (audience tollgate-ca), as the kubelet would project it. */
function podToken(c: KubeCluster, namespace: string, serviceAccount: string, pod: string): Promise<string> {
  return c.tokenRequest({ namespace, serviceAccount, audience: 'tollgate-ca', boundPod: pod }).then((t) => t.token);
}

function reviewing(bearer: () => string): K8sTokenAttestor {
  return new K8sTokenAttestor({ trustDomain: TD, clock: systemClock, mode: { kind: 'token-review', apiServer: cluster.server, caCert: cluster.caPem, bearerToken: bearer } });
}

async function refused(token: string, code: ErrorCode, msg?: RegExp, by: K8sTokenAttestor = attestor): Promise<void> {
  await assert.rejects(by.attest({ token }), (e: unknown) => {
    assert.ok(e instanceof TollgateError, String(e));
    assert.equal(e.code, code, e.message);
    if (msg) assert.match(e.message, msg);
    assert.ok(!e.message.includes(token), 'the token must never appear in an error');
    return true;
  });
}

before(async () => {
  if (skip) return;
  // Two clusters at once: also shows that parallel clusters get their own ports and directories.
  [cluster, other] = await Promise.all([startKubeCluster(), startKubeCluster()]);
  await Promise.all([workload(cluster, 'shop', 'web', ['web-1']), workload(other, 'shop', 'web', ['web-1'])]);
  caToken = await grantTokenReview(cluster, { namespace: 'tollgate-system', serviceAccount: 'tollgate-ca' });
  attestor = reviewing(() => caToken);
});

after(async () => {
  await Promise.all([cluster?.stop(), other?.stop()]);
});

test('a pod-bound token minted by TokenRequest (audience tollgate-ca) attests as ns/<ns>/sa/<sa>', { skip }, async () => {
  const pod = (await cluster.read({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'shop' } }))!;
  const a = await attestor.attest({ token: await podToken(cluster, 'shop', 'web', 'web-1') });
  assert.equal(a.spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
  assert.deepEqual(a.details, { namespace: 'shop', service_account: 'web', pod: 'web-1', pod_uid: pod.metadata.uid });
});

test("RBAC is real: the CA's ServiceAccount may create tokenreviews and nothing else; without the binding TokenReview is refused", { skip }, async () => {
  const ca = cluster.clientWithToken(caToken);
  assert.equal((await ca.get('/api/v1/namespaces/shop/pods')).status, 403);
  assert.equal((await ca.get('/api/v1/namespaces/tollgate-system/secrets')).status, 403);
  await cluster.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'unbound', namespace: 'tollgate-system' } });
  const unbound = (await cluster.tokenRequest({ namespace: 'tollgate-system', serviceAccount: 'unbound' })).token;
  const token = await podToken(cluster, 'shop', 'web', 'web-1');
  await refused(token, 'TG_TOKEN_REVIEW_FAILED', /HTTP 403.*lacks RBAC.*cannot create resource "tokenreviews"/, reviewing(() => unbound));
  await refused(token, 'TG_TOKEN_REVIEW_FAILED', /HTTP 401/, reviewing(() => 'not-a-token'));
});

test("a token for the API server's own audience is refused with TG_TOKEN_AUDIENCE", { skip }, async () => {
  const token = (await cluster.tokenRequest({ namespace: 'shop', serviceAccount: 'web', audience: cluster.issuer, boundPod: 'web-1' })).token;
  // Refused before any TokenReview (ca/attestation/review-guard.ts): the audience is readable unsigned.
  await refused(token, 'TG_TOKEN_AUDIENCE', /audience does not include "tollgate-ca" \(checked before any TokenReview\)/);
});

test('a token not bound to a pod is refused with TG_TOKEN_CLAIMS', { skip }, async () => {
  const token = (await cluster.tokenRequest({ namespace: 'shop', serviceAccount: 'web', audience: 'tollgate-ca' })).token;
  await refused(token, 'TG_TOKEN_CLAIMS', /not bound to a pod/);
});

test("an expired token of this cluster's own issuer and key is refused with TG_TOKEN_EXPIRED", { skip }, async () => {
  const genuine = await podToken(cluster, 'shop', 'web', 'web-1');
  const key = await importPKCS8(readFileSync(cluster.serviceAccountKeyFile, 'utf8'), 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const claims = { ...decodeJwt(genuine), iat: now - 7200, nbf: now - 7200, exp: now - 3600 };
  const expired = await new SignJWT(claims).setProtectedHeader(decodeProtectedHeader(genuine) as JWTHeaderParameters).sign(key);
  await refused(expired, 'TG_TOKEN_EXPIRED', /token has expired .*checked before any TokenReview/);
  // The same forgery with a live exp passes: so it is the expiry, not the forging, that is refused.
  const live = await new SignJWT({ ...claims, exp: now + 600 }).setProtectedHeader(decodeProtectedHeader(genuine) as JWTHeaderParameters).sign(key);
  assert.equal((await attestor.attest({ token: live })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
});

test('a tampered token (claims changed after signing) is refused with TG_TOKEN_INVALID', { skip }, async () => {
  const [h, p, s] = (await podToken(cluster, 'shop', 'web', 'web-1')).split('.');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as { sub: string; 'kubernetes.io': { serviceaccount: { name: string } } };
  // Consistently changed (sub too), so the local checks pass and only the signature can refuse it.
  claims['kubernetes.io'].serviceaccount.name = 'admin';
  claims.sub = 'system:serviceaccount:shop:admin';
  await refused(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`, 'TG_TOKEN_INVALID', /did not authenticate/);
});

test("another cluster's genuine token (same issuer, audience, names) is refused with TG_TOKEN_INVALID", { skip }, async () => {
  const foreign = await podToken(other, 'shop', 'web', 'web-1');
  assert.equal(decodeJwt(foreign).iss, cluster.issuer, 'both clusters use the default issuer');
  await refused(foreign, 'TG_TOKEN_INVALID', /did not authenticate/);
});

test("revocation: deleting the token's pod or its ServiceAccount makes the server refuse it (after its 10 s success cache)", { skip }, async () => {
  await workload(cluster, 'shop', 'api', ['api-1']);
  await cluster.create(podFor('shop', 'web', 'web-2'));
  const podGone = await podToken(cluster, 'shop', 'web', 'web-2');
  const saGone = await podToken(cluster, 'shop', 'api', 'api-1');
  // Both pass first (and are now in the API server's cache of successful reviews).
  await attestor.attest({ token: podGone });
  await attestor.attest({ token: saGone });
  await cluster.remove({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-2', namespace: 'shop' } });
  await cluster.remove({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'api', namespace: 'shop' } });
  const refusal = (token: string) => async (): Promise<TollgateError | undefined> => {
    try {
      await attestor.attest({ token });
      return undefined;
    } catch (e) {
      return e as TollgateError;
    }
  };
  const [pod, sa] = await Promise.all([
    cluster.waitFor(refusal(podGone), 'the token of the deleted pod to be refused'),
    cluster.waitFor(refusal(saGone), 'the token of the deleted ServiceAccount to be refused'),
  ]);
  assert.equal(pod.code, 'TG_TOKEN_INVALID', pod.message);
  assert.match(pod.message, /Token has been invalidated/);
  assert.equal(sa.code, 'TG_TOKEN_INVALID', sa.message);
  assert.match(sa.message, /serviceaccounts "api" not found/);
});
