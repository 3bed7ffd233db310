import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { Tag, tlv } from '../pki/der.ts';
import { toPem } from '../pki/pem.ts';
import { buildCert, p256, testChain, type TestChain } from '../pki/test-chain.ts';
import { Oid } from '../pki/x509.ts';
import { leafOfSession, peerLeafDer } from './peer-leaf.ts';

interface Leaf {
  readonly der: Buffer;
  readonly key: string;
}

function leaf(chain: TestChain, id: string): Leaf {
  const k = p256();
  const der = buildCert({
    issuerName: 'Test Intermediate', issuerKey: chain.intermediateKey.key, issuerSpki: chain.intermediateKey.spki, spki: k.spki,
    notBefore: chain.now - 60_000, notAfter: chain.now + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: [id],
  });
  return { der, key: k.key.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

interface Seen {
  readonly server: tls.TLSSocket;
  readonly client: tls.TLSSocket;
  close(): void;
}

/** A real mTLS connection on loopback, configured as the sidecars configure theirs. */
async function connectPair(version: tls.SecureVersion): Promise<Seen & { clientLeaf: Leaf; serverLeaf: Leaf }> {
  const chain = testChain('example.org', Date.now());
  const ca = toPem('CERTIFICATE', chain.root);
  const pem = (l: Leaf): string => toPem('CERTIFICATE', l.der) + toPem('CERTIFICATE', chain.intermediate);
  const serverLeaf = leaf(chain, 'spiffe://example.org/ns/shop/sa/orders');
  const clientLeaf = leaf(chain, 'spiffe://example.org/ns/shop/sa/web');
  const versions = { minVersion: version, maxVersion: version };
  const server = tls.createServer({ cert: pem(serverLeaf), key: serverLeaf.key, ca, requestCert: true, rejectUnauthorized: true, secureOptions: constants.SSL_OP_NO_TICKET, ...versions });
  const accepted = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, cert: pem(clientLeaf), key: clientLeaf.key, ca, checkServerIdentity: () => undefined, ...versions });
  await new Promise<void>((resolve, reject) => client.once('secureConnect', resolve).once('error', reject));
  const serverSide = await accepted;
  return {
    server: serverSide, client, clientLeaf, serverLeaf,
    close: () => {
      client.destroy();
      serverSide.destroy();
      server.close();
    },
  };
}

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${version}: each side reads the other's leaf from the session, the same bytes Node's own call gives`, async () => {
    const p = await connectPair(version);
    try {
      assert.deepEqual(peerLeafDer(p.server), p.clientLeaf.der);
      assert.deepEqual(peerLeafDer(p.client), p.serverLeaf.der);
      assert.deepEqual(peerLeafDer(p.server), p.server.getPeerX509Certificate()?.raw);
      assert.deepEqual(peerLeafDer(p.client), p.client.getPeerX509Certificate()?.raw);
    } finally {
      p.close();
    }
  });
}

test('with a session, Node\'s X509_dup path is never taken (it is what this module exists to avoid)', async () => {
  const p = await connectPair('TLSv1.3');
  try {
    const never = (): never => assert.fail('getPeerX509Certificate() was called');
    p.server.getPeerX509Certificate = never;
    p.client.getPeerX509Certificate = never;
    assert.deepEqual(peerLeafDer(p.server), p.clientLeaf.der);
    assert.deepEqual(peerLeafDer(p.client), p.serverLeaf.der);
  } finally {
    p.close();
  }
});

test('the serialized session, secret included, is zeroed; the leaf returned is a copy', async () => {
  const p = await connectPair('TLSv1.3');
  try {
    let handedOut: Buffer | undefined;
    const real = p.server.getSession.bind(p.server);
    p.server.getSession = () => (handedOut = real());
    const der = peerLeafDer(p.server);
    assert.deepEqual(der, p.clientLeaf.der);
    assert.ok(handedOut && handedOut.length > der!.length);
    assert.ok(handedOut.every((b) => b === 0), 'every byte of the session is zero');
  } finally {
    p.close();
  }
});

test('no session, or one of another layout: the answer comes from getPeerX509Certificate()', async () => {
  const p = await connectPair('TLSv1.3');
  try {
    p.server.getSession = () => undefined;
    assert.deepEqual(peerLeafDer(p.server), p.clientLeaf.der);
    p.server.getSession = () => Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]);
    assert.deepEqual(peerLeafDer(p.server), p.clientLeaf.der);
  } finally {
    p.close();
  }
});

test('leafOfSession: the [3] field when it holds exactly one certificate, otherwise null', () => {
  const cert = tlv(Tag.SEQUENCE, tlv(Tag.INTEGER, Buffer.from([7])));
  const int = tlv(Tag.INTEGER, Buffer.from([1]));
  const session = (...fields: Buffer[]): Buffer => tlv(Tag.SEQUENCE, ...fields);
  assert.deepEqual(leafOfSession(session(int, tlv(0xa1, int), tlv(0xa3, cert), tlv(0xa4, int))), cert);
  for (const [name, bad] of [
    ['no peer field', session(int, tlv(0xa1, int))],
    ['peer is not a SEQUENCE', session(int, tlv(0xa3, int))],
    ['bytes after the certificate', session(tlv(0xa3, cert, int))],
    ['trailing bytes after the session', Buffer.concat([session(tlv(0xa3, cert)), Buffer.from([0])])],
    ['truncated', session(tlv(0xa3, cert)).subarray(0, 6)],
    ['not a SEQUENCE', tlv(Tag.OCTET_STRING, cert)],
    ['a SET holding a [3] certificate', tlv(Tag.SET, tlv(0xa3, cert))],
    ['empty', Buffer.alloc(0)],
  ] as const) {
    assert.equal(leafOfSession(bad), null, name);
  }
});

test('a peer that presented no certificate: null, from the session and from the fallback alike', async () => {
  const chain = testChain('example.org', Date.now());
  const serverLeaf = leaf(chain, 'spiffe://example.org/ns/shop/sa/orders');
  const server = tls.createServer({ cert: toPem('CERTIFICATE', serverLeaf.der) + toPem('CERTIFICATE', chain.intermediate), key: serverLeaf.key, secureOptions: constants.SSL_OP_NO_TICKET });
  const accepted = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: toPem('CERTIFICATE', chain.root), checkServerIdentity: () => undefined });
  try {
    await new Promise<void>((resolve, reject) => client.once('secureConnect', resolve).once('error', reject));
    const serverSide = await accepted;
    assert.equal(peerLeafDer(serverSide), null);
    serverSide.getSession = () => undefined;
    assert.equal(peerLeafDer(serverSide), null);
    assert.deepEqual(peerLeafDer(client), serverLeaf.der);
    serverSide.destroy();
  } finally {
    client.destroy();
    server.close();
  }
});
