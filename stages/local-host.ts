// `provision` with `provider: local`: this machine. Records what a reader of the run needs to
// judge its timings: CPU model, cores, memory, GPUs (from `nvidia-smi -L` when present), and
// which TensorFlow.js backend would load here. The backend is found by importing the native
// packages (an installed tfjs-node may lack its binding, so resolving is not enough); nothing
// imports @tensorflow/tfjs itself, and wasm is the fallback when neither native package loads.
import os from 'node:os';

export interface LocalFacts {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly gpus: readonly string[];
  /** The tfjs backend `auto` would pick: 'tensorflow-gpu', 'tensorflow' or 'wasm'. */
  readonly backend: string;
  /** Why each better backend was skipped. */
  readonly backendNotes: readonly string[];
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? '').slice(0, 200);
}

/** GPU names from `nvidia-smi -L` ("GPU 0: NVIDIA H200 (UUID: GPU-...)"), [] without one. */
export async function listNvidiaGpus(command = 'nvidia-smi'): Promise<string[]> {
  const { execa } = await import('execa');
  const r = await execa(command, ['-L'], { reject: false, timeout: 10_000, stdin: 'ignore' });
  if (r.failed || typeof r.stdout !== 'string') return [];
  return parseNvidiaSmiList(r.stdout);
}

export function parseNvidiaSmiList(text: string): string[] {
  const gpus: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^GPU\s+\d+:\s*(.+?)\s*(?:\(UUID:.*\))?\s*$/.exec(line.trim());
    if (m?.[1]) gpus.push(m[1]);
  }
  return gpus;
}

const NATIVE: readonly (readonly [string, string])[] = [
  ['@tensorflow/tfjs-node-gpu', 'tensorflow-gpu'],
  ['@tensorflow/tfjs-node', 'tensorflow'],
];

/** The backend tfjs `auto` would load here, trying the native packages in order. */
export async function detectBackend(): Promise<{ backend: string; notes: string[] }> {
  const notes: string[] = [];
  for (const [pkg, backend] of NATIVE) {
    try {
      await import(pkg); // a variable specifier: the packages are optional, not dependencies
      return { backend, notes };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      notes.push(`${pkg}: ${code === 'ERR_MODULE_NOT_FOUND' ? 'not installed' : firstLine(e)}`);
    }
  }
  return { backend: 'wasm', notes };
}

export async function probeLocalHost(options: { nvidiaSmi?: string } = {}): Promise<LocalFacts> {
  const cpus = os.cpus();
  const [gpus, backend] = await Promise.all([listNvidiaGpus(options.nvidiaSmi), detectBackend()]);
  return {
    cpu: cpus[0]?.model.trim() || os.arch(),
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    gpus,
    backend: backend.backend,
    backendNotes: backend.notes,
  };
}
