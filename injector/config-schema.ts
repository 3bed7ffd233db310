// The JSON schema of the injector config (injector/config.ts reads it, and the flags of `tollgate
// inject`): shape and types only. Not compiled at run time: scripts/config-validators.ts generates
// injector/config-validator.cjs from it with Ajv's standalone code, and
// test/config-validators.test.ts fails when that file is not what this schema generates.

// Kubernetes' own floor for projected token lifetimes is 10 minutes; a day is already long for a
// bootstrap credential (renewals use the SVID).
const TOKEN_SECONDS = { min: 600, max: 86_400 };

const str = (description: string): object => ({ type: 'string', minLength: 1, description });
const quantities: object = {
  type: 'object',
  additionalProperties: { type: ['string', 'number'], description: 'a quantity such as 50m or 64Mi' },
  description: 'a mapping of resource names to quantities, e.g. {cpu: 50m, memory: 64Mi}',
};

export const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['trustDomain', 'caAddress', 'image'],
  properties: {
    trustDomain: str('the trust domain of the mesh, e.g. cluster.local'),
    caAddress: str("the CA's gRPC address as HOST:PORT, e.g. tollgate-ca.tollgate-system.svc:8443"),
    caSpiffeId: str("the CA's SPIFFE ID, e.g. spiffe://cluster.local/tollgate/ca"),
    image: str('the Tollgate image, e.g. ghcr.io/tollgate/tollgate:0.1.0'),
    imagePullPolicy: { type: 'string', enum: ['Always', 'IfNotPresent', 'Never'], description: 'Always, IfNotPresent or Never' },
    nativeSidecar: { type: 'boolean', description: 'true or false' },
    capture: { type: 'string', enum: ['iptables', 'none'], description: 'iptables or none' },
    tokenExpirationSeconds: { type: 'integer', minimum: TOKEN_SECONDS.min, maximum: TOKEN_SECONDS.max, description: 'a number of seconds' },
    logLevel: { type: 'string', enum: ['debug', 'info', 'warn', 'error'], description: 'debug, info, warn or error' },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: { requests: quantities, limits: quantities },
      description: 'a mapping with requests and limits',
    },
  },
};
