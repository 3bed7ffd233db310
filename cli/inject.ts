// `tollgate inject -f FILE|-`: the webhook's injection applied to a manifest, printed on stdout
// (like `istioctl kube-inject`). The logic is injector/manifest.ts and injector/inject.ts.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { TollgateError } from '../common/errors.ts';

const CONFIG_FLAGS = ['trustDomain', 'caAddress', 'caSpiffeId', 'image', 'capture', 'nativeSidecar'] as const;

function readInput(file: string, what: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (e as Error).message;
    throw new TollgateError('TG_USAGE', `cannot read ${what} ${file}: ${why}`);
  }
}

export function registerInject(program: Command, version: string): void {
  program
    .command('inject')
    .description('add the Tollgate sidecar to the pod templates of a manifest (as the webhook does) and print it')
    .requiredOption('-f, --filename <file>', 'the manifest (YAML, several documents or a List); - reads stdin')
    .requiredOption('--bundle <file>', "the CA's roots (bundle.pem from `tollgate ca init`): the sidecars' bootstrap trust")
    .option('--injector-config <file>', 'the injector config (config.yaml of ConfigMap tollgate-injector) instead of the flags below')
    .option('--trust-domain <td>', "the mesh's trust domain (default: the one the bundle's root names)")
    .option('--ca-address <addr>', "the CA's gRPC address HOST:PORT", 'tollgate-ca.tollgate-system.svc:8443')
    .option('--ca-spiffe-id <id>', "the CA's SPIFFE ID (default spiffe://<td>/tollgate/ca)")
    .option('--image <image>', 'the Tollgate image', `ghcr.io/tollgate/tollgate:${version}`)
    .option('--capture <mode>', 'iptables (redirect the inbound ports to the sidecar) or none', 'iptables')
    .option('--no-native-sidecar', 'clusters older than 1.29: the sidecar as the first regular container with a postStart wait')
    .option('--force', 'inject also the pod templates annotated tollgate.io/inject: disabled')
    .addHelpText('after', `
Every document is printed; the pod templates of Pods, Deployments, StatefulSets, DaemonSets,
ReplicaSets, ReplicationControllers, Jobs and CronJobs get the sidecar, everything else is left as
it is (comments included). The namespace's labels are unknown here, so running the command is the
opt-in: a template is injected unless it is annotated tollgate.io/inject: disabled (see --force) or
names kube-system, kube-public, kube-node-lease or tollgate-system. An injected template is left
alone, so running it twice changes nothing. Annotations (tollgate.io/inbound-ports, .../upstreams,
.../policy-configmap, .../capture) are checked as the webhook checks them. One line per object on
stderr says what was done.

Exit codes: 0 ok, 2 bad input (unreadable manifest, bad annotation, bad flag).

Examples:
  $ tollgate inject -f web.yaml --bundle ca/bundle.pem > web-injected.yaml
  $ kubectl get deploy web -o yaml | tollgate inject -f - --bundle ca/bundle.pem | kubectl apply -f -
  $ kubectl -n tollgate-system get cm tollgate-injector -o jsonpath='{.data.config\\.yaml}' > injector.yaml
  $ tollgate inject -f web.yaml --bundle ca/bundle.pem --injector-config injector.yaml
  $ tollgate inject -f web.yaml --bundle ca/bundle.pem --capture none --no-native-sidecar`)
    .action(async (o: Record<string, string | boolean | undefined> & { filename: string; bundle: string }, command: Command) => {
      const [{ injectManifest, trustDomainOfBundle }, { flagOf, injectorConfigFromValues, loadInjectorConfig }] = await Promise.all([import('../injector/manifest.ts'), import('../injector/config.ts')]);
      const bundlePem = readInput(o.bundle, 'the bundle');
      let config;
      if (typeof o['injectorConfig'] === 'string') {
        const given = CONFIG_FLAGS.filter((k) => command.getOptionValueSource(k) === 'cli');
        if (given.length > 0) throw new TollgateError('TG_USAGE', `--injector-config already sets ${given.map(flagOf).join(', ')}; give the file or the flags`);
        config = loadInjectorConfig(o['injectorConfig']);
      } else {
        const trustDomain = o['trustDomain'] ?? trustDomainOfBundle(bundlePem, o.bundle);
        if (!trustDomain) throw new TollgateError('TG_USAGE', `--trust-domain is required: the roots in ${o.bundle} do not name one`);
        config = injectorConfigFromValues({ trustDomain, caAddress: o['caAddress'], caSpiffeId: o['caSpiffeId'], image: o['image'], capture: o['capture'], nativeSidecar: o['nativeSidecar'] });
      }
      const manifest = readInput(o.filename, 'the manifest');
      const r = injectManifest(manifest, { config, bundlePem, force: o['force'] === true, source: o.filename });
      process.stdout.write(r.text);
      for (const x of r.objects) {
        process.stderr.write(`${x.object}: ${x.decision} (${x.reason})\n`);
        for (const w of x.warnings) process.stderr.write(`${x.object}: warning: ${w}\n`);
      }
    });
}
