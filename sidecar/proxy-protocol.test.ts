import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isTollgateError } from '../common/errors.ts';
import {
  PP2_TYPE_SPIFFE_ID,
  PP2_TYPE_SSL,
  PROXY_V2_SIGNATURE,
  decodeProxyV2,
  encodeProxyV2,
  type ProxyV2Input,
} from './proxy-protocol.ts';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('encodeProxyV2', () => {
  test('starts with the 12-byte v2 signature, then version 2 / PROXY and TCP over IPv4', () => {
    const h = encodeProxyV2({ source: { address: '127.0.0.1', port: 1 }, destination: { address: '127.0.0.1', port: 2 } });
    assert.deepEqual([...h.subarray(0, 12)], [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
    assert.equal(h.subarray(0, 12).toString('latin1'), '\r\n\r\n\0\r\nQUIT\n');
    assert.deepEqual(PROXY_V2_SIGNATURE, h.subarray(0, 12));
    assert.equal(h[12], 0x21);
    assert.equal(h[13], 0x11);
  });

  test('byte-exact IPv4 header without TLVs', () => {
    const h = encodeProxyV2({ source: { address: '127.0.0.1', port: 12345 }, destination: { address: '10.0.0.2', port: 8080 } });
    assert.deepEqual(h, hex('0d0a0d0a000d0a515549540a 21 11 000c 7f000001 0a000002 3039 1f90'));
  });

  test('byte-exact IPv4 header with the SSL TLV (version sub-TLV) and the SPIFFE ID TLV 0xE0', () => {
    const h = encodeProxyV2({ source: { address: '192.0.2.1', port: 443 }, destination: { address: '192.0.2.2', port: 15006 }, spiffeId: 'spiffe://a/b', tlsVersion: 'TLSv1.3' });
    const ssl = `20 000f 07 00000000 21 0007 ${Buffer.from('TLSv1.3').toString('hex')}`;
    const id = `e0 000c ${Buffer.from('spiffe://a/b').toString('hex')}`;
    assert.deepEqual(h, hex(`0d0a0d0a000d0a515549540a 21 11 002d c0000201 c0000202 01bb 3a9e ${ssl} ${id}`));
  });

  test('byte-exact IPv6 header', () => {
    const h = encodeProxyV2({ source: { address: '2001:db8::1', port: 1 }, destination: { address: '::1', port: 2 } });
    assert.deepEqual(h, hex(`0d0a0d0a000d0a515549540a 21 21 0024 20010db8000000000000000000000001 00000000000000000000000000000001 0001 0002`));
  });

  test('rejects what it cannot encode', () => {
    for (const input of [
      { source: { address: 'example.org', port: 1 }, destination: { address: '127.0.0.1', port: 2 } },
      { source: { address: '127.0.0.1', port: 70000 }, destination: { address: '127.0.0.1', port: 2 } },
      { source: { address: '127.0.0.1', port: 1.5 }, destination: { address: '127.0.0.1', port: 2 } },
    ]) {
      assert.throws(() => encodeProxyV2(input), (e: unknown) => isTollgateError(e, 'TG_INTERNAL'));
    }
  });
});

describe('decodeProxyV2 round trips', () => {
  const cases: Array<{ name: string; input: ProxyV2Input; family: string; src: string; dst: string }> = [
    { name: 'IPv4', input: { source: { address: '10.1.2.3', port: 40000 }, destination: { address: '10.1.2.4', port: 15006 }, spiffeId: ID, tlsVersion: 'TLSv1.3' }, family: 'tcp4', src: '10.1.2.3', dst: '10.1.2.4' },
    { name: 'IPv6', input: { source: { address: '2001:db8::7', port: 1 }, destination: { address: 'fe80::1%eth0', port: 65535 }, spiffeId: ID }, family: 'tcp6', src: '2001:db8::7', dst: 'fe80::1' },
    { name: 'IPv4-mapped on both ends becomes IPv4', input: { source: { address: '::ffff:127.0.0.1', port: 5 }, destination: { address: '::FFFF:127.0.0.2', port: 6 } }, family: 'tcp4', src: '127.0.0.1', dst: '127.0.0.2' },
    { name: 'mixed families become IPv6 with the IPv4 end mapped', input: { source: { address: '127.0.0.1', port: 5 }, destination: { address: '::1', port: 6 } }, family: 'tcp6', src: '::ffff:127.0.0.1', dst: '::1' },
    { name: 'no TLVs, port 0', input: { source: { address: '0.0.0.0', port: 0 }, destination: { address: '255.255.255.255', port: 65535 } }, family: 'tcp4', src: '0.0.0.0', dst: '255.255.255.255' },
    { name: 'a 2048-byte SPIFFE ID', input: { source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 }, spiffeId: `spiffe://example.org/${'a'.repeat(2027)}` }, family: 'tcp4', src: '1.2.3.4', dst: '5.6.7.8' },
    { name: 'a non-ASCII ID survives as UTF-8', input: { source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 }, spiffeId: 'spiffe://example.org/ünï' }, family: 'tcp4', src: '1.2.3.4', dst: '5.6.7.8' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const encoded = encodeProxyV2(c.input);
      const withData = Buffer.concat([encoded, Buffer.from('GET / HTTP/1.1\r\n')]);
      const d = decodeProxyV2(withData);
      assert.ok(d);
      assert.equal(d.length, encoded.length);
      assert.equal(withData.subarray(d.length).toString(), 'GET / HTTP/1.1\r\n');
      assert.equal(d.header.command, 'proxy');
      assert.equal(d.header.family, c.family);
      assert.deepEqual(d.header.source, { address: c.src, port: c.input.source.port });
      assert.deepEqual(d.header.destination, { address: c.dst, port: c.input.destination.port });
      assert.equal(d.header.spiffeId, c.input.spiffeId ?? null);
      if (c.input.spiffeId !== undefined) {
        assert.deepEqual(d.header.ssl, { client: 0x07, verify: 0, version: c.input.tlsVersion ?? null });
        assert.deepEqual(d.header.tlvs.map((t) => t.type), [PP2_TYPE_SSL, PP2_TYPE_SPIFFE_ID]);
      } else {
        assert.equal(d.header.ssl, null);
        assert.equal(d.header.tlvs.length, 0);
      }
    });
  }

  test('every strict prefix of a header asks for more bytes', () => {
    const h = encodeProxyV2({ source: { address: '::1', port: 1 }, destination: { address: '::1', port: 2 }, spiffeId: ID, tlsVersion: 'TLSv1.3' });
    for (let n = 0; n < h.length; n++) assert.equal(decodeProxyV2(h.subarray(0, n)), null, `prefix of ${n} bytes`);
    assert.ok(decodeProxyV2(h));
  });

  test('IPv6 text follows RFC 5952', () => {
    const addresses: Array<[string, string]> = [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['::', '::'],
      ['1::', '1::'],
      ['ABCD::EF', 'abcd::ef'],
      ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ];
    for (const [input, want] of addresses) {
      const d = decodeProxyV2(encodeProxyV2({ source: { address: input, port: 1 }, destination: { address: '::1', port: 2 } }));
      assert.equal(d?.header.source?.address, want, input);
    }
  });

  test('LOCAL: the block is skipped, addresses are null', () => {
    const local = hex('0d0a0d0a000d0a515549540a 20 00 0003 aabbcc');
    assert.deepEqual(decodeProxyV2(Buffer.concat([local, Buffer.from('x')])), {
      header: { command: 'local', family: 'unspec', source: null, destination: null, spiffeId: null, ssl: null, tlvs: [] },
      length: 19,
    });
  });
});

