// The one place errors become exit codes: 0 ok, 1 failure, 2 usage or bad input.
import { CommanderError } from 'commander';
import { isTollgateError, type ErrorCode } from '../common/errors.ts';

const BAD_INPUT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'TG_USAGE',
  'TG_SPIFFE_ID_INVALID',
  'TG_TRUST_DOMAIN_INVALID',
  'TG_TTL_INVALID',
  'TG_CONFIG_INVALID',
  'TG_CERT_INVALID',
  'TG_ANNOTATION_INVALID',
  'TG_POD_INVALID',
  'TG_RESERVED_ID',
]);

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT_OK;
    return EXIT_USAGE;
  }
  if (isTollgateError(e)) return BAD_INPUT.has(e.code) ? EXIT_USAGE : EXIT_FAILURE;
  return EXIT_FAILURE;
}

/** The message an operator sees on stderr. */
export function describeError(e: unknown): string {
  if (isTollgateError(e)) return `tollgate: ${e.code}: ${e.message}`;
  if (e instanceof CommanderError) return '';
  return `tollgate: unexpected error: ${(e as Error)?.stack ?? String(e)}`;
}
