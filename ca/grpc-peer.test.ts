import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { connectionPeer, peerAddress } from './grpc-peer.ts';

function fakeSocket(raws: Buffer[]) {
  const calls = { peerCertificate: 0, disableRenegotiation: 0 };
  // getPeerCertificate(true) links each certificate to its issuer; a root links to itself.
  const certs = raws.map((raw) => ({ raw }) as { raw: Buffer; issuerCertificate?: unknown });
  certs.forEach((c, i) => (c.issuerCertificate = certs[i + 1] ?? c));
  const socket = {
    getPeerCertificate: () => {
      calls.peerCertificate++;
      return certs[0] ?? {};
    },
    disableRenegotiation: () => {
      calls.disableRenegotiation++;
    },
  } as unknown as TLSSocket;
  return { socket, calls };
}

test('a connection is read once: chain and address are reused, renegotiation is turned off', () => {
  const { socket, calls } = fakeSocket([Buffer.from('leaf'), Buffer.from('intermediate')]);
  let peers = 0;
  const call = { getPeer: () => (peers++, 'ipv4:10.1.2.3:5555') };
  const a = connectionPeer(socket, call);
  const b = connectionPeer(socket, call);
  assert.equal(a, b);
  assert.deepEqual(a.chain.map((c) => c.toString()), ['leaf', 'intermediate']);
  assert.equal(a.address, '10.1.2.3');
  assert.deepEqual(calls, { peerCertificate: 1, disableRenegotiation: 1 });
  assert.equal(peers, 1);
  const other = fakeSocket([]);
  assert.deepEqual(connectionPeer(other.socket, call).chain, []);
});

test('peer addresses keep the host only', () => {
  for (const [peer, host] of [['ipv4:1.2.3.4:555', '1.2.3.4'], ['ipv6:[::1]:555', '::1'], ['1.2.3.4:9', '1.2.3.4']] as const) {
    assert.equal(peerAddress({ getPeer: () => peer }), host);
  }
});
