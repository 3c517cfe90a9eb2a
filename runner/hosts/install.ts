// pipe's own installation on a host without `pipe_path`: this package (with its built dist/) is
// synced to <root>/tool and its runtime dependencies installed there once per lockfile.
// `npm ci --ignore-scripts`: our `prepare` script builds with tsc, a devDependency that
// `--omit=dev` leaves out, and the built dist/ is already synced; dependencies' own install
// scripts are run explicitly where pipe needs one (onnxruntime-node's CUDA provider), so the
// result is the same whichever npm the host has (older npm runs install scripts, newer npm
// only those an allowlist names).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StageError, type Logger } from '../types.js';
import { hashOf } from '../canonical.js';
import { rsyncUp, shq, sshRun, type SshTarget } from './ssh.js';
import { lockHostInstall } from './install-lock.js';
import { ORT_CUDA_LIB } from './host-probe.js';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Exit status of the install script when npm is not on the host's PATH. */
const NO_NPM = 97;

export interface InstallOptions {
  readonly target: SshTarget;
  readonly where: string;
  /** pipe's directory on the host. */
  readonly root: string;
  /** The install's folder under root ('tool' unless given: a Slurm cluster keeps one per variant). */
  readonly toolName?: string;
  /** Prepended to PATH for npm (a Node that pipe bootstrapped there), if any. */
  readonly nodeBinDir?: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Turns a sync failure into the stage's error (lost connection or not). */
  sync(doing: string, fn: () => Promise<void>): Promise<void>;
  lost(doing: string): StageError;
}

/** The install's marker: one per lockfile, so a changed dependency set installs again. */
export async function installKey(): Promise<string> {
  return hashOf(await readFile(path.join(PACKAGE_ROOT, 'package-lock.json'), 'utf8')).slice(0, 16);
}

/** What the install put there: the CPU build, or ONNX Runtime's CUDA 12 provider too. */
export type InstallVariant = 'cpu' | 'cuda12';

const CUDA_FAILED = 'node_modules/.pipe-cuda-failed';
const TFJS_GPU_FAILED = 'node_modules/.pipe-tfjs-gpu-failed';

/**
 * The shell script run in the tool dir: nothing when the marker of (lockfile, variant) is there,
 * else `npm ci`, then for 'cuda12' onnxruntime-node's own installer asked for the CUDA 12
 * provider (a download from NuGet; its failure is recorded, and the install stays CPU-only).
 * Prints `installed` when it was there already, `cuda-failed=<why>` and `cuda=yes` facts. For
 * 'cuda12' with `tfjsVersion`, also @tensorflow/tfjs-node-gpu of that version (not a dependency
 * of pipe: it installs only where a GPU is) and `tfjs-gpu=yes` / `tfjs-gpu-failed=<why>`.
 */
export function installScript(toolDir: string, key: string, variant: InstallVariant, nodeBinDir?: string, tfjsVersion?: string): string {
  const marker = `node_modules/.pipe-installed-${key}-${variant}`;
  return [
    `cd ${shq(toolDir)} || exit 1`,
    ...(nodeBinDir ? [`PATH=${shq(nodeBinDir)}:"$PATH"; export PATH`] : []),
    // The run's host lock (install-lock.ts) ends with its ssh session; an npm left running by a
    // run killed mid-install holds this one until it is done, so the next install waits for it.
    'command -v flock >/dev/null 2>&1 && { exec 8>>../install.npm.lock; flock -w 1800 8; }',
    `if [ -f ${marker} ]; then echo installed; else`,
    `  npm --version >/dev/null 2>&1 || exit ${NO_NPM}`,
    `  npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund >&2 || exit $?`,
    ...(variant === 'cuda12'
      ? [
          `  if ! ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js > node_modules/.pipe-cuda.log 2>&1; then`,
          `    grep -m1 -E '^[A-Za-z]*Error' node_modules/.pipe-cuda.log | cut -c1-300 > ${CUDA_FAILED}`,
          `    [ -s ${CUDA_FAILED} ] || tail -n1 node_modules/.pipe-cuda.log | cut -c1-300 > ${CUDA_FAILED}`,
          '  fi',
          // tfjs-node-gpu (the tfjs backend on CUDA): its install script downloads libtensorflow;
          // offline, or without a matching CUDA, it fails: the reason is kept, tfjs stays on wasm/cpu.
          ...(tfjsVersion
            ? [
                `  if ! npm install --no-save --prefer-offline --no-audit --no-fund --fetch-retries=1 --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=3000 @tensorflow/tfjs-node-gpu@${shq(tfjsVersion)} > node_modules/.pipe-tfjs-gpu.log 2>&1; then`,
                `    grep -m1 -iE 'error' node_modules/.pipe-tfjs-gpu.log | cut -c1-300 > ${TFJS_GPU_FAILED}`,
                `    [ -s ${TFJS_GPU_FAILED} ] || tail -n1 node_modules/.pipe-tfjs-gpu.log | cut -c1-300 > ${TFJS_GPU_FAILED}`,
                '  fi',
              ]
            : []),
        ]
      : []),
    `  touch ${marker}`,
    'fi',
    `[ -s ${CUDA_FAILED} ] && echo "cuda-failed=$(cat ${CUDA_FAILED})"`,
    `[ -e ${ORT_CUDA_LIB} ] && echo cuda=yes`,
    `[ -s ${TFJS_GPU_FAILED} ] && echo "tfjs-gpu-failed=$(cat ${TFJS_GPU_FAILED})"`,
    `ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node >/dev/null 2>&1 && echo tfjs-gpu=yes`,
    'true',
  ].join('\n');
}

