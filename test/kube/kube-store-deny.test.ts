// The deny-list on the Kubernetes store against a real kube-apiserver (issue 13 problem 4; the
// directory-store version is test/ca-deny.test.ts): two `ca serve --store kubernetes` replicas, the
// chart's RBAC, the CA ServiceAccount's token. `tollgate ca deny add --store kubernetes` of a SPIFFE
// ID and of a serial: the bundle each replica pushes on WatchBundle carries them, and both replicas
// refuse issue and renewal for them with TG_DENIED; `ca deny remove` undoes both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JoinTokenAttestor } from '../../ca/attestation/join-token.ts';
import { bundleOf } from '../../ca/slots.ts';
import type { BundleResponse, CaClient } from '../../common/ca-client.ts';
import { systemClock } from '../../common/clock.ts';
import { isTollgateError, type TollgateError } from '../../common/errors.ts';
import { connectCa } from '../../pki/ca-connect.ts';
import { certsToPem } from '../../pki/pem.ts';
import { parseCertificate } from '../../pki/x509.ts';
import { newKey } from '../helpers/ca-fixture.ts';
import { kubeCaForFile, kubeStoreFlags, kubeStoreFor, startKubeCa, type KubeCa } from '../helpers/kube-ca.ts';
import { kubeTierMissing } from '../helpers/kube-cluster.ts';
import { tollgate } from '../helpers/procs.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/shop/sa/web`;
const BAD = `spiffe://${TD}/ns/shop/sa/bad`;
let cas: KubeCa[] = [];
const file = kubeCaForFile({ prefix: 'tollgate-kube-deny-', setup: async () => {
  // --store-poll 1s: a replica sees a store change within a second even if its watch lags.
  const start = async (name: string) => file.track(await startKubeCa(file.cluster, { tokenFile: file.rbac.tokenFile, dir: file.dir, name, extra: ['--init-if-empty', '--trust-domain', TD, '--store-poll', '1s'] }));
  // One after the other: the first creates the CA in the store, the second finds it.
  cas = [await start('a'), await start('b')];
} });

interface Held {
  readonly keyPem: string;
  readonly chain: Buffer[];
  readonly serial: string;
}

