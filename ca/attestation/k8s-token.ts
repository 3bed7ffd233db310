// Kubernetes projected service-account token attestor. Two ways to judge a token: offline against the
// cluster's JWKS (no API-server round trip, but no revocation when the pod is deleted), or online via
// the TokenReview API (the API server also checks the bound pod still exists). Both yield
// spiffe://<td>/ns/<namespace>/sa/<service-account> and require a pod-bound token.
import { request as httpsRequest } from 'node:https';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWK, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { TollgateError, type ErrorCode } from '../../common/errors.ts';
import { kubernetesSpiffeId, parseTrustDomain, refuseReservedId, type SpiffeId } from '../../pki/spiffe-id.ts';
import type { Clock } from '../../common/clock.ts';
import type { Attestation, AttestationEvidence, Attestor } from './attestor.ts';
import { identityFromClaims, isLegacySecretToken, isRecord, nonEmptyString, precheckToken, ReviewGuard } from './review-guard.ts';

export const DEFAULT_AUDIENCE = 'tollgate-ca';
const ALGORITHMS = ['RS256', 'ES256', 'RS384', 'ES384', 'PS256'];
const CLOCK_TOLERANCE_S = 30;
const DEFAULT_TIMEOUT_MS = 5000;
const MAX_RESPONSE_BYTES = 1024 * 1024;
// The signature part may be empty so that an unsigned (alg "none") token still reaches this attestor
// and is rejected here with a clear code, instead of being judged as some other kind of token.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const SA_USERNAME = /^system:serviceaccount:([^:]+):([^:]+)$/;
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
const PROJECTED_HINT = `use a projected service-account token with audience ${DEFAULT_AUDIENCE}`;
// A real API server refuses an expired or wrong-audience token as unauthenticated and names the
// reason only in status.error, e.g. "[invalid bearer token, Token has expired.]" (v1.20; "service
// account token has expired" since 1.28) or "token audiences [\"x\"] is invalid for the target
// audiences [\"tollgate-ca\"]". Both modes give these refusals the same code.
const REVIEW_REFUSALS: ReadonlyArray<readonly [RegExp, ErrorCode]> = [
  [/token has expired/i, 'TG_TOKEN_EXPIRED'],
  [/token audiences .* is invalid for the target audiences/, 'TG_TOKEN_AUDIENCE'],
];

export interface JwksMode {
  kind: 'jwks';
  /** The cluster's service-account issuer, e.g. https://kubernetes.default.svc.cluster.local. */
  issuer: string;
  /** The cluster's public keys, as served at /openid/v1/jwks. */
  jwks: { keys: JWK[] };
}

export interface TokenReviewMode {
  kind: 'token-review';
  /** https URL of the API server, e.g. https://kubernetes.default.svc. */
  apiServer: string;
  /** PEM bundle that verifies the API server's certificate; the system roots when absent. */
  caCert?: string;
  /** The CA's own credential for the API server; re-read per call because kubelet rotates it. */
  bearerToken: () => string | Promise<string>;
  timeoutMs?: number;
  /** The cluster's service-account issuer: when given, a token from another issuer is refused locally. */
  issuer?: string | undefined;
  /** Reviews in flight at once (default REVIEW_MAX_IN_FLIGHT). */
  maxInFlight?: number | undefined;
}

export interface K8sTokenAttestorOptions {
  trustDomain: string;
  clock: Clock;
  /** Audience the token must carry; defaults to tollgate-ca. */
  audience?: string;
  mode: JwksMode | TokenReviewMode;
}

/** What both modes establish about the caller before it becomes a SPIFFE ID. */
interface K8sIdentity {
  namespace: string;
  serviceAccount: string;
  pod: string;
  podUid: string;
}

function fail(code: ErrorCode, message: string, details?: Record<string, unknown>, cause?: unknown): TollgateError {
  return new TollgateError(code, message, { details, cause });
}

export class K8sTokenAttestor implements Attestor {
  readonly kind = 'k8s_token' as const;
  readonly #trustDomain: string;
  readonly #clock: Clock;
  readonly #audience: string;
  readonly #mode: JwksMode | TokenReviewMode;
  readonly #jwks?: ReturnType<typeof createLocalJWKSet>;
  readonly #reviewUrl?: URL;
  /** TokenReview mode: local checks, negative cache and in-flight cap before the API server. */
  readonly guard?: ReviewGuard;