describe('decodeProxyV2 refuses malformed headers', () => {
  const sig = '0d0a0d0a000d0a515549540a';
  const v4 = '7f000001 7f000001 0001 0002';
  const cases: Array<[string, Buffer]> = [
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
    ['a v1 text header', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['a wrong byte inside the signature', hex('0d0a0d0a000d0a51554955')],
    ['version 1 in the binary form', hex(`${sig} 11 11 000c ${v4}`)],
    ['an undefined command', hex(`${sig} 22 11 000c ${v4}`)],
    ['an undefined address family', hex(`${sig} 21 41 000c ${v4}`)],
    ['AF_INET without a transport protocol', hex(`${sig} 21 10 000c ${v4}`)],
    ['AF_UNSPEC with a transport protocol', hex(`${sig} 21 01 0000`)],
    ['a length shorter than the IPv4 address block', hex(`${sig} 21 11 000b 7f000001 7f000001 0001 00`)],
    ['a TLV running past the header', hex(`${sig} 21 11 0011 ${v4} e0 0005 6162`)],
    ['two stray bytes after the TLVs', hex(`${sig} 21 11 000e ${v4} e0 00`)],
    ['an SSL TLV shorter than 5 bytes', hex(`${sig} 21 11 0013 ${v4} 20 0004 07000000`)],
    ['an SSL sub-TLV running past its TLV', hex(`${sig} 21 11 0018 ${v4} 20 0009 07 00000000 21 0005 54`)],
    ['the SPIFFE ID TLV twice', hex(`${sig} 21 11 0014 ${v4} e0 0001 61 e0 0001 62`)],
    ['a SPIFFE ID that is not UTF-8', hex(`${sig} 21 11 0010 ${v4} e0 0001 ff`)],
  ];
  for (const [name, buf] of cases) {
    test(name, () => {
      assert.throws(() => decodeProxyV2(buf), (e: unknown) => isTollgateError(e, 'TG_PROXY_HEADER_INVALID') && /PROXY protocol v2/.test(e.message));
    });
  }
});
