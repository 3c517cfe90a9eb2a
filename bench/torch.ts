// PyTorch reference figures measured in the same run as ours (the machine drifts 10-20%), via
// bench/torch_reference.py under Debian's /usr/bin/python3 (python3-torch, python3-torchvision).
// Without them every PyTorch column says `skipped` and why; nothing else needs PyTorch.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { round } from './bench-util.js';

export type TorchMode = 'features' | 'block5' | 'head';

export type TorchResult = { ok: true; result: Record<string, unknown> } | { ok: false; reason: string };

/** Debian's python3 (the first on PATH may be a pyenv one without python3-torch), or PIPE_TORCH_PYTHON. */
function python(): string {
  return process.env['PIPE_TORCH_PYTHON'] ?? '/usr/bin/python3';
}

/** The repository's bench/torch_reference.py (or PIPE_TORCH_REFERENCE). */
export function torchReferenceScript(): string {
  if (process.env['PIPE_TORCH_REFERENCE']) return process.env['PIPE_TORCH_REFERENCE'];
  // dist/bench/torch.js or bench/torch.ts -> repository root (tsc does not copy the .py to dist/)
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir);
  return path.join(dir, 'bench', 'torch_reference.py');
}

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    execFile(python(), args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException & { code?: unknown }).code === 'ENOENT' ? null : typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), timedOut: Boolean(err?.killed) });
    });
  });
}

const available = new Map<string, Promise<TorchResult>>();

/** Whether `import torch, torchvision` works under that python (and the script is there); memoised per python. */
export function torchAvailable(): Promise<TorchResult> {
  const py = python();
  const known = available.get(py);
  if (known) return known;
  const check = (async (): Promise<TorchResult> => {
    if (!existsSync(py)) return { ok: false, reason: `${py} not found` };
    const script = torchReferenceScript();
    if (!existsSync(script)) return { ok: false, reason: `${script} not found` };
    const r = await run(['-c', 'import torch, torchvision; print(torch.__version__)'], 60_000);
    if (r.code !== 0) {
      const last = r.stderr.trim().split('\n').pop() ?? 'import failed';
      return { ok: false, reason: `python3-torch not importable (${last}); apt-get install python3-torch python3-torchvision` };
    }
    return { ok: true, result: { torch: r.stdout.trim() } };
  })();
  available.set(py, check);
  return check;
}

/** Runs one mode of torch_reference.py; its JSON, or why not. */
export async function runTorchReference(mode: TorchMode, args: Record<string, number | string> = {}, timeoutMs = 900_000): Promise<TorchResult> {
  const avail = await torchAvailable();
  if (!avail.ok) return avail;
  const argv = [torchReferenceScript(), mode, ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const r = await run(argv, timeoutMs);
  if (r.timedOut) return { ok: false, reason: `torch_reference.py ${mode} did not finish in ${round(timeoutMs / 1000, 1)} s (a busy machine?)` };
  if (r.code !== 0) return { ok: false, reason: `torch_reference.py ${mode} failed: ${r.stderr.trim().split('\n').pop() || `exit ${r.code}`}` };
  try {
    return { ok: true, result: JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown> };
  } catch {
    return { ok: false, reason: `torch_reference.py ${mode}: output is not JSON` };
  }
}
