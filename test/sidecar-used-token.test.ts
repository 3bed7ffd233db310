// Issue 13, problem 8: a join-token sidecar restarted with a token already used (and no SVID) exits
// non-zero at once with a clear message, so a supervisor notices, instead of sitting not-ready.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createJoinToken, initCa, newKey, startCa } from './helpers/ca-fixture.ts';
import { tempDir, tollgate } from './helpers/procs.ts';

test('a sidecar whose join token is used up exits 1 with TG_TOKEN_REUSED and what to do', async () => {
  const tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  const ca = await startCa(join(tmp.dir, 'ca'));
  try {
    const token = createJoinToken(ca.dir, 'spiffe://example.org/ns/shop/sa/web');
    await ca.client().issue({ csr: newKey().csr, token }); // the sidecar's first life used it
    const config = join(tmp.dir, 'sidecar.yaml');
    writeFileSync(config, `trustDomain: example.org\nca: { address: "127.0.0.1:${ca.grpcPort}", bundleFile: ${JSON.stringify(join(ca.dir, 'bundle.pem'))} }\nattestation: { joinToken: ${token} }\nadmin: { listen: "127.0.0.1:0" }\n`, { mode: 0o600 });
    const r = tollgate(['sidecar', 'run', '--config', config]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /TG_TOKEN_REUSED: the CA will not accept this join token .* give it a new join token/);
  } finally {
    await ca.stop();
    tmp.cleanup();
  }
});