  constructor(options: K8sTokenAttestorOptions) {
    this.#trustDomain = parseTrustDomain(options.trustDomain);
    this.#clock = options.clock;
    this.#audience = options.audience ?? DEFAULT_AUDIENCE;
    this.#mode = options.mode;
    // Configuration mistakes surface at start-up, not on the first workload's request.
    if (options.mode.kind === 'jwks') {
      if (!nonEmptyString(options.mode.issuer)) throw fail('TG_CONFIG_INVALID', 'k8s_token: jwks mode needs an issuer');
      try {
        this.#jwks = createLocalJWKSet(options.mode.jwks);
      } catch (e) {
        throw fail('TG_CONFIG_INVALID', `k8s_token: the JWKS is malformed: ${(e as Error).message}`, undefined, e);
      }
    } else {
      let url: URL;
      try {
        url = new URL(options.mode.apiServer);
      } catch (e) {
        throw fail('TG_CONFIG_INVALID', `k8s_token: apiServer ${JSON.stringify(options.mode.apiServer)} is not a URL`, undefined, e);
      }
      if (url.protocol !== 'https:') throw fail('TG_CONFIG_INVALID', 'k8s_token: apiServer must be an https URL');
      url.pathname = `${url.pathname.replace(/\/+$/, '')}/apis/authentication.k8s.io/v1/tokenreviews`;
      this.#reviewUrl = url;
      this.guard = new ReviewGuard({ clock: options.clock, maxInFlight: options.mode.maxInFlight });
    }
  }

  accepts(evidence: AttestationEvidence): boolean {
    return typeof evidence.token === 'string' && JWT_SHAPE.test(evidence.token);
  }

  async attest(evidence: AttestationEvidence): Promise<Attestation> {
    const token = evidence.token;
    if (!nonEmptyString(token)) throw fail('TG_TOKEN_MISSING', 'no Kubernetes service-account token was presented');
    if (!JWT_SHAPE.test(token)) throw fail('TG_TOKEN_INVALID', 'token is not a JWT (expected three base64url parts)');
    const who = this.#mode.kind === 'jwks' ? await this.#verifyOffline(token) : await this.#reviewGuarded(token, this.#mode);
    return {
      kind: 'k8s_token',
      spiffeId: this.#spiffeId(who),
      details: { namespace: who.namespace, service_account: who.serviceAccount, pod: who.pod, pod_uid: who.podUid },
    };
  }

  #spiffeId(who: K8sIdentity): SpiffeId {
    let id: SpiffeId;
    try {
      id = kubernetesSpiffeId(this.#trustDomain, who.namespace, who.serviceAccount);
    } catch (e) {
      // A name the API server would never issue means the claims are wrong, not our ID rules.
      throw fail('TG_TOKEN_CLAIMS', `token names an invalid namespace or service account: ${(e as Error).message}`, undefined, e);
    }
    // ns/<ns>/sa/<sa> never lies under /tollgate/; asserted so a future ID form cannot slip through.
    return refuseReservedId(id, 'a Kubernetes service-account token');
  }

  // ---- JWKS (offline) mode ----

