// The JSON schema of the sidecar config (sidecar/config.ts reads the file): shape and types only; the
// meaning of the values is checked after it. Not compiled at run time: scripts/config-validators.ts
// generates sidecar/config-validator.cjs from it with Ajv's standalone code, and
// test/config-validators.test.ts fails when that file is not what this schema generates.
import type { Level } from '../common/log.ts';

export const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

// `description` is the noun phrase messages use for a missing or mistyped value.
const str = (description: string): object => ({ type: 'string', minLength: 1, description });
const duration = (description: string): object => ({ type: ['string', 'number'], description });
const port = (description: string): object => ({ type: 'integer', minimum: 1, maximum: 65535, description });
const list = (items: object): object => ({ type: 'array', items });
const section = (properties: Record<string, object>, required: string[] = [], description?: string): object => ({ type: 'object', additionalProperties: false, required, properties, ...(description ? { description } : {}) });

export const schema = section(
  {
    trustDomain: str('the trust domain of this workload, e.g. example.org'),
    ca: section({
      address: str("the CA's gRPC address as HOST:PORT, e.g. tollgate-ca.tollgate-system.svc:8443"),
      spiffeId: str("the CA's SPIFFE ID, e.g. spiffe://example.org/tollgate/ca"),
      bundleFile: str("a PEM file with the CA's roots, e.g. the bundle.pem written by `tollgate ca init`"),
      bundlePem: str("the CA's roots as PEM text (the content of bundle.pem)"),
    }, ['address'], 'a "ca" section with address (HOST:PORT) and bundleFile (or bundlePem)'),
    attestation: section({
      tokenFile: str('the projected service-account token file'),
      joinToken: str('a join token from `tollgate ca token create`'),
      joinTokenFile: str('a file holding a join token'),
    }),
    svid: section({ ttl: duration('a duration such as 1h'), skewTolerance: duration('a duration such as 5m') }),
    inbound: list(section({
      listen: str('the mTLS address as HOST:PORT, e.g. 0.0.0.0:15006'),
      appPort: port("the app's port, e.g. 8080"),
      appHost: str("the app's host, e.g. 127.0.0.1"),
      proxyProtocol: { type: 'boolean', description: 'true or false' },
      allowNonLoopbackApp: { type: 'boolean', description: 'true or false' },
    }, ['listen', 'appPort'])),
    outbound: list(section({
      listen: str('the local plaintext address as HOST:PORT on loopback, e.g. 127.0.0.1:15001'),
      upstream: str("the upstream sidecar's inbound address as HOST:PORT, e.g. orders.shop.svc:15006"),
      spiffeId: str('the SPIFFE ID the upstream must present, e.g. spiffe://example.org/ns/shop/sa/orders'),
    }, ['listen', 'upstream', 'spiffeId'])),
    policy: section({ file: str('the policy file, e.g. ./policy.yaml') }),
    tls: section({ minVersion: { type: 'string', enum: ['TLSv1.3', 'TLSv1.2'], description: 'TLSv1.3 or TLSv1.2' } }),
    limits: section({
      maxConnections: { type: 'integer', minimum: 1, maximum: 10_000_000, description: 'a number of connections' },
      maxHandshakes: { type: 'integer', minimum: 1, maximum: 10_000_000, description: 'a number of connections' },
      maxHandshakesPerSource: { type: 'integer', minimum: 1, maximum: 10_000_000, description: 'a number of connections' },
      handshakeTimeout: duration('a duration such as 10s'),
      idleTimeout: duration('a duration such as 1h'),
      maxConnectionAge: duration('a duration such as 24h'),
      drainTimeout: duration('a duration such as 20s'),
    }),
    admin: section({ listen: str('the admin address as HOST:PORT, e.g. 127.0.0.1:15020') }),
    log: section({ level: { type: 'string', enum: LEVELS, description: 'debug, info, warn or error' } }),
    capture: { type: 'string', enum: ['iptables', 'none'], description: 'iptables or none' },
  },
  ['trustDomain', 'ca'],
);
