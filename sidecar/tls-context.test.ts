import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as cryptoConstants } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { isTollgateError } from '../common/errors.ts';
import { p256 } from '../pki/test-chain.ts';
import { svidFrom, testPki } from '../test/helpers/sidecar-fixture.ts';
import { checkMinVersion, resolveLimits, secureContextFor, secureContextOptions } from './tls-context.ts';

const SERVER_ID = 'spiffe://example.org/ns/shop/sa/api';

describe('secure contexts', () => {
  const pki = testPki({ now: Date.now() });

  test('options: the SVID chain and key, the bundle roots, TLS 1.2/1.3 only, no session tickets', () => {
    const svid = pki.issue(SERVER_ID);
    const o = secureContextOptions(svid, pki.bundle, { minVersion: 'TLSv1.3' });
    assert.equal(o.cert, svid.certChainPem);
    assert.match(String(o.key), /BEGIN PRIVATE KEY/);
    assert.equal(o.ca, pki.rootPem);
    assert.equal(o.minVersion, 'TLSv1.3');
    assert.equal(o.maxVersion, 'TLSv1.3');
    assert.ok((o.secureOptions ?? 0) & cryptoConstants.SSL_OP_NO_TICKET);
    assert.ok(secureContextFor(svid, pki.bundle, { minVersion: 'TLSv1.2' }).context);
  });

  test('a key that does not match the certificate does not load', () => {
    const good = pki.issue(SERVER_ID);
    const bad = svidFrom(SERVER_ID, [...good.certChain], p256());
    assert.throws(() => secureContextFor(bad, pki.bundle, { minVersion: 'TLSv1.3' }));
  });

  test('minimum versions below TLS 1.2 are refused', () => {
    assert.equal(checkMinVersion('TLSv1.2'), 'TLSv1.2');
    assert.equal(checkMinVersion('TLSv1.3'), 'TLSv1.3');
    for (const v of ['TLSv1.1', 'TLSv1', 'SSLv3', undefined, 'tlsv1.3']) {
      assert.throws(() => checkMinVersion(v), (e: unknown) => isTollgateError(e, 'TG_CONFIG_INVALID'));
    }
  });

  test('no resumption: a second connection offering the first session gets a full handshake', async () => {
    const svid = pki.issue(SERVER_ID);
    const server = tls.createServer({ ...secureContextOptions(svid, pki.bundle, { minVersion: 'TLSv1.3' }) }, (s) => s.end('x'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const connect = (session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> =>
      new Promise((resolve, reject) => {
        let got: Buffer | undefined;
        let reused = false;
        const s = tls.connect({ host: '127.0.0.1', port, ca: pki.rootPem, checkServerIdentity: () => undefined, ...(session ? { session } : {}) });
        s.on('secureConnect', () => (reused = s.isSessionReused()));
        s.on('session', (sess: Buffer) => (got = sess));
        s.on('error', reject);
        s.on('data', () => undefined);
        s.on('close', () => resolve({ reused, session: got }));
      });
    try {
      const first = await connect();
      assert.equal(first.reused, false);
      assert.ok(first.session, 'the server still sends a (stateful) TLS 1.3 ticket');
      assert.equal((await connect(first.session)).reused, false);
    } finally {
      server.close();
    }
  });
});

describe('limits', () => {
  test('defaults: 10,000 connections, 10 s handshake, 1 h idle', () => {
    const rest = { maxConnectionAgeMs: 86_400_000, maxHandshakes: 1_000, maxHandshakesPerSource: 100 };
    assert.deepEqual(resolveLimits(undefined), { maxConnections: 10_000, handshakeTimeoutMs: 10_000, idleTimeoutMs: 3_600_000, ...rest });
    assert.deepEqual(resolveLimits({ idleTimeoutMs: 5 }), { maxConnections: 10_000, handshakeTimeoutMs: 10_000, idleTimeoutMs: 5, ...rest });
  });
  test('refuses non-positive or fractional limits', () => {
    for (const l of [{ maxConnections: 0 }, { handshakeTimeoutMs: -1 }, { idleTimeoutMs: 1.5 }, { maxConnections: Number.NaN }]) {
      assert.throws(() => resolveLimits(l), (e: unknown) => isTollgateError(e, 'TG_CONFIG_INVALID'));
    }
  });
});
