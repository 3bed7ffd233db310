// Secrets (join tokens, PKCS#12 passwords) from a file or an environment variable rather than argv:
// /proc/<pid>/cmdline is world-readable and is copied to every forked worker. A secret file must be
// readable by its owner only (0600 or stricter).
import { readFileSync, statSync } from 'node:fs';
import { TollgateError } from './errors.ts';

/** The trimmed content of a secret file; TG_CONFIG_INVALID when group or others may read it. */
export function readSecretFile(path: string): string {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new TollgateError('TG_CONFIG_INVALID', `${path} is mode 0${mode.toString(8)}: a secret file must be readable by its owner only (chmod 600 ${path})`);
  }
  return readFileSync(path, 'utf8').trim();
}

/** A secret from exactly one of: the argv flag, a file flag, an environment variable (in that order of precedence; two flags together are refused). */
export function secretFrom(o: { value?: string | undefined; file?: string | undefined; flag: string; fileFlag: string; envName: string; env?: NodeJS.ProcessEnv }): string | undefined {
  if (o.value !== undefined && o.file !== undefined) throw new TollgateError('TG_USAGE', `give ${o.flag} or ${o.fileFlag}, not both`);
  if (o.file !== undefined) {
    try {
      return readSecretFile(o.file);
    } catch (e) {
      if (e instanceof TollgateError) throw e;
      throw new TollgateError('TG_USAGE', `${o.fileFlag} ${o.file}: ${(e as Error).message}`);
    }
  }
  return o.value ?? ((o.env ?? process.env)[o.envName] || undefined);
}
