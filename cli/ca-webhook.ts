// `ca serve --webhook-listen`: the CA process also serves the injection webhook (CONTRACT.md), as
// istiod does, because it holds what the webhook needs: the keys to issue and renew the webhook's own
// serving certificate, and the bundle to inject and to keep in the webhook configuration's caBundle.
// Wiring only: ca/webhook-cert.ts, ca/webhook-ca-bundle.ts, injector/webhook-server.ts.
import type { RunningCa } from '../ca/server.ts';
import type { Clock } from '../common/clock.ts';
import { parseDuration } from '../common/duration.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { kubeClientFromFlags } from './ca-store.ts';
import { parseListen } from './options.ts';

export interface WebhookFlags {
  webhookListen?: string;
  webhookConfigName: string;
  webhookDnsNames?: string;
  webhookIpSans?: string;
  injectorConfig?: string;
  webhookCabundleResync: string;
  namespace?: string;
  k8sApiServer?: string;
  k8sCaFile: string;
  k8sTokenFile: string;
  k8sClientCert?: string;
  k8sClientKey?: string;
}

export interface RunningWebhook {
  readonly port: number;
  close(): Promise<void>;
}

const list = (text: string | undefined): string[] => (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

/** Start the webhook beside a running CA; null without --webhook-listen. */
export async function startCaWebhook(ca: RunningCa, o: WebhookFlags, deps: { clock: Clock; logger: Logger }): Promise<RunningWebhook | null> {
  if (o.webhookListen === undefined) return null;
  if (o.injectorConfig === undefined) throw new TollgateError('TG_USAGE', '--webhook-listen needs --injector-config FILE (the config.yaml of ConfigMap tollgate-injector)');
  const listen = parseListen(o.webhookListen, '0.0.0.0', '--webhook-listen');
  const resyncMs = parseDuration(o.webhookCabundleResync, '--webhook-cabundle-resync');
  const [{ inClusterNamespace }, { loadInjectorConfig, DEFAULT_SYSTEM_NAMESPACE }, { WebhookServingCertificate }, { CaBundleKeeper }, { NamespaceLabels }, { startWebhookServer }, { certsToPem }] = await Promise.all([
    import('../common/kube-client.ts'),
    import('../injector/config.ts'),
    import('../ca/webhook-cert.ts'),
    import('../ca/webhook-ca-bundle.ts'),
    import('../injector/namespace-labels.ts'),
    import('../injector/webhook-server.ts'),
    import('../pki/pem.ts'),
  ]);
  const namespace = o.namespace ?? inClusterNamespace() ?? DEFAULT_SYSTEM_NAMESPACE;
  const config = loadInjectorConfig(o.injectorConfig, { systemNamespace: namespace });
  const logger = deps.logger.child({ component: 'webhook' });
  const client = await kubeClientFromFlags(o);
  const cert = await WebhookServingCertificate.start({
    intermediate: () => ca.currentIntermediate(),
    dnsNames: list(o.webhookDnsNames),
    ipAddresses: list(o.webhookIpSans),
    clock: deps.clock,
    logger,
    registry: ca.registry,
  });
  const labels = new NamespaceLabels({ client, clock: deps.clock });
  const server = await startWebhookServer({
    host: listen.host,
    port: listen.port,
    tls: () => cert.tlsOptions(),
    config,
    bundlePem: () => certsToPem(ca.service.bundle.roots),
    namespaceLabels: (ns) => labels.get(ns),
    logger,
    registry: ca.registry,
  });
  cert.onRenew(() => server.reloadTls());
  const keeper = new CaBundleKeeper({ client, name: o.webhookConfigName, clock: deps.clock, logger, registry: ca.registry, resyncMs });
  // watchBundle calls back at once with the current bundle: the first caBundle check runs now.
  const unwatch = ca.service.watchBundle((b) => keeper.setBundle(certsToPem(b.roots)));
  logger.info('webhook serving', { port: server.port, configuration: o.webhookConfigName, namespace, serial: cert.current.serialHex });
  return {
    port: server.port,
    close: async () => {
      unwatch();
      keeper.stop();
      cert.stop();
      await server.close();
      client.close();
    },
  };
}
