// `tollgate ca rotate root|intermediate`: wiring only; the phases are driven by ca/rotation.ts.
import type { Command } from 'commander';
import { waitingClock } from '../common/clock.ts';
import { parseDuration } from '../common/duration.ts';
import { isTollgateError, TollgateError } from '../common/errors.ts';
import { addStoreOptions, openStore, storeArgs, type StoreFlags } from './ca-store.ts';

interface RotateFlags extends StoreFlags {
  caAdmin?: string;
  rootKey?: string;
  newRootKeyOut?: string;
  resume?: boolean;
  dryRun?: boolean;
  force?: boolean;
  json?: boolean;
  poll: string;
  timeout: string;
  settle: string;
  maxLeafTtl?: string;
}

export function registerCaRotate(ca: Command): void {
  addStoreOptions(ca.command('rotate'), { kubeFlags: true })
    .description('rotate the root or the intermediate: prepare, wait for the sidecars, activate, wait for old leaves, retire')
    .argument('<kind>', 'root | intermediate')
    .option('--ca-admin <addr>', "admin address HOST:PORT of a running `ca serve` (its /status): sidecar convergence and live leaves")
    .option('--root-key <file>', 'the active root\'s key (PEM) when it is kept offline (`ca init --offline-root`)')
    .option('--new-root-key-out <file>', 'root rotation with an offline root: write the new root\'s key here (mode 0600), not into the store')
    .option('--resume', 'continue the rotation in progress from its recorded phase (after Ctrl-C, a crash or a CA restart)')
    .option('--dry-run', 'print the plan with dates and change nothing')
    .option('--force', 'do not wait (for convergence, for old leaves); each skipped wait is a warning')
    .option('--json', 'print one JSON event per line instead of the progress line')
    .option('--poll <dur>', 'how often to ask the CA for progress', '2s')
    .option('--timeout <dur>', 'stop waiting for the sidecars after this long (the rotation stays resumable)', '1h')
    .option('--settle <dur>', 'after a CA restart, give sidecars this long to report before trusting its counts', '30s')
    .option('--max-leaf-ttl <dur>', 'longest leaf lifetime, bounding the wait for old leaves (default: the CA\'s --max-ttl from /status, else 24h)')
    .addHelpText('after', `
Phases (kept in the store, so --resume continues where it stopped):
  prepared   the new authority exists; a new root is in the bundle, pushed to every sidecar
             (root only: waits until every live sidecar reports it; stale ones are not waited for)
  activated  the new authority issues every new leaf; the old one is retiring
             (waits until no live leaf chains to the old one, at most the longest leaf lifetime)
  done       the old authority is retired (a retired root leaves the bundle)
Progress: phase · sidecars converged/total, stale · time left. Exit 0 done, 1 failure or timeout, 2 usage.

Examples:
  $ tollgate ca rotate intermediate --dir ./ca --dry-run
  $ tollgate ca rotate root --dir ./ca --ca-admin 127.0.0.1:15021
  $ tollgate ca rotate root --dir ./ca --ca-admin 127.0.0.1:15021 --resume --json
  $ tollgate ca rotate intermediate --dir ./ca --root-key /media/usb/root.key
  $ kubectl -n tollgate-system exec deploy/tollgate-ca -- tollgate ca rotate root --store kubernetes --ca-admin 127.0.0.1:15021`)
    .action(async (kind: string, o: RotateFlags) => {
      if (kind !== 'root' && kind !== 'intermediate') throw new TollgateError('TG_USAGE', `rotate what? ${JSON.stringify(kind)}: say root or intermediate`);
      const [{ runRotation }, { rotationPrinter }, { fetchCaStatus }, { readPrivateKeyFile }] = await Promise.all([
        import('../ca/rotation.ts'), import('../ca/rotation-plan.ts'), import('../ca/status.ts'), import('../pki/pem.ts'),
      ]);
      const opened = await openStore(o, { clock: waitingClock });
      const printer = rotationPrinter({ write: (s) => process.stdout.write(s), json: !!o.json, tty: !!process.stdout.isTTY, now: () => waitingClock.now() });
      const abort = new AbortController();
      const onSigint = (): void => abort.abort();
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigint);
      try {
        await runRotation({
          kind,
          store: opened.store,
          clock: waitingClock,
          resume: !!o.resume,
          dryRun: !!o.dryRun,
          force: !!o.force,
          rootKey: o.rootKey ? readPrivateKeyFile(o.rootKey) : undefined,
          newRootKeyOut: o.newRootKeyOut,
          status: o.caAdmin ? () => fetchCaStatus(o.caAdmin!) : undefined,
          pollMs: parseDuration(o.poll, '--poll'),
          timeoutMs: parseDuration(o.timeout, '--timeout'),
          settleMs: /^0+[a-z]*$/.test(o.settle) ? 0 : parseDuration(o.settle, '--settle'),
          maxLeafTtlMs: o.maxLeafTtl ? parseDuration(o.maxLeafTtl, '--max-leaf-ttl') : undefined,
          events: printer,
          signal: abort.signal,
        });
      } catch (e) {
        if (isTollgateError(e) && (e.code === 'TG_INTERRUPTED' || e.code === 'TG_TIMEOUT')) {
          throw new TollgateError(e.code, `${e.message}; the rotation keeps its phase in ${opened.kind === 'directory' ? o.dir : opened.store.where}: continue with \`tollgate ca rotate ${kind} ${storeArgs(o, opened)} --resume${o.caAdmin ? ` --ca-admin ${o.caAdmin}` : ''}\``);
        }
        throw e;
      } finally {
        opened.close();
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigint);
      }
    });
}
