// Picks the TensorFlow.js backend. `auto` takes the first that really loads of tfjs-node-gpu,
// tfjs-node, wasm, cpu. tfjs-node(-gpu) may be installed without its native binding (npm may
// skip its install script, or the libtensorflow download fails offline), so each candidate is
// imported and initialised, not merely resolved. The choice is process-wide (tfjs keeps one
// active backend), so the result is memoised per preference.
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { noteDevice } from '../../runner/stage-api.js';

export type BackendPref = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_PREFS: readonly BackendPref[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export type Tf = typeof TF;

export interface BackendChoice {
  readonly tf: Tf;
  /** The tfjs backend name now active: 'tensorflow', 'wasm' or 'cpu'. */
  readonly backend: string;
  readonly detail: {
    readonly requested: BackendPref;
    /** The candidate that loaded: 'tensorflow-gpu', 'tensorflow', 'wasm' or 'cpu'. */
    readonly selected: Exclude<BackendPref, 'auto'>;
    /** Candidates tried before it and why each was skipped. */
    readonly skipped: readonly { readonly candidate: string; readonly reason: string }[];
    readonly tfjsVersion: string;
    readonly threads?: number;
  };
}

type Candidate = Exclude<BackendPref, 'auto'>;

const ORDER: readonly Candidate[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
const memo = new Map<BackendPref, Promise<BackendChoice>>();
let tfModule: Promise<Tf> | undefined;

/** The tfjs module, imported once (its import registers the cpu backend). */
export function loadTf(): Promise<Tf> {
  tfModule ??= import('@tensorflow/tfjs').then((m) =>
    (m as unknown as { default?: Tf }).default?.tensor ? (m as unknown as { default: Tf }).default : (m as unknown as Tf),
  );
  return tfModule;
}

function firstLine(e: unknown): string {
  if ((e as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND' && /Cannot find package '@tensorflow\/tfjs-node(-gpu)?'/.test(String((e as Error).message))) {
    // pipe's install on a GPU host tried it (runner/hosts/install.ts) and passes on why it failed.
    const failed = /tfjs-node-gpu/.test(String((e as Error).message)) ? process.env.PIPE_TFJS_GPU_FAILED : undefined;
    return failed ? `its install on this host failed (${failed})` : 'not installed';
  }
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.slice(0, 300);
}

async function tryNode(tf: Tf, pkg: string): Promise<string> {
  // tfjs-node registers the 'tensorflow' backend on import, using the first tfjs-core it finds:
  // a second copy of tfjs-core (a version mismatch) would register into the wrong engine.
  await import(pkg);
  if (!tf.findBackendFactory('tensorflow'))
    throw new Error(`${pkg} loaded but registered no 'tensorflow' backend with this @tensorflow/tfjs (version mismatch?)`);
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`the 'tensorflow' backend of ${pkg} failed to initialise`);
  return 'tensorflow';
}

async function tryWasm(tf: Tf): Promise<string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (!tf.findBackendFactory('wasm')) throw new Error('@tensorflow/tfjs-backend-wasm registered no backend with this @tensorflow/tfjs');
  try {
    // Node loads the .wasm next to the package's main file; point at dist/ explicitly so a
    // bundled or relocated entry point still finds it.
    const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(`${path.dirname(entry)}${path.sep}`);
  } catch {
    // resolve() failing means the default lookup is all there is.
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  // wasm lacks Conv2DBackpropFilter (and its Conv2DBackpropInput is slow): without these,
  // training any conv layer on wasm throws.
  const { registerWasmGradKernels } = await import('./wasm-grad-kernels.js');
  registerWasmGradKernels(tf);
  return 'wasm';
}

async function tryCandidate(tf: Tf, c: Candidate): Promise<string> {
  switch (c) {
    case 'tensorflow-gpu':
      return tryNode(tf, '@tensorflow/tfjs-node-gpu');
    case 'tensorflow':
      return tryNode(tf, '@tensorflow/tfjs-node');
    case 'wasm':
      return tryWasm(tf);
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
      return 'cpu';
    default: {
      const never: never = c;
      throw new Error(`unknown backend ${String(never)}`);
    }
  }
}

async function select(pref: BackendPref, log?: (m: string) => void): Promise<BackendChoice> {
  const tf = await loadTf();
  const candidates = pref === 'auto' ? ORDER : [pref];
  const skipped: { candidate: string; reason: string }[] = [];
  for (const c of candidates) {
    try {
      const backend = await tryCandidate(tf, c);
      await tf.ready();
      let threads: number | undefined;
      if (backend === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        threads = wasm.getThreadsCount();
      }
      const detail = { requested: pref, selected: c, skipped, tfjsVersion: tf.version.tfjs, ...(threads !== undefined ? { threads } : {}) };
      const why = skipped.length ? ` (skipped: ${skipped.map((s) => `${s.candidate}: ${s.reason}`).join('; ')})` : '';
      // On a GPU host (pipe sets PIPE_GPU_NAME there) a CPU backend says why tensorflow-gpu is not used.
      const gpuSkip = process.env.PIPE_GPU_NAME && c !== 'tensorflow-gpu' ? skipped.find((s) => s.candidate === 'tensorflow-gpu') : undefined;
      const notes = [...(threads !== undefined ? [`${threads} threads`] : []), ...(gpuSkip ? [`tensorflow-gpu: ${gpuSkip.reason}`] : [])];
      noteDevice(
        `tfjs ${c === 'tensorflow-gpu' ? `tensorflow-gpu${process.env.PIPE_GPU_NAME ? ` (${process.env.PIPE_GPU_NAME})` : ''}` : c}${notes.length ? ` (${notes.join('; ')})` : ''}`,
      );
      log?.(`tfjs backend: ${backend}${threads !== undefined ? `, ${threads} thread${threads === 1 ? '' : 's'}` : ''}${why}`);
      return { tf, backend, detail };
    } catch (e) {
      skipped.push({ candidate: c, reason: firstLine(e) });
    }
  }
  throw new Error(`no tfjs backend could be loaded for '${pref}': ${skipped.map((s) => `${s.candidate}: ${s.reason}`).join('; ')}`);
}

/**
 * Select (once per process and preference) and activate a tfjs backend. A later call with another
 * preference switches the active backend; callers that hold tensors across such a switch lose them.
 */
export async function selectBackend(pref: BackendPref, log?: (m: string) => void): Promise<BackendChoice> {
  let p = memo.get(pref);
  if (!p) {
    p = select(pref, log);
    memo.set(pref, p);
    p.catch(() => memo.delete(pref));
    return p;
  }
  const choice = await p;
  if (choice.tf.getBackend() !== choice.backend) await choice.tf.setBackend(choice.backend);
  log?.(`tfjs backend: ${choice.backend}`);
  return choice;
}
