// `tollgate ca deny add|remove|list`: wiring only; the deny-list is ca/deny-list.ts.
import type { Command } from 'commander';
import { systemClock } from '../common/clock.ts';
import { addStoreOptions, openStore, type StoreFlags } from './ca-store.ts';
import { printJson } from './options.ts';

interface DenyFlags extends StoreFlags {
  spiffeId?: string;
  serial?: string;
  reason?: string;
  json?: boolean;
}

const HELP = `
The deny-list lives in the CA store's records (records.json, or the CA Secret with --store
kubernetes); every change is a compare-and-swap and bumps the bundle version. Running CAs pick it up
at their next store poll or watch (--store-poll, 5 s) and push it to sidecars with the bundle. The
CA then refuses every issue and renewal for a listed SPIFFE ID, and every renewal that presents a
listed serial (TG_DENIED, audited, counted); sidecars refuse new connections from and to a peer
whose SPIFFE ID or leaf serial is listed (reason "denied"). Connections already open are not cut.

Examples:
  $ tollgate ca deny add --dir ./ca --serial 8f3c...e1 --reason "key of web-1 leaked"
  $ tollgate ca deny add --dir ./ca --spiffe-id spiffe://example.org/ns/shop/sa/web
  $ tollgate ca deny list --dir ./ca --json
  $ tollgate ca deny remove --dir ./ca --serial 8f3c...e1`;

export function registerCaDeny(ca: Command): void {
  const deny = ca.command('deny').description('deny-list: SPIFFE IDs and leaf serials the CA never issues or renews for and sidecars refuse');
  const target = (c: Command) => c.option('--spiffe-id <id>', 'a SPIFFE ID').option('--serial <hex>', 'a leaf serial number (hex; colons allowed)').option('--json', 'print JSON');
  target(addStoreOptions(deny.command('add'), { kubeFlags: true }))
    .description('add a SPIFFE ID or a serial to the deny-list')
    .option('--reason <text>', 'why (kept in the records and shown by list)')
    .addHelpText('after', HELP)
    .action(async (o: DenyFlags) => {
      const { denyAdd, denyTarget } = await import('../ca/deny-list.ts');
      const t = denyTarget(o);
      await withStore(o, async (store) => {
        const r = await denyAdd({ store, target: t, reason: o.reason, clock: systemClock });
        report(o, r, `${r.changed ? 'denied' : 'already denied'}: ${t.kind} ${t.value}`);
      });
    });
  target(addStoreOptions(deny.command('remove'), { kubeFlags: true }))
    .description('remove a SPIFFE ID or a serial from the deny-list')
    .addHelpText('after', HELP)
    .action(async (o: DenyFlags) => {
      const { denyRemove, denyTarget } = await import('../ca/deny-list.ts');
      const t = denyTarget(o);
      await withStore(o, async (store) => {
        const r = await denyRemove({ store, target: t });
        report(o, r, `${r.changed ? 'removed' : 'was not denied'}: ${t.kind} ${t.value}`);
      });
    });
  addStoreOptions(deny.command('list'), { kubeFlags: true })
    .description('print the deny-list')
    .option('--json', 'print JSON')
    .addHelpText('after', HELP)
    .action(async (o: DenyFlags) => {
      await withStore(o, async (store) => {
        const { records } = await store.read();
        const list = records.denied ?? [];
        if (o.json) printJson({ bundle_version: records.bundleVersion, denied: list });
        else process.stdout.write(list.map((d) => `${d.kind}\t${d.value}\t${d.addedAt}\t${d.reason ?? ''}\n`).join('') || '# the deny-list is empty\n');
      });
    });
}

async function withStore(o: StoreFlags, run: (store: Awaited<ReturnType<typeof openStore>>['store']) => Promise<void>): Promise<void> {
  const opened = await openStore(o, { clock: systemClock });
  try {
    await run(opened.store);
  } finally {
    opened.close();
  }
}

function report(o: DenyFlags, r: { records: { bundleVersion: number }; changed: boolean }, text: string): void {
  if (o.json) printJson({ changed: r.changed, bundle_version: r.records.bundleVersion });
  else process.stdout.write(`${text} (bundle version ${r.records.bundleVersion})\n`);
}
