// `tollgate ca ...`: init, serve, token create. The CA's modules (gRPC, x509, prom-client) are
// imported inside each action, so that other commands and --help do not pay for loading them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Attestor } from '../ca/attestation/attestor.ts';
import { openAuditFile } from '../ca/audit.ts';
import { DEFAULT_CONNECTION_LIMITS } from '../ca/connection-guard.ts';
import { systemClock } from '../common/clock.ts';
import { formatDuration, parseDuration } from '../common/duration.ts';
import { TollgateError } from '../common/errors.ts';
import { createLogger } from '../common/log.ts';
import { addStoreOptions, openStore, SA_DIR, storeArgs, type StoreFlags } from './ca-store.ts';
import { startCaWebhook, type WebhookFlags } from './ca-webhook.ts';
import { registerCaRotate } from './ca-rotate.ts';
import { registerCaDeny } from './ca-deny.ts';
import { EXIT_FAILURE } from './exit.ts';
import { parseListen, parsePositiveInt, printJson } from './options.ts';

export function registerCa(program: Command): void {
  const ca = program.command('ca').description('run and manage the certificate authority');

  addStoreOptions(ca.command('init'), { kubeFlags: true, dirHelp: 'directory for the CA store (created with mode 0700)' })
    .description('create a new root and intermediate for a trust domain')
    .requiredOption('--trust-domain <td>', 'trust domain, e.g. example.org (lower-case a-z 0-9 . - _)')
    .option('--force', 'replace an existing CA in the store (every issued certificate stops being trusted)')
    .option('--offline-root', 'keep the root key out of the store (write it to --root-key-out); intermediates are then rotated with `ca rotate intermediate --root-key FILE`')
    .option('--root-key-out <file>', 'with --offline-root: where to write the root key (mode 0600); keep it offline')
    .option('--root-lifetime <dur>', 'lifetime of the root, and of roots made by `ca rotate root`', '365d')
    .option('--intermediate-lifetime <dur>', 'lifetime of intermediates (never past the root), also for rotated ones', '30d')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
Writes records.json and authorities/<id>.crt + <id>.key (keys mode 0600), plus root.crt root.key
intermediate.crt intermediate.key bundle.pem: views of the active authorities for openssl.
With --store kubernetes the same records and keys go into one Secret (--secret, default
tollgate-ca, in --namespace), created if absent; \`ca serve --store kubernetes --init-if-empty\`
does this by itself on first start, so this is for an offline root or a chosen lifetime.
Root: ECDSA P-256, 1 year, name-constrained to the trust domain. Intermediate: 30 days, pathLen 0.

With the root key in the store (the default), \`ca serve\` rotates intermediates by itself.

Examples:
  $ tollgate ca init --trust-domain example.org --dir ./ca
  $ tollgate ca init --trust-domain example.org --dir ./ca --offline-root --root-key-out /media/usb/root.key
  $ tollgate ca init --trust-domain example.org --dir ./ca --force
  $ tollgate ca init --trust-domain example.org --store kubernetes --namespace tollgate-system \\
      --k8s-api-server https://127.0.0.1:6443 --k8s-ca-file ca.crt --k8s-token-file token --offline-root --root-key-out root.key`)
    .action(async (o: StoreFlags & { trustDomain: string; force?: boolean; json?: boolean; offlineRoot?: boolean; rootKeyOut?: string; rootLifetime: string; intermediateLifetime: string }) => {
      if (!!o.offlineRoot !== !!o.rootKeyOut) throw new TollgateError('TG_USAGE', '--offline-root and --root-key-out FILE go together');
      const opened = await openStore(o, { clock: systemClock });
      try {
        const init = {
          trustDomain: o.trustDomain,
          clock: systemClock,
          force: !!o.force,
          rootKeyOut: o.rootKeyOut,
          rootLifetimeMs: parseDuration(o.rootLifetime, '--root-lifetime'),
          intermediateLifetimeMs: parseDuration(o.intermediateLifetime, '--intermediate-lifetime'),
        };
        const m = await opened.store.init(init);
        const { StoreFiles } = await import('../ca/store.ts');
        const out = {
          trust_domain: m.records.trustDomain,
          store: opened.store.where,
          ...(opened.kind === 'directory' ? { dir: o.dir } : {}),
          root_not_after: new Date(m.root!.parsed.notAfter).toISOString(),
          intermediate_not_after: new Date(m.intermediate.parsed.notAfter).toISOString(),
          bundle_version: m.records.bundleVersion,
          root_key: o.rootKeyOut ?? (opened.kind === 'directory' ? join(o.dir!, StoreFiles.rootKey) : opened.store.where),
          automatic_rotation: !o.rootKeyOut,
          ...(opened.kind === 'directory'
            ? { files: [StoreFiles.records, StoreFiles.rootCert, ...(o.rootKeyOut ? [] : [StoreFiles.rootKey]), StoreFiles.intermediateCert, StoreFiles.intermediateKey, StoreFiles.bundle].map((f) => join(o.dir!, f)) }
            : {}),
        };
        const where = storeArgs(o, opened);
        if (o.json) printJson(out);
        else {
          process.stdout.write(`created CA for trust domain ${out.trust_domain} in ${opened.kind === 'directory' ? o.dir : out.store}\n`);
          process.stdout.write(`  root          valid until ${out.root_not_after}\n  intermediate  valid until ${out.intermediate_not_after}\n`);
          if (o.rootKeyOut) process.stdout.write(`  root key      written to ${o.rootKeyOut} (not in the store): keep it offline; rotate intermediates with \`tollgate ca rotate intermediate ${where} --root-key ${o.rootKeyOut}\`\n`);
          else process.stdout.write('  intermediates rotate automatically in `ca serve` (prepared at 1/2 of their life, active at 2/3)\n');
          process.stdout.write(opened.kind === 'directory'
            ? `next: tollgate ca serve --dir ${o.dir}   or   tollgate cert issue --ca-dir ${o.dir} --spiffe-id spiffe://${out.trust_domain}/ns/NS/sa/SA --out PREFIX\n`
            : `next: helm install tollgate charts/tollgate -n ${opened.namespace} --set trustDomain=${out.trust_domain}   or   tollgate ca serve ${where}\n`);
        }
      } finally {
        opened.close();
      }
    });

  addStoreOptions(ca.command('serve'), { kubeFlags: false, dirHelp: 'CA store directory (from `tollgate ca init`), with --store directory' })
    .description('serve the CA gRPC API (TLS) and the admin endpoints')
    .option('--trust-domain <td>', 'refuse a store of any other trust domain; with --init-if-empty, the trust domain of a new CA')
    .option('--init-if-empty', 'first start: create the CA (root and intermediate) when the store holds none; replicas starting together create exactly one')
    .option('--listen <addr>', 'gRPC address HOST:PORT', '0.0.0.0:8443')
    .option('--admin <addr>', 'admin address for /healthz /readyz /metrics', '127.0.0.1:15021')
    .option('--spiffe-id <id>', "the CA's own SPIFFE ID, under /tollgate/ (default spiffe://<td>/tollgate/ca)")
    .option('--default-ttl <dur>', 'SVID lifetime when a client asks for none', '1h')
    .option('--max-ttl <dur>', 'longest SVID lifetime the CA grants', '24h')
    .option('--join-token-horizon <dur>', 'SVIDs first issued for a join token renew until this long after that issue, then need a new join token', '24h')
    .option('--k8s-reattest <dur>', 'SVIDs first issued for a Kubernetes token renew until this long after it; the sidecar then re-presents its projected token', '12h')
    .option('--audit-log <file>', 'append audit JSON lines to FILE instead of stderr')
    .option('--audit-aggregate <duration>', 'refusals of unauthenticated or rate-limited callers: one audit line per address per DURATION, with a count and the codes (0: one line each)', '10s')
    .option('--rate-per-address <n>', 'unauthenticated requests/s allowed per client address, IPv6 per /64 (0 = unlimited)', '200')
    .option('--max-connections <n>', 'TCP connections open at once on the gRPC port, all clients together', String(DEFAULT_CONNECTION_LIMITS.maxConnections))
    .option('--max-connections-per-address <n>', 'TCP connections open at once from one IPv4 address or IPv6 /64', String(DEFAULT_CONNECTION_LIMITS.maxConnectionsPerAddress))
    .option('--max-streams-per-connection <n>', 'concurrent gRPC calls per connection', String(DEFAULT_CONNECTION_LIMITS.maxStreamsPerConnection))
    .option('--max-anonymous-watches-per-address <n>', 'WatchBundle streams without a valid SVID per address (1,000 in total)', String(DEFAULT_CONNECTION_LIMITS.maxAnonymousWatchesPerAddress))
    .option('--handshake-timeout <dur>', 'close a connection whose TLS handshake is not done by then', '10s')
    .option('--connection-idle-timeout <dur>', 'close a connection with no call in progress for this long', '5m')
    .option('--max-connection-age <dur>', 'close every connection after this long (calls get 1 min to end; sidecars reconnect)', '1h')
    .option('--rate-per-identity <n>', 'SVIDs/min allowed per line of renewals (a first certificate and its renewals) or per pod (0 = unlimited)', '60')
    .option('--k8s-issuer <url>', 'service-account token issuer (offline JWKS verification)')
    .option('--k8s-jwks <file>', "the cluster issuer's JWKS JSON (kubectl get --raw /openid/v1/jwks)")
    .option('--k8s-api-server <url>', 'the Kubernetes API server: verify service-account tokens with its TokenReview API; also for --store kubernetes and the webhook (default there: the pod\'s own)')
    .option('--k8s-ca-file <file>', 'CA bundle of the API server', `${SA_DIR}/ca.crt`)
    .option('--k8s-token-file <file>', "the CA's own token for the API server", `${SA_DIR}/token`)
    .option('--k8s-client-cert <file>', 'authenticate to --k8s-api-server with this client certificate instead of the token (tests)')
    .option('--k8s-client-key <file>', 'the key of --k8s-client-cert')
    .option('--webhook-listen <addr>', 'also serve the sidecar injection webhook (HTTPS, POST /inject) on HOST:PORT')
    .option('--webhook-config-name <name>', 'the MutatingWebhookConfiguration whose caBundle this CA keeps equal to its bundle', 'tollgate-sidecar-injector')
    .option('--webhook-dns-names <names>', "DNS names of the webhook's serving certificate, comma-separated (the Service's names)")
    .option('--webhook-ip-sans <ips>', "IP addresses of the webhook's serving certificate, comma-separated")
    .option('--injector-config <file>', 'the injector config (ConfigMap tollgate-injector, key config.yaml)')
    .option('--webhook-cabundle-resync <dur>', "how often caBundle is re-read and restored if someone changed it (also on every bundle change)", '1m')
    .option('--no-auto-rotate', 'never rotate intermediates automatically (default: rotate when the root key is in the store)')
    .option('--store-poll <dur>', 'how often to re-read the store revision and check the bundle ConfigMap (changes are also watched)', '5s')
    .option('--stale-after <dur>', 'a sidecar not seen this long is stale in convergence counts (default: 3/4 of --max-ttl, past the latest renewal at 60 % of a leaf\'s life)')
    .addHelpText('after', `
First issue needs a join token or a Kubernetes projected service-account token (audience tollgate-ca);
renewal needs the client's current SVID over mTLS. A renewal never outlives the presented SVID's own
lifetime nor its "attested until" horizon (--join-token-horizon, --k8s-reattest), carried in the SVID;
past it the CA refuses with TG_REATTEST_REQUIRED and the workload must attest again. Stops gracefully on SIGTERM/SIGINT.

With --webhook-listen the CA also serves the mutating webhook that injects sidecars: its serving
certificate is issued from the CA's intermediate (24 h, renewed at half life by every replica), and
the caBundle of every webhook in --webhook-config-name is kept equal to the CA's bundle through the
API server (--k8s-api-server and its credentials, or the pod's own in a cluster).

With --store kubernetes the CA's state is a Secret (--secret in --namespace, never injected): any
number of replicas serve it, see each other's changes through a watch on the Secret, and publish the
bundle to ConfigMap tollgate-bundle. With --init-if-empty the first replica to commit creates the
CA; the others read it.

Examples:
  $ tollgate ca serve --dir ./ca
  $ tollgate ca serve --dir ./ca --listen 127.0.0.1:8443 --audit-log ./ca/audit.log
  $ tollgate ca serve --store kubernetes --namespace tollgate-system --init-if-empty --trust-domain example.org
  $ tollgate ca serve --dir /var/lib/tollgate --k8s-api-server https://kubernetes.default.svc
  $ tollgate ca serve --dir /etc/tollgate/ca --webhook-listen 0.0.0.0:9443 --injector-config /etc/tollgate/injector/config.yaml \\
      --webhook-dns-names tollgate-ca.tollgate-system.svc,tollgate-ca.tollgate-system.svc.cluster.local`)
    .action(async (o: Record<string, string | undefined> & StoreFlags & { autoRotate?: boolean; initIfEmpty?: boolean }) => {
      const logger = createLogger({ base: { component: 'ca' } });
      if (o.initIfEmpty && !o.trustDomain) throw new TollgateError('TG_USAGE', '--init-if-empty needs --trust-domain TD: the trust domain of the CA it may create');
      const listen = parseListen(o.listen!, '0.0.0.0', '--listen');
      const admin = parseListen(o.admin!, '127.0.0.1', '--admin');
      const perAddress = parsePositiveInt(o.ratePerAddress!, '--rate-per-address');
      const perIdentityMin = parsePositiveInt(o.ratePerIdentity!, '--rate-per-identity');
      const attestors = await k8sAttestors(o);
      // Audit lines go through a stream (never a synchronous write per line); an issuance's answer
      // leaves once its line is with the OS; SIGTERM flushes the aggregated refusal lines.
      const auditFile = o.auditLog ? openAuditFile(o.auditLog) : undefined;
      const audit = auditFile ?? process.stderr;
      const [{ startCaServer }, { initIfEmpty, expectTrustDomain }] = await Promise.all([import('../ca/server.ts'), import('../ca/new-ca.ts')]);
      const opened = await openStore(o, { clock: systemClock, logger });
      if (o.initIfEmpty) {
        const first = await initIfEmpty(opened.store, { trustDomain: o.trustDomain!, clock: systemClock });
        if (first.created) logger.info('created the CA: the store held none', { store: opened.store.where, trust_domain: first.current.records.trustDomain, revision: first.current.revision });
        if (first.lostRace) logger.info('another process created the CA first; serving it', { store: opened.store.where, revision: first.current.revision });
      }
      expectTrustDomain((await opened.store.read()).records, o.trustDomain, opened.store.where);
      const ca = await startCaServer({
        store: opened.store,
        clock: systemClock,
        logger,
        audit,
        host: listen.host,
        port: listen.port,
        adminHost: admin.host,
        adminPort: admin.port,
        ...(o.spiffeId ? { spiffeId: o.spiffeId } : {}),
        issuance: {
          defaultTtlSeconds: parseDuration(o.defaultTtl!, '--default-ttl') / 1000,
          maxTtlSeconds: parseDuration(o.maxTtl!, '--max-ttl') / 1000,
          joinTokenHorizonSeconds: parseDuration(o.joinTokenHorizon!, '--join-token-horizon') / 1000,
          k8sReattestSeconds: parseDuration(o.k8sReattest!, '--k8s-reattest') / 1000,
        },
        connectionLimits: {
          maxConnections: parsePositiveInt(o.maxConnections!, '--max-connections'),
          maxConnectionsPerAddress: parsePositiveInt(o.maxConnectionsPerAddress!, '--max-connections-per-address'),
          maxStreamsPerConnection: parsePositiveInt(o.maxStreamsPerConnection!, '--max-streams-per-connection'),
          maxAnonymousWatchesPerAddress: parsePositiveInt(o.maxAnonymousWatchesPerAddress!, '--max-anonymous-watches-per-address'),
          handshakeTimeoutMs: parseDuration(o.handshakeTimeout!, '--handshake-timeout'),
          idleTimeoutMs: parseDuration(o.connectionIdleTimeout!, '--connection-idle-timeout'),
          maxAgeMs: parseDuration(o.maxConnectionAge!, '--max-connection-age'),
        },
        limits: {
          perAddress: { perSecond: perAddress, burst: perAddress * 2 },
          perIdentity: { perSecond: perIdentityMin / 60, burst: Math.max(1, Math.ceil(perIdentityMin / 3)) },
        },
        attestors,
        // Commander's --no-auto-rotate: true unless given; true means "when the root key is in the store".
        ...(o.autoRotate === false ? { autoRotate: false } : {}),
        pollMs: parseDuration(o.storePoll!, '--store-poll'),
        auditAggregateMs: o.auditAggregate === '0' ? 0 : parseDuration(o.auditAggregate!, '--audit-aggregate'),
        ...(o.staleAfter ? { staleAfterMs: parseDuration(o.staleAfter, '--stale-after') } : {}),
      });
      let webhook: Awaited<ReturnType<typeof startCaWebhook>> = null;
      try {
        webhook = await startCaWebhook(ca, o as unknown as WebhookFlags, { clock: systemClock, logger });
      } catch (e) {
        await ca.close();
        opened.close();
        throw e;
      }
      // The line a supervisor (or test) waits for: where we listen.
      process.stdout.write(`${JSON.stringify({ ready: true, grpc_port: ca.grpc.port, admin_port: ca.admin.port, ...(webhook ? { webhook_port: webhook.port } : {}), trust_domain: ca.trustDomain, spiffe_id: ca.identity.spiffeId })}\n`);
      const stop = (sig: string): void => {
        logger.info('stopping', { signal: sig });
        Promise.all([webhook?.close(), ca.close()]).then(() => {
          opened.close();
          if (!auditFile) process.exit(0);
          else auditFile.end(() => process.exit(0));
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });

  registerCaRotate(ca);
  registerCaDeny(ca);

  addStoreOptions(ca.command('status'), { kubeFlags: true, dirHelp: 'CA store directory (read directly)' })
    .description('every authority (slot, serial, not-after, time left), the rotation in progress, and sidecar convergence')
    .option('--ca-admin <addr>', 'admin address HOST:PORT of a running `ca serve`: adds sidecar convergence')
    .option('--json', 'print the status as JSON (the same document as GET /status on the admin port)')
    .addHelpText('after', `
Exit 0, or 1 when an active authority is inside its warning window (the last third of its life) or
expired, so it can run from cron; 2 on bad usage.

Examples:
  $ tollgate ca status --dir ./ca
  $ tollgate ca status --ca-admin 127.0.0.1:15021 --json
  $ tollgate ca status --dir ./ca --ca-admin 127.0.0.1:15021
  $ kubectl -n tollgate-system exec deploy/tollgate-ca -- tollgate ca status --store kubernetes`)
    .action(async (o: StoreFlags & { caAdmin?: string; json?: boolean }) => {
      const fromStore = !!o.dir || o.store === 'kubernetes';
      if (!fromStore && !o.caAdmin) throw new TollgateError('TG_USAGE', 'say where the CA is: --dir DIR or --store kubernetes (its store) and/or --ca-admin HOST:PORT (a running `ca serve`)');
      const { fetchCaStatus, formatStatus, needsAction, statusFromStore } = await import('../ca/status.ts');
      let status;
      try {
        status = o.caAdmin ? await fetchCaStatus(o.caAdmin) : undefined;
      } catch (e) {
        if (!fromStore) throw e;
        process.stderr.write(`tollgate: ${(e as Error).message}; showing the store alone\n`);
      }
      if (!status) {
        const opened = await openStore(o, { clock: systemClock });
        try {
          status = await statusFromStore(opened.store, systemClock.now());
        } finally {
          opened.close();
        }
      }
      if (o.json) printJson(status);
      else process.stdout.write(formatStatus(status));
      if (needsAction(status)) process.exitCode = EXIT_FAILURE;
    });

  const token = ca.command('token').description('join tokens for workloads outside Kubernetes');
  addStoreOptions(token.command('create'), { kubeFlags: true })
    .description('create a single-use join token bound to one SPIFFE ID')
    .requiredOption('--spiffe-id <id>', 'the identity the token grants')
    .option('--ttl <dur>', 'how long the token can be used', '10m')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
The token is printed once; only its SHA-256 is stored (a file under DIR/tokens/, or a key of Secret
tollgate-join-tokens-<first hex digit of the hash> with --store kubernetes). It works for one IssueSVID call, on any CA replica.

Examples:
  $ tollgate ca token create --dir ./ca --spiffe-id spiffe://example.org/ns/shop/sa/web
  $ tollgate ca token create --dir ./ca --spiffe-id spiffe://example.org/vm/billing --ttl 1h --json
  $ kubectl -n tollgate-system exec deploy/tollgate-ca -- tollgate ca token create --store kubernetes --spiffe-id spiffe://example.org/vm/billing`)
    .action(async (o: StoreFlags & { spiffeId: string; ttl: string; json?: boolean }) => {
      const { createJoinToken } = await import('../ca/local-issue.ts');
      const ttlMs = parseDuration(o.ttl, '--ttl');
      const opened = await openStore(o, { clock: systemClock });
      try {
        const t = await createJoinToken({ store: opened.store, spiffeId: o.spiffeId, ttlMs, clock: systemClock });
        if (o.json) printJson({ token: t.token, spiffe_id: o.spiffeId, expires_at: new Date(t.expiresAt).toISOString(), token_id: t.tokenId });
        else process.stdout.write(`${t.token}\n# single use, for ${o.spiffeId}, expires in ${formatDuration(ttlMs)}\n`);
      } finally {
        opened.close();
      }
    });
}

// Loaded only when configured: keeps jose out of processes that do not verify Kubernetes tokens.
async function k8sAttestors(o: Record<string, string | undefined>): Promise<((td: string) => Attestor[]) | undefined> {
  if (!o.k8sJwks && !o.k8sIssuer && !o.k8sApiServer) return undefined;
  const [{ K8sTokenAttestor }, { cachedTokenFile }] = await Promise.all([import('../ca/attestation/k8s-token.ts'), import('../ca/attestation/review-guard.ts')]);
  if (o.k8sJwks || o.k8sIssuer) {
    if (!o.k8sJwks || !o.k8sIssuer) throw new TollgateError('TG_USAGE', '--k8s-jwks and --k8s-issuer go together');
    let jwks: { keys: unknown[] };
    try {
      jwks = JSON.parse(readFileSync(o.k8sJwks, 'utf8')) as { keys: unknown[] };
    } catch (e) {
      throw new TollgateError('TG_CONFIG_INVALID', `cannot read JWKS ${o.k8sJwks}: ${(e as Error).message}`);
    }
    const issuer = o.k8sIssuer;
    return (trustDomain) => [new K8sTokenAttestor({ trustDomain, clock: systemClock, mode: { kind: 'jwks', issuer, jwks: jwks as never } })];
  }
  if (o.k8sApiServer) {
    const caCert = readFileSync(o.k8sCaFile!, 'utf8');
    const tokenFile = o.k8sTokenFile!;
    const apiServer = o.k8sApiServer;
    return (trustDomain) => [
      new K8sTokenAttestor({ trustDomain, clock: systemClock, mode: { kind: 'token-review', apiServer, caCert, bearerToken: cachedTokenFile(tokenFile, systemClock) } }),
    ];
  }
  return undefined;
}
