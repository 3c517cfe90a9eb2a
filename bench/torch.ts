// PyTorch reference figures measured in the same run as ours (the machine drifts 10-20%), via
// ../shared/bench/torch_reference.py under Debian's /usr/bin/python3 (python3-torch).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type TorchMode = 'features' | 'block5' | 'head';

export type TorchResult = { ok: true; result: Record<string, unknown> } | { ok: false; reason: string };

const PYTHON = process.env['PIPE_TORCH_PYTHON'] ?? '/usr/bin/python3';

/** ../shared/bench/torch_reference.py next to the repository (or PIPE_TORCH_REFERENCE). */
export function torchReferenceScript(): string {
  if (process.env['PIPE_TORCH_REFERENCE']) return process.env['PIPE_TORCH_REFERENCE'];
  // dist/bench/torch.js or bench/torch.ts -> repository root -> ../shared
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir);
  return path.resolve(dir, '..', 'shared', 'bench', 'torch_reference.py');
}

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON, args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException & { code?: unknown }).code === 'ENOENT' ? null : typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

let available: Promise<TorchResult> | undefined;

/** Whether `import torch, torchvision` works under /usr/bin/python3; memoised. */
export function torchAvailable(): Promise<TorchResult> {
  available ??= (async (): Promise<TorchResult> => {
    if (!existsSync(PYTHON)) return { ok: false, reason: `${PYTHON} not found` };
    const script = torchReferenceScript();
    if (!existsSync(script)) return { ok: false, reason: `${script} not found` };
    const r = await run(['-c', 'import torch, torchvision; print(torch.__version__)'], 60_000);
    if (r.code !== 0) {
      const last = r.stderr.trim().split('\n').pop() ?? 'import failed';
      return { ok: false, reason: `python3-torch not importable (${last}); apt-get install python3-torch python3-torchvision` };
    }
    return { ok: true, result: { torch: r.stdout.trim() } };
  })();
  return available;
}

/** Runs one mode of torch_reference.py; its JSON, or why not. */
export async function runTorchReference(mode: TorchMode, args: Record<string, number> = {}, timeoutMs = 180_000): Promise<TorchResult> {
  const avail = await torchAvailable();
  if (!avail.ok) return avail;
  const argv = [torchReferenceScript(), mode, ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const r = await run(argv, timeoutMs);
  if (r.code !== 0) return { ok: false, reason: `torch_reference.py ${mode} failed: ${r.stderr.trim().split('\n').pop() ?? r.code}` };
  try {
    return { ok: true, result: JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown> };
  } catch {
    return { ok: false, reason: `torch_reference.py ${mode}: output is not JSON` };
  }
}
