// `tollgate sidecar run`: load the config, start the sidecar, print one JSON ready line, then follow
// signals: SIGHUP re-reads the policy, SIGTERM/SIGINT drain open connections and exit.
// `tollgate sidecar wait`: block until a sidecar is ready (the injected pre-1.29 postStart hook).
import type { Command } from 'commander';
import { formatHostPort } from '../common/address.ts';
import { systemClock } from '../common/clock.ts';
import { parseDuration } from '../common/duration.ts';
import { TollgateError } from '../common/errors.ts';
import { secretFrom } from '../common/secret.ts';
import { tuneSidecarRuntime } from '../common/sidecar-runtime.ts';
import { parseListen } from './options.ts';

export function registerSidecar(program: Command): void {
  const sidecar = program.command('sidecar').description('run the mutual-TLS sidecar of one workload');
  sidecar
    .command('run')
    .description('get an SVID from the CA, then proxy inbound and outbound traffic over mutual TLS')
    .option('--config <file>', 'sidecar config (YAML; see examples/sidecar.yaml)')
    .option('--config-env <name>', 'read the same YAML from environment variable NAME instead (injected pods: TOLLGATE_SIDECAR_CONFIG)')
    .option('--admin <addr>', 'override admin.listen (HOST:PORT) for /healthz /readyz /metrics')
    .option('--ca-address <addr>', 'override ca.address (HOST:PORT)')
    .option('--join-token <token>', 'override attestation with this join token (visible in /proc/*/cmdline: prefer --join-token-file or TOLLGATE_JOIN_TOKEN)')
    .option('--join-token-file <file>', 'override attestation with the join token in FILE (mode 0600)')
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
  $ tollgate sidecar run --config /etc/tollgate/sidecar.yaml --admin 127.0.0.1:15020 --log-level debug
  $ tollgate sidecar run --config-env TOLLGATE_SIDECAR_CONFIG`)
    .action(async (o: { config?: string; configEnv?: string; admin?: string; caAddress?: string; joinToken?: string; joinTokenFile?: string; logLevel?: string; workers: string }) => {
      if (!/^[1-9][0-9]{0,2}$/.test(o.workers)) throw new TollgateError('TG_USAGE', `--workers ${o.workers}: give a whole number from 1 to 999`);
      const workers = Number(o.workers);
      const missingRuntime = tuneSidecarRuntime(); // first: V8 reads its heap flags as the heap grows
      if ((o.config === undefined) === (o.configEnv === undefined)) throw new TollgateError('TG_USAGE', 'give exactly one of --config FILE and --config-env NAME');
      const [{ loadSidecarConfig, loadSidecarConfigFromEnv }, { Sidecar }, { createLogger }] = await Promise.all([import('../sidecar/config.ts'), import('../sidecar/sidecar.ts'), import('../common/log.ts')]);
      // Flag, then file, then TOLLGATE_JOIN_TOKEN (which is also how forked workers get it: never argv).
      const joinToken = secretFrom({ value: o.joinToken, file: o.joinTokenFile, flag: '--join-token', fileFlag: '--join-token-file', envName: 'TOLLGATE_JOIN_TOKEN' });
      const overrides = {
        ...(o.admin !== undefined ? { adminListen: o.admin } : {}),
        ...(o.caAddress !== undefined ? { caAddress: o.caAddress } : {}),
        ...(joinToken !== undefined ? { joinToken } : {}),
        ...(o.logLevel !== undefined ? { logLevel: o.logLevel } : {}),
      };
      const config = o.config !== undefined ? loadSidecarConfig(o.config, overrides) : loadSidecarConfigFromEnv(o.configEnv!, overrides);
      const logger = createLogger({ level: config.log.level, base: { component: 'sidecar' } });
      // --workers 1 is the single process below; more forks workers (sidecar/workers.ts), which run
      // this same command line and take the worker branch here.
      const cluster = workers > 1 ? await import('../sidecar/workers.ts') : null;
      if (cluster?.isWorkerProcess()) {
        await cluster.runSidecarWorker({ config, logger });
        return;
      }
      if (missingRuntime.length > 0) {
        logger.info(`started without the sidecar's memory settings (${missingRuntime.join(', ')}): memory after load can be twice as high; the injector sets them (README, "Sidecar memory")`, { event: 'runtime_settings_missing', missing: missingRuntime });
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

  sidecar
    .command('wait')
    .description("wait until a sidecar is ready (its admin /readyz answers 200)")
    .option('--admin <addr>', "the sidecar's admin address HOST:PORT", '127.0.0.1:15020')
    .option('--timeout <dur>', 'give up after this long', '60s')
    .addHelpText('after', `
Exits 0 once the sidecar holds an SVID and a bundle, 1 when the timeout passes first (printing its
last answer). Injected pods on clusters older than 1.29 run it as the sidecar container's postStart
hook, so that the kubelet starts the app only after the sidecar is ready.

Examples:
  $ tollgate sidecar wait
  $ tollgate sidecar wait --admin 127.0.0.1:15020 --timeout 60s`)
    .action(async (o: { admin: string; timeout: string }) => {
      const admin = parseListen(o.admin, '127.0.0.1', '--admin');
      const timeoutMs = parseDuration(o.timeout, '--timeout');
      const { waitUntilReady } = await import('../sidecar/wait.ts');
      const r = await waitUntilReady({ admin: formatHostPort(admin), timeoutMs, clock: systemClock });
      if (!r.ready) throw new TollgateError('TG_UNAVAILABLE', `the sidecar at ${o.admin} is not ready after ${o.timeout} (${r.attempts} attempts; last answer: ${r.detail})`);
      process.stdout.write(`ready: ${r.detail}\n`);
    });
}