export interface Installed {
  /** bin/pipe.js on the host. */
  readonly bin: string;
  readonly variant: InstallVariant;
  /** Whether ONNX Runtime's CUDA provider library is installed there. */
  readonly cudaProvider: boolean;
  /** Why the CUDA provider could not be installed (its download failed), for a 'cuda12' install. */
  readonly cudaFailed?: string;
  /** Whether tfjs-node-gpu (with its native binding) is installed there. */
  readonly tfjsGpu: boolean;
  /** Why tfjs-node-gpu could not be installed, for a 'cuda12' install. */
  readonly tfjsGpuFailed?: string;
}

// Two stages placed on the same host in one run share one sync and install.
const inFlight = new Map<string, Promise<Installed>>();

/** Sync pipe to the host and install it there (once per lockfile and variant). */
export function installPipe(o: InstallOptions, variant: InstallVariant): Promise<Installed> {
  const id = `${o.target.user}@${o.target.address}:${o.target.port}:${o.root}:${o.toolName ?? 'tool'}:${variant}`;
  let p = inFlight.get(id);
  if (!p) {
    p = doInstall(o, variant);
    inFlight.set(id, p);
    p.catch(() => inFlight.delete(id));
  }
  return p;
}

async function doInstall(o: InstallOptions, variant: InstallVariant): Promise<Installed> {
  // Another pipe run may be syncing and installing into the same tool dir: one at a time.
  const release = await lockHostInstall(o);
  try {
    return await syncAndInstall(o, variant);
  } finally {
    await release();
  }
}

async function syncAndInstall(o: InstallOptions, variant: InstallVariant): Promise<Installed> {
  const toolDir = path.posix.join(o.root, o.toolName ?? 'tool');
  o.log.debug(`syncing pipe to ${o.where}:${toolDir}`);
  // .npmrc is this checkout's npm setup, not the host's: the install passes what it needs itself.
  await o.sync('syncing pipe to the host', () =>
    rsyncUp(o.target, PACKAGE_ROOT, toolDir, { signal: o.signal, delete: true, exclude: ['node_modules', '.pipe', '.git', 'test-artifacts', '.npmrc'] }),
  );
  const started = Date.now();
  const lines: string[] = [];
  const r = await sshRun(o.target, installScript(toolDir, await installKey(), variant, o.nodeBinDir, await tfjsVersion()), {
    signal: o.signal,
    onLine: (l) => lines.push(l.trim()),
  });
  if (r.exitCode === 255) throw o.lost('installing pipe');
  if (r.exitCode === NO_NPM) {
    throw new StageError(
      `cannot install pipe on ${o.where}: npm is not on the PATH of a non-interactive ssh session there`,
      'install npm there (Debian/Ubuntu: apt-get install npm), or set `pipe_path` to an existing pipe installation',
    );
  }
  if (r.exitCode !== 0) throw new StageError(`installing pipe on ${o.where} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const cudaFailed = lines.find((l) => l.startsWith('cuda-failed='))?.slice('cuda-failed='.length);
  if (lines.includes('installed')) o.log.debug(`pipe is already installed on ${o.where} (${variant})`);
  else
    o.log.info(
      `installed pipe's dependencies on ${o.where} (${variant === 'cuda12' ? 'with the CUDA 12 build of ONNX Runtime' : 'CPU build'}) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
  const tfjsGpuFailed = lines.find((l) => l.startsWith('tfjs-gpu-failed='))?.slice('tfjs-gpu-failed='.length);
  if (tfjsGpuFailed) o.log.info(`tfjs-node-gpu could not be installed on ${o.where} (${tfjsGpuFailed}): tfjs computes on wasm/cpu there`);
  return {
    bin: path.posix.join(toolDir, 'bin/pipe.js'),
    variant,
    cudaProvider: lines.includes('cuda=yes'),
    ...(cudaFailed ? { cudaFailed } : {}),
    tfjsGpu: lines.includes('tfjs-gpu=yes'),
    ...(tfjsGpuFailed ? { tfjsGpuFailed } : {}),
  };
}

/** The @tensorflow/tfjs version pipe depends on: tfjs-node-gpu must match it. */
async function tfjsVersion(): Promise<string | undefined> {
  const pkg = JSON.parse(await readFile(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const v = pkg.dependencies?.['@tensorflow/tfjs'];
  return v && /^\d+\.\d+\.\d+$/.test(v) ? v : undefined;
}
