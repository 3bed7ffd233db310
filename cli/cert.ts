// `tollgate cert ...`: issue (from a local CA store) and inspect (a file or a live endpoint).
// The CA store and x509 modules are imported inside each action (see cli/ca.ts).
import type { Command } from 'commander';
import { systemClock } from '../common/clock.ts';
import { parseDuration } from '../common/duration.ts';
import { TollgateError } from '../common/errors.ts';
import { writeFileAtomic } from '../common/files.ts';
import { secretFrom } from '../common/secret.ts';
import { printJson } from './options.ts';
import { EXIT_FAILURE } from './exit.ts';

export function registerCert(program: Command): void {
  const cert = program.command('cert').description('issue and inspect certificates');

  cert
    .command('issue')
    .description('issue an X.509-SVID from a local CA store (no server needed)')
    .requiredOption('--ca-dir <dir>', 'CA store directory (from `tollgate ca init`)')
    .requiredOption('--spiffe-id <id>', 'SPIFFE ID of the workload, e.g. spiffe://example.org/ns/shop/sa/web')
    .requiredOption('--out <prefix>', 'write PREFIX.crt (leaf then intermediate) and PREFIX.key (mode 0600)')
    .option('--ttl <dur>', 'lifetime (capped at 24h)', '1h')
    .option('--p12', 'also write PREFIX.p12 (PKCS#12) for legacy clients; needs --password')
    .option('--password <pw>', 'password of the PKCS#12 file (visible in /proc/*/cmdline: prefer --password-file or TOLLGATE_P12_PASSWORD)')
    .option('--password-file <file>', 'read the PKCS#12 password from FILE (mode 0600)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
Examples:
  $ tollgate cert issue --ca-dir ./ca --spiffe-id spiffe://example.org/ns/shop/sa/web --out ./web
  $ tollgate cert issue --ca-dir ./ca --spiffe-id spiffe://example.org/ns/shop/sa/web --out ./web --ttl 10m
  $ TOLLGATE_P12_PASSWORD=s3cret tollgate cert issue --ca-dir ./ca --spiffe-id spiffe://example.org/legacy/app --out ./app --p12
  $ openssl verify -CAfile ./ca/root.crt -untrusted ./ca/intermediate.crt ./web.crt`)
    .action(async (o: { caDir: string; spiffeId: string; out: string; ttl: string; p12?: boolean; password?: string; passwordFile?: string; json?: boolean }) => {
      const password = secretFrom({ value: o.password, file: o.passwordFile, flag: '--password', fileFlag: '--password-file', envName: 'TOLLGATE_P12_PASSWORD' });
      if (o.p12 && !password) throw new TollgateError('TG_USAGE', '--p12 needs a password: --password-file FILE, TOLLGATE_P12_PASSWORD or --password');
      const ttlSeconds = Math.round(parseDuration(o.ttl, '--ttl') / 1000);
      const { issueFromStore } = await import('../ca/local-issue.ts');
      const r = issueFromStore({ dir: o.caDir, spiffeId: o.spiffeId, ttlSeconds, clock: systemClock });
      const files = [`${o.out}.crt`, `${o.out}.key`];
      writeFileAtomic(`${o.out}.key`, r.keyPem, 0o600);
      writeFileAtomic(`${o.out}.crt`, r.chainPem, 0o644);
      if (o.p12) {
        const { toPkcs12 } = await import('../pki/pkcs12.ts');
        writeFileAtomic(`${o.out}.p12`, toPkcs12({ keyPkcs8Der: r.keyPkcs8Der, chainDer: [...r.chainDer], password: password!, friendlyName: r.spiffeId }), 0o600);
        files.push(`${o.out}.p12`);
      }
      const out = { spiffe_id: r.spiffeId, serial: r.serial, not_before: new Date(r.notBefore).toISOString(), not_after: new Date(r.notAfter).toISOString(), files };
      if (o.json) printJson(out);
      else process.stdout.write(`issued ${out.spiffe_id} (serial ${out.serial}, valid until ${out.not_after})\n${files.map((f) => `  wrote ${f}`).join('\n')}\n`);
    });

  cert
    .command('inspect')
    .description('show a certificate chain from a file or a live TLS endpoint')
    .argument('<target>', 'a PEM/DER file, or HOST:PORT of a TLS server')
    .option('--bundle <file>', 'verify the chain against the roots in FILE (e.g. bundle.pem)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
Exit code 1 when --bundle is given and the chain does not verify.

Examples:
  $ tollgate cert inspect ./web.crt
  $ tollgate cert inspect ./web.crt --bundle ./ca/bundle.pem --json
  $ tollgate cert inspect 127.0.0.1:8443 --bundle ./ca/bundle.pem`)
    .action(async (target: string, o: { bundle?: string; json?: boolean }) => {
      const { describeCertificates, fetchPeerChain, formatInspection, loadCertificateFile, parseTarget } = await import('../pki/inspect.ts');
      const t = parseTarget(target);
      const chain = t.kind === 'file' ? loadCertificateFile(t.path) : await fetchPeerChain(`${t.host}:${t.port}`);
      const bundle = o.bundle ? loadCertificateFile(o.bundle) : undefined;
      const inspection = describeCertificates(chain, { now: systemClock.now(), ...(bundle ? { bundle } : {}) });
      if (o.json) printJson(inspection);
      else process.stdout.write(formatInspection(inspection));
      if (inspection.verification.checked && !inspection.verification.ok) process.exitCode = EXIT_FAILURE;
    });

  cert
    .command('expiry')
    .description('exit non-zero when any certificate of a file or a served chain is inside its warning window or expired')
    .argument('<target>', 'a PEM/DER file (every certificate in it is checked), or HOST:PORT of a TLS server (its whole chain)')
    .option('--warn <share>', "the warning window: the last N% of each certificate's life", '33%')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
Exit 0 every certificate is fine, 1 one is inside its warning window, expired or not yet valid
(or the server cannot be reached), 2 bad input (unreadable file, not a certificate, bad --warn).

Examples:
  $ tollgate cert expiry ./ca/root.crt
  $ tollgate cert expiry ./ca/intermediate.crt --warn 50%
  $ tollgate cert expiry 127.0.0.1:8443 --json      # the CA's serving chain`)
    .action(async (target: string, o: { warn: string; json?: boolean }) => {
      const [{ checkExpiry, formatExpiry, parseWarn }, { fetchPeerChain, loadCertificateFile, parseTarget }] = await Promise.all([import('../pki/expiry.ts'), import('../pki/inspect.ts')]);
      const warn = parseWarn(o.warn);
      const t = parseTarget(target);
      const chain = t.kind === 'file' ? loadCertificateFile(t.path) : await fetchPeerChain(`${t.host}:${t.port}`);
      const report = checkExpiry(chain, { target, now: systemClock.now(), warn });
      if (o.json) printJson(report);
      else process.stdout.write(formatExpiry(report));
      if (report.state !== 'ok') process.exitCode = EXIT_FAILURE;
    });
}
