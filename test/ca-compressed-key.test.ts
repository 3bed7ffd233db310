// Issue 13, problem 8: a CSR carrying a compressed P-256 point (made by openssl) is issued a leaf
// whose key is the canonical uncompressed 65-byte point, which openssl (and Go) parse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { caForFile, createJoinToken } from './helpers/ca-fixture.ts';
import { run } from './helpers/procs.ts';
import { parseCertificate } from '../pki/x509.ts';

const file = caForFile();

test('a compressed-point CSR gets a leaf with the uncompressed 65-byte point; openssl parses it', async () => {
  const at = (f: string) => join(file.tmp, f);
  assert.equal(run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', at('k.pem')]).code, 0);
  assert.equal(run('openssl', ['ec', '-in', at('k.pem'), '-conv_form', 'compressed', '-out', at('kc.pem')]).code, 0);
  const req = run('openssl', ['req', '-new', '-key', at('kc.pem'), '-subj', '/CN=whoever', '-outform', 'DER', '-out', at('csr.der')]);
  assert.equal(req.code, 0, req.stderr);
  const csr = readFileSync(at('csr.der'));
  assert.match(run('openssl', ['req', '-inform', 'DER', '-in', at('csr.der'), '-noout', '-text']).stdout, /pub:\s*\n\s*0[23]:/, 'the CSR carries a compressed point');

  const res = await file.ca.client().issue({ csr, token: createJoinToken(file.ca.dir, 'spiffe://example.org/ns/shop/sa/web') });
  const leaf = parseCertificate(res.certChain[0]!);
  // SPKI: 26 bytes of algorithm header and BIT STRING lead-in, then 0x04 || X || Y.
  assert.equal(leaf.spki.length, 91);
  assert.equal(leaf.spki[26], 0x04);
  writeFileSync(at('leaf.der'), res.certChain[0]!);
  const text = run('openssl', ['x509', '-inform', 'DER', '-in', at('leaf.der'), '-noout', '-text']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Public-Key: \(256 bit\)\s*\n\s*pub:\s*\n\s*04:/);
  // The same key as the CSR's: openssl derives one public key from both.
  const fromKey = run('openssl', ['ec', '-in', at('k.pem'), '-pubout']).stdout;
  const fromLeaf = run('openssl', ['x509', '-inform', 'DER', '-in', at('leaf.der'), '-noout', '-pubkey']).stdout;
  assert.equal(fromLeaf, fromKey);
});