  async #verifyOffline(token: string): Promise<K8sIdentity> {
    const mode = this.#mode as JwksMode;
    const jwks = this.#jwks!;
    const opts: JWTVerifyOptions = {
      issuer: mode.issuer,
      audience: this.#audience,
      algorithms: ALGORITHMS,
      currentDate: new Date(this.#clock.now()),
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp'],
    };
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, jwks, opts)).payload;
    } catch (e) {
      if (!(e instanceof joseErrors.JWKSMultipleMatchingKeys)) throw this.#mapJoseError(e);
      // Several keys fit a token without a kid: try each, as jose documents for this error.
      payload = await this.#verifyWithCandidates(token, e, opts);
    }
    return identityFromClaims(payload);
  }

  async #verifyWithCandidates(token: string, multi: joseErrors.JWKSMultipleMatchingKeys, opts: JWTVerifyOptions): Promise<JWTPayload> {
    for await (const key of multi as unknown as AsyncIterable<CryptoKey>) {
      try {
        return (await jwtVerify(token, key, opts)).payload;
      } catch (e) {
        if (!(e instanceof joseErrors.JWSSignatureVerificationFailed)) throw this.#mapJoseError(e);
      }
    }
    throw fail('TG_TOKEN_INVALID', 'token signature does not verify against any key in the cluster JWKS');
  }

  #mapJoseError(e: unknown): TollgateError {
    const jose = e instanceof joseErrors.JOSEError ? { jose: e.code } : {};
    if (e instanceof joseErrors.JWTExpired) {
      return fail('TG_TOKEN_EXPIRED', `token has expired (${e.claim} check failed; tokens are accepted ${CLOCK_TOLERANCE_S}s past exp)`, jose);
    }
    if (e instanceof joseErrors.JWTClaimValidationFailed) {
      // jose checks claims only after the signature verified, so the payload is trustworthy here.
      if (isLegacySecretToken(e.payload)) {
        return fail('TG_TOKEN_CLAIMS', `token is a legacy service-account secret token; ${PROJECTED_HINT}`, jose);
      }
      const missing = e.reason === 'missing' ? 'is missing' : 'does not match';
      switch (e.claim) {
        case 'aud':
          return fail('TG_TOKEN_AUDIENCE', `token audience ${missing}: it must include ${JSON.stringify(this.#audience)}`, jose);
        case 'iss':
          return fail('TG_TOKEN_ISSUER', `token issuer ${missing}: it must be ${JSON.stringify((this.#mode as JwksMode).issuer)}`, jose);
        case 'nbf':
          return fail('TG_TOKEN_EXPIRED', 'token is not yet valid (nbf is in the future)', jose);
        default:
          return fail('TG_TOKEN_CLAIMS', `token claim ${JSON.stringify(e.claim)} ${e.reason === 'missing' ? 'is missing' : 'is invalid'}`, jose);
      }
    }
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) {
      return fail('TG_TOKEN_INVALID', 'token signature does not verify against the cluster JWKS', jose);
    }
    if (e instanceof joseErrors.JWKSNoMatchingKey) {
      return fail('TG_TOKEN_INVALID', 'token was signed by a key that is not in the cluster JWKS (unknown kid or alg)', jose);
    }
    if (e instanceof joseErrors.JOSEAlgNotAllowed) {
      return fail('TG_TOKEN_INVALID', `token algorithm is not allowed (allowed: ${ALGORITHMS.join(', ')})`, jose);
    }
    // Not the algorithm (that is JOSEAlgNotAllowed): a critical header extension jose does not know.
    if (e instanceof joseErrors.JOSENotSupported) return fail('TG_TOKEN_INVALID', `token uses a JOSE feature this CA does not support: ${e.message}`, jose);
    if (e instanceof joseErrors.JOSEError) return fail('TG_TOKEN_INVALID', `token is malformed: ${e.message}`, jose);
    return fail('TG_TOKEN_INVALID', 'token is malformed', {}, e);
  }

  // ---- TokenReview (online) mode ----

  /** What fails without a signature check never reaches the API server (issue 13, problem 7). */
  #reviewGuarded(token: string, mode: TokenReviewMode): Promise<K8sIdentity> {
    precheckToken(token, { audience: this.#audience, issuer: mode.issuer, nowMs: this.#clock.now(), toleranceS: CLOCK_TOLERANCE_S });
    return this.guard!.run(token, () => this.#review(token, mode));
  }

  async #review(token: string, mode: TokenReviewMode): Promise<K8sIdentity> {
    let bearer: string;
    try {
      bearer = await mode.bearerToken();
    } catch (e) {
      throw fail('TG_TOKEN_REVIEW_FAILED', `could not read the CA's own API-server credential: ${(e as Error).message}`, undefined, e);
    }
    const body = JSON.stringify({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [this.#audience] },
    });
    const { status, text } = await this.#post(body, bearer, mode);
    // The API server echoes spec.token back; scrub it from anything that could reach a message.
    const scrub = (s: string): string => s.split(token).join('[token]').slice(0, 300);
    if (status < 200 || status > 299) {
      let hint = '';
      if (status === 401) hint = " (the CA's own credential was rejected)";
      if (status === 403) hint = " (the CA's service account lacks RBAC to create tokenreviews; bind it to system:auth-delegator)";
      let reason = '';
      try {
        const parsed: unknown = JSON.parse(text);
        if (isRecord(parsed) && typeof parsed.message === 'string') reason = `: ${scrub(parsed.message)}`;
      } catch {
        // A non-JSON error page: the status code alone says enough.
      }
      throw fail('TG_TOKEN_REVIEW_FAILED', `TokenReview returned HTTP ${status}${hint}${reason}`, { http_status: status });
    }
    let review: unknown;
    try {
      review = JSON.parse(text);
    } catch (e) {
      throw fail('TG_TOKEN_REVIEW_FAILED', 'TokenReview response is not JSON', { http_status: status }, e);
    }
    const st = isRecord(review) ? review.status : undefined;
    if (!isRecord(st)) throw fail('TG_TOKEN_REVIEW_FAILED', 'TokenReview response has no status');
    if (st.authenticated !== true) {
      const error = typeof st.error === 'string' ? scrub(st.error) : '';
      const code = REVIEW_REFUSALS.find(([re]) => re.test(error))?.[1] ?? 'TG_TOKEN_INVALID';
      throw fail(code, `the API server did not authenticate the token${error === '' ? '' : `: ${error}`}`);
    }
    // An API server ignores audiences it does not know how to check and says so by omitting them.
    if (!Array.isArray(st.audiences) || !st.audiences.includes(this.#audience)) {
      throw fail('TG_TOKEN_AUDIENCE', `token is not valid for audience ${JSON.stringify(this.#audience)}`);
    }
    const user = isRecord(st.user) ? st.user : {};
    const username = typeof user.username === 'string' ? user.username : '';
    const m = SA_USERNAME.exec(username);
    if (!m) {
      throw fail('TG_TOKEN_CLAIMS', `token belongs to ${JSON.stringify(scrub(username))}, not a service account`);
    }
    const extra = isRecord(user.extra) ? user.extra : {};
    const first = (k: string): string | undefined => {
      const v = extra[k];
      return Array.isArray(v) && nonEmptyString(v[0]) ? v[0] : undefined;
    };
    const pod = first(POD_NAME_EXTRA);
    const podUid = first(POD_UID_EXTRA);
    if (pod === undefined || podUid === undefined) {
      throw fail('TG_TOKEN_CLAIMS', `token is not bound to a pod; ${PROJECTED_HINT}`);
    }
    return { namespace: m[1]!, serviceAccount: m[2]!, pod, podUid };
  }

  #post(body: string, bearer: string, mode: TokenReviewMode): Promise<{ status: number; text: string }> {
    const timeoutMs = mode.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const url = this.#reviewUrl!;
    return new Promise((resolve, reject) => {
      // A second call (an error after the answer, the end after too many bytes) changes nothing:
      // the promise is settled, the timer cleared, the request destroyed again.
      const done = (err: TollgateError | null, value?: { status: number; text: string }): void => {
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(value!);
      };
      const req = httpsRequest(
        url,
        {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${bearer}`,
            'Content-Type': 'application/json',
            Accept: 'application/json',
            'Content-Length': Buffer.byteLength(body),
          },
          ...(mode.caCert !== undefined ? { ca: mode.caCert } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              done(fail('TG_TOKEN_REVIEW_FAILED', `TokenReview response exceeds ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => done(null, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (e) => done(fail('TG_TOKEN_REVIEW_FAILED', `TokenReview response failed: ${e.message}`, undefined, e)));
        },
      );
      // A real network deadline (not the injected clock): it bounds I/O, not token validity.
      const timer = setTimeout(() => {
        done(fail('TG_TOKEN_REVIEW_FAILED', `TokenReview at ${url.host} did not answer within ${timeoutMs} ms`, { timeout_ms: timeoutMs }));
      }, timeoutMs);
      req.on('error', (e) => {
        done(fail('TG_TOKEN_REVIEW_FAILED', `could not reach the API server at ${url.host}: ${e.message}`, undefined, e));
      });
      req.end(body);
    });
  }
}
