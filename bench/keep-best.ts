// What keep: best and patience buy, measured: runs a pipeline up to its finetune stage once per
// seed (in a throw-away cache) and reads the epoch history. Training is the same whatever
// `keep` and `patience` say up to where patience stops, so one run per seed gives every policy:
// the last epoch (keep: last), the best by val_loss / val_accuracy (keep: best), and where
// patience N would have stopped and what it would have kept.
//
//   node dist/bench/keep-best.js pipelines/demo.yaml --seeds 42,1,2,3,4,5 [--stage finetune] [--set path=value ...] [--cache-dir DIR]
// --cache-dir keeps one cache for every seed (and is left in place): with the split's seed pinned
// (--set stages.split.with.seed=42) the seeds share the frozen outputs and augmented variants,
// and only training runs per seed.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EpochKeeper, type Monitor } from '../stages/vision/epoch-keeper.js';
import type { EpochRecord } from '../stages/vision/train.js';

const run = promisify(execFile);
const PIPE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/pipe.js');

interface SeedResult {
  seed: number;
  epochs: number;
  val_accuracy: Record<string, number>;
  kept_epoch: Record<string, number>;
}

/** val_accuracy and epoch of what each policy keeps, from one history. */
export function policies(epochs: readonly EpochRecord[]): Pick<SeedResult, 'val_accuracy' | 'kept_epoch'> {
  const acc: Record<string, number> = {};
  const at: Record<string, number> = {};
  const put = (name: string, epoch: number) => {
    at[name] = epoch;
    acc[name] = epochs.find((e) => e.epoch === epoch)!.val_accuracy!;
  };
  put('last', epochs[epochs.length - 1]!.epoch);
  for (const monitor of ['val_loss', 'val_accuracy'] as Monitor[])
    put(`best_${monitor}`, EpochKeeper.replay({ keep: 'best', monitor, patience: 0 }, epochs).best!);
  for (const patience of [2, 3, 5]) {
    const k = new EpochKeeper({ keep: 'best', monitor: 'val_loss', patience });
    for (const e of epochs) {
      k.observe(e);
      if (k.shouldStop()) break;
    }
    put(`best_val_loss_patience_${patience}`, k.best!);
  }
  return { val_accuracy: acc, kept_epoch: at };
}

/** The newest file called `name` under `dir` (in a shared cache: the one the last run wrote). */
async function findFile(dir: string, name: string, under: string): Promise<string | null> {
  let newest: { file: string; at: number } | null = null;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(e.parentPath, e.name);
    if (!e.isFile() || e.name !== name || !full.includes(`${path.sep}${under}${path.sep}`)) continue;
    const at = (await stat(full)).mtimeMs;
    if (!newest || at > newest.at) newest = { file: full, at };
  }
  return newest?.file ?? null;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--') && a.endsWith('.yaml'));
  if (!file) throw new Error('usage: keep-best.js PIPELINE.yaml --seeds 1,2,3 [--stage finetune] [--set path=value]');
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seeds = (opt('seeds') ?? '1,2,3,4,5').split(',').map(Number);
  const stage = opt('stage') ?? 'finetune';
  const sets = args.flatMap((a, i) => (a === '--set' ? ['--set', args[i + 1]!] : []));
  const sharedCache = opt('cache-dir');
  const results: SeedResult[] = [];
  for (const seed of seeds) {
    const cache = sharedCache ?? (await mkdtemp(path.join(os.tmpdir(), 'pipe-keep-bench-')));
    try {
      const t0 = performance.now();
      await run(process.execPath, [PIPE, 'run', file, '--until', stage, '-p', `seed=${seed}`, '--cache-dir', cache, ...sets], { maxBuffer: 64 * 2 ** 20 });
      const historyFile = await findFile(cache, 'history.json', 'cache');
      if (!historyFile) throw new Error(`no history.json under ${cache}`);
      const history = JSON.parse(await readFile(historyFile, 'utf8')) as { epochs: EpochRecord[] };
      results.push({ seed, epochs: history.epochs.length, ...policies(history.epochs) });
      process.stderr.write(`seed ${seed}: ${JSON.stringify(results[results.length - 1])} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    } finally {
      if (!sharedCache) await rm(cache, { recursive: true, force: true });
    }
  }
  const names = Object.keys(results[0]!.val_accuracy);
  const summary = Object.fromEntries(
    names.map((n) => {
      const v = results.map((r) => r.val_accuracy[n]!);
      return [n, { mean: +(v.reduce((a, b) => a + b, 0) / v.length).toFixed(4), min: +Math.min(...v).toFixed(4), per_seed: v.map((x) => +x.toFixed(4)) }];
    }),
  );
  console.log(JSON.stringify({ pipeline: file, seeds, sets, summary, runs: results }, null, 2));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
