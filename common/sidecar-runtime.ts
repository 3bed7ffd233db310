// The process settings a sidecar runs with, chosen by measurement (README, "Sidecar memory").
// A sidecar is a small, long-lived Node process in every pod, so what it keeps after a burst of
// load is paid once per pod. Three settings bound it:
// - V8's young generation, `--max-semi-space-size=1` (MiB): Node's default lets each of the two
//   semi-spaces grow to 16 MiB under load, 32 MiB kept while the process is busy. V8 sizes the young
//   generation when the process starts, so this goes in NODE_OPTIONS, set by whoever starts it.
// - V8's old generation, `--optimize-for-size`, set by the process itself (NODE_OPTIONS does not
//   accept it, and V8 reads it each time it sizes the heap's next growth): the old generation then
//   grows by a small factor over what is live instead of up to 4×. bin/tollgate.js sets it before it
//   compiles the bundle (V8's code cache is keyed to the flags); `sidecar run` sets it again for the
//   TypeScript sources.
// - glibc's malloc: one arena, memory at the top of the heap given back past 128 KiB, and blocks of
//   128 KiB and more in their own mappings. OpenSSL allocates and frees per connection; with glibc's
//   defaults the freed pages stay in the main arena and in one more arena per thread that allocated.
// The injector puts the environment into the sidecar container; the bench and the tests start
// sidecars with it; an operator who runs `tollgate sidecar run` by hand gets a log line naming what
// is missing. An operator's own NODE_OPTIONS and GLIBC_TUNABLES come after ours, so theirs win.
import { setFlagsFromString } from 'node:v8';

export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=1';
export const SIDECAR_GLIBC_TUNABLES = 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072';
export const SIDECAR_V8_RUNTIME_FLAGS = '--optimize-for-size';

/** The sidecar's environment variables, as a container spec lists them. */
export function sidecarEnvVars(): Array<{ name: string; value: string }> {
  return [
    { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS },
    { name: 'GLIBC_TUNABLES', value: SIDECAR_GLIBC_TUNABLES },
  ];
}

/** `env` with the sidecar's settings in front of any NODE_OPTIONS and GLIBC_TUNABLES it already has. */
export function sidecarProcessEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const join = (ours: string, theirs: string | undefined, sep: string): string => (theirs ? `${ours}${sep}${theirs}` : ours);
  return { ...env, NODE_OPTIONS: join(SIDECAR_NODE_OPTIONS, env.NODE_OPTIONS, ' '), GLIBC_TUNABLES: join(SIDECAR_GLIBC_TUNABLES, env.GLIBC_TUNABLES, ':') };
}

/**
 * Called first by `sidecar run`: sets the V8 flags that work after start, and returns the settings
 * that only the process's starter can give and that this process was started without (names, for a
 * log line; empty when started as the injector starts it).
 */
export function tuneSidecarRuntime(o: { readonly execArgv?: readonly string[]; readonly env?: NodeJS.ProcessEnv; readonly setFlags?: (flags: string) => void } = {}): string[] {
  (o.setFlags ?? setFlagsFromString)(SIDECAR_V8_RUNTIME_FLAGS);
  const env = o.env ?? process.env;
  const nodeArgs = [...(o.execArgv ?? process.execArgv), ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
  const missing: string[] = [];
  if (!nodeArgs.some((a) => /^--max-semi-space-size(=|$)/.test(a) || a === '--optimize-for-size')) missing.push(`NODE_OPTIONS=${SIDECAR_NODE_OPTIONS}`);
  if (!/(^|:)glibc\.malloc\.arena_max=/.test(env.GLIBC_TUNABLES ?? '') && env.MALLOC_ARENA_MAX === undefined) missing.push(`GLIBC_TUNABLES=${SIDECAR_GLIBC_TUNABLES}`);
  return missing;
}
