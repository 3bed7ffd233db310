// `tollgate sidecar run`: load the config, start the sidecar, print one JSON ready line, then follow
// signals: SIGHUP re-reads the policy, SIGTERM/SIGINT drain open connections and exit.
import type { Command } from 'commander';
import { TollgateError } from '../common/errors.ts';

export function registerSidecar(program: Command): void {
  const sidecar = program.command('sidecar').description('run the mutual-TLS sidecar of one workload');
  sidecar
    .command('run')
    .description('get an SVID from the CA, then proxy inbound and outbound traffic over mutual TLS')
    .requiredOption('--config <file>', 'sidecar config (YAML; see examples/sidecar.yaml)')
    .option('--admin <addr>', 'override admin.listen (HOST:PORT) for /healthz /readyz /metrics')
    .option('--ca-address <addr>', 'override ca.address (HOST:PORT)')
    .option('--join-token <token>', 'override attestation with this join token')
    .option('--log-level <level>', 'override log.level (debug, info, warn, error)')
    .option('--workers <n>', 'proxy worker processes (node:cluster) sharing one SVID and one admin port; 1 = a single process', '1')
    .addHelpText('after', `
Prints one JSON line on stdout once every listener is open and an SVID is held:
  {"ready":true,"spiffe_id":...,"admin_port":N,"inbound":[...],"outbound":[...]}
(with --workers N > 1 also "workers":N, once every worker listens).
Logs are JSON lines on stderr. SIGHUP re-reads the policy (a bad file keeps the old policy);
SIGTERM or SIGINT stop accepting, let open connections finish (limits.drainTimeout), then exit 0.

Examples:
  $ tollgate sidecar run --config examples/sidecar.yaml
  $ tollgate sidecar run --config examples/sidecar.yaml --workers 2
  $ tollgate sidecar run --config /etc/tollgate/sidecar.yaml --admin 127.0.0.1:15020 --log-level debug`)
    .action(async (o: { config: string; admin?: string; caAddress?: string; joinToken?: string; logLevel?: string; workers: string }) => {
      if (!/^[1-9][0-9]{0,2}$/.test(o.workers)) throw new TollgateError('TG_USAGE', `--workers ${o.workers}: give a whole number from 1 to 999`);
      const workers = Number(o.workers);
      const [{ loadSidecarConfig }, { Sidecar }, { createLogger }] = await Promise.all([import('../sidecar/config.ts'), import('../sidecar/sidecar.ts'), import('../common/log.ts')]);
      const config = loadSidecarConfig(o.config, {
        ...(o.admin !== undefined ? { adminListen: o.admin } : {}),
        ...(o.caAddress !== undefined ? { caAddress: o.caAddress } : {}),
        ...(o.joinToken !== undefined ? { joinToken: o.joinToken } : {}),
        ...(o.logLevel !== undefined ? { logLevel: o.logLevel } : {}),
      });
      const logger = createLogger({ level: config.log.level, base: { component: 'sidecar' } });
      // --workers 1 is the single process below; more forks workers (sidecar/workers.ts), which run
      // this same command line and take the worker branch here.
      const cluster = workers > 1 ? await import('../sidecar/workers.ts') : null;
      if (cluster?.isWorkerProcess()) {
        await cluster.runSidecarWorker({ config, logger });
        return;
      }
      let stopping = false;
      let sidecar: Awaited<ReturnType<typeof Sidecar.start>> | import('../sidecar/workers.ts').SidecarPrimary | null = null;
      // Signals are wired before the (possibly long) wait for the first SVID, so SIGTERM always stops us.
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info('draining', { event: 'drain', signal });
        const done = sidecar ? sidecar.drain() : Promise.resolve();
        done.then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => {
        logger.info('SIGHUP: re-reading the policy', { event: 'reload' });
        sidecar?.reload();
      });
      const started = cluster ? await cluster.SidecarPrimary.start({ config, logger, workers }) : await Sidecar.start({ config, logger });
      sidecar = started;
      if (stopping) {
        await ('close' in started ? started.close() : started.drain());
        return;
      }
      const ready = {
        ready: true,
        spiffe_id: started.spiffeId,
        admin_port: started.adminPort,
        inbound: started.inboundListeners,
        outbound: started.outboundListeners,
        ...(cluster ? { workers } : {}),
      };
      process.stdout.write(`${JSON.stringify(ready)}\n`);
      logger.info('ready', { event: 'ready', spiffe_id: started.spiffeId });
      if (!started.spiffeId) throw new TollgateError('TG_INTERNAL', 'sidecar started without an SVID');
    });
}