test('ca deny add/remove --store kubernetes: both replicas push the deny-list and refuse the denied ID and serial, then serve them again', { skip, timeout: 300_000 }, async () => {
  const { cluster, rbac } = file;
  const { store, client: api } = kubeStoreFor(cluster, { token: rbac.token });
  const clients: CaClient[] = [];
  const stops: Array<() => void> = [];
  try {
    const { records } = await store.read();
    const roots = [await store.certificate(bundleOf(records).rootIds[0]!)];
    const tokens = new JoinTokenAttestor({ tokens: store.joinTokens, clock: systemClock, trustDomain: TD });
    const connect = (ca: KubeCa, held?: Held) => {
      const c = connectCa({ address: `127.0.0.1:${ca.grpcPort}`, roots, serverId: ca.serverId, deadlineMs: 30_000, ...(held ? { identity: { keyPem: held.keyPem, certChainPem: certsToPem(held.chain) } } : {}) });
      clients.push(c);
      return c;
    };
    /** First issue with a join token made through the store. */
    const issue = async (ca: KubeCa, spiffeId: string): Promise<Held> => {
      const k = newKey();
      const r = await connect(ca).issue({ csr: k.csr, token: (await tokens.create({ spiffeId, ttlMs: 600_000 })).token });
      return { keyPem: k.keyPem, chain: r.certChain, serial: parseCertificate(r.certChain[0]!).serialHex.toLowerCase() };
    };
    const renew = async (ca: KubeCa, held: Held): Promise<Held> => {
      const k = newKey();
      const r = await connect(ca, held).issue({ csr: k.csr });
      return { keyPem: k.keyPem, chain: r.certChain, serial: parseCertificate(r.certChain[0]!).serialHex.toLowerCase() };
    };
    const denied = async (p: Promise<unknown>, what: string) =>
      assert.rejects(p, (e: TollgateError) => {
        assert.ok(isTollgateError(e, 'TG_DENIED'), `${what}: ${e.code} ${e.message}`);
        return true;
      });
    const deny = (verb: 'add' | 'remove', flag: '--spiffe-id' | '--serial', value: string) => {
      const r = tollgate(['ca', 'deny', verb, ...kubeStoreFlags(cluster, rbac), flag, value, '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { bundle_version: number; changed: boolean };
    };

    // What each replica pushes: a WatchBundle stream per replica, the latest bundle kept.
    const latest: Array<BundleResponse | undefined> = cas.map(() => undefined);
    cas.forEach((ca, i) => stops.push(connect(ca).watchBundle(undefined, (b) => (latest[i] = b), () => {})));
    const pushed = (what: string, ok: (b: BundleResponse) => boolean) =>
      cluster.waitFor(() => latest.every((b) => b && ok(b)) || undefined, `both replicas to push a bundle where ${what}`, 30_000);

    // Before: both replicas issue to BAD and to WEB, and renew them.
    const bad = await issue(cas[0]!, BAD);
    const web = await issue(cas[1]!, WEB);
    await pushed('nothing is denied', (b) => (b.deniedIds ?? []).length === 0 && (b.deniedSerials ?? []).length === 0);
    const versionBefore = latest[0]!.version;

    // Deny the SPIFFE ID: the pushed bundle names it, both replicas refuse a first issue and a renewal for it.
    const addedId = deny('add', '--spiffe-id', BAD);
    assert.ok(addedId.changed && addedId.bundle_version > versionBefore, JSON.stringify(addedId));
    await pushed(`denied_ids holds ${BAD}`, (b) => b.version >= addedId.bundle_version && (b.deniedIds ?? []).includes(BAD));
    for (const ca of cas) {
      await denied(issue(ca, BAD), `first issue for the denied ID on ${ca.serverId}:${ca.grpcPort}`);
      await denied(renew(ca, bad), `renewal of the denied ID on port ${ca.grpcPort}`);
    }
    // Another identity is not touched.
    const web2 = await renew(cas[0]!, web);

    // Deny a serial: the pushed bundle names it; both replicas refuse a renewal presenting it, while the
    // identity itself still gets a first issue and a renewal with another certificate.
    const addedSerial = deny('add', '--serial', web2.serial.toUpperCase().replace(/(..)(?!$)/g, '$1:'));
    await pushed(`denied_serials holds ${web2.serial}`, (b) => b.version >= addedSerial.bundle_version && (b.deniedSerials ?? []).includes(web2.serial));
    for (const ca of cas) await denied(renew(ca, web2), `renewal presenting the denied serial on port ${ca.grpcPort}`);
    const web3 = await issue(cas[1]!, WEB);
    await renew(cas[0]!, web3);

    // Remove both: the pushed bundle lists neither, and both replicas serve them again.
    deny('remove', '--spiffe-id', BAD);
    const removed = deny('remove', '--serial', web2.serial);
    await pushed('nothing is denied again', (b) => b.version >= removed.bundle_version && (b.deniedIds ?? []).length === 0 && (b.deniedSerials ?? []).length === 0);
    for (const ca of cas) {
      assert.equal((await issue(ca, BAD)).chain.length > 0, true);
      await renew(ca, bad);
      await renew(ca, web2);
    }
    // Every refusal was audited with its code by the replica that made it.
    for (const ca of cas) {
      const refusals = ca.auditLines().filter((l) => l.event === 'svid_refused' && l.code === 'TG_DENIED');
      assert.equal(refusals.length, 3, `${ca.auditFile}: ${JSON.stringify(refusals)}`);
    }
  } finally {
    for (const stop of stops) stop();
    for (const c of clients) c.close();
    api.close();
  }
});
