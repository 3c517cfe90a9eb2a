// `split` of 25,000 small generated JPEGs named like the Kaggle set (train/cat.N.jpg,
// train/dog.N.jpg): wall time and peak RSS. Every file is decoded once (the corrupt-file check)
// and hard-linked, so this measures the stage's own overhead plus sharp's per-file cost.
// Run alone: `node dist/bench/data.js [count]`; prints JSON.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SplitParams } from '../stages/split.js';
import { mapLimit } from '../runner/hash-files.js';
import { round } from './bench-util.js';

const MB = 1024 * 1024;

export async function benchData(count = 25_000): Promise<object> {
  const [{ splitStage }, { loadSharp }, { makeTestContext, artifactFromDir }] = await Promise.all([
    import('../stages/split.js'),
    import('../stages/vision/images.js'),
    import('../test/helpers/stage-context.js'),
  ]);
  const sharp = await loadSharp();
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-data-'));
  try {
    // 64 distinct 64x48 JPEGs, written round-robin (each file is still decoded on its own).
    const width = 64;
    const height = 48;
    const distinct = await Promise.all(
      Array.from({ length: 64 }, (_, k) => {
        const px = Buffer.alloc(width * height * 3);
        for (let i = 0; i < px.length; i++) px[i] = (i * (k + 7) + ((i * 2654435761) >>> 24)) & 0xff;
        return sharp(px, { raw: { width, height, channels: 3 } })
          .jpeg({ quality: 80 })
          .toBuffer();
      }),
    );
    const input = path.join(root, 'input');
    await mkdir(path.join(input, 'train'), { recursive: true });
    const t0 = performance.now();
    const names = Array.from({ length: count }, (_, i) => (i % 2 === 0 ? `cat.${i / 2}.jpg` : `dog.${(i - 1) / 2}.jpg`));
    await mapLimit(names, 32, (name, i) => writeFile(path.join(input, 'train', name), distinct[i % distinct.length]!));
    const generateS = (performance.now() - t0) / 1000;

    const params: SplitParams = {
      from: 'train',
      label_from: 'filename',
      label_pattern: '^([a-z]+)\\.',
      valid: Math.round(count * 0.08),
      sample: { train: 200, valid: 50 },
      stratify: true,
      seed: 42,
      extensions: ['jpg', 'jpeg', 'png', 'webp'],
    };
    const ctx = await makeTestContext<SplitParams>(params, { inputs: { images: artifactFromDir(input, 'files') } });
    try {
      global.gc?.();
      const rssBefore = process.memoryUsage.rss();
      let peak = rssBefore;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage.rss());
      }, 25);
      const t1 = performance.now();
      const result = await splitStage.run(ctx);
      const splitS = (performance.now() - t1) / 1000;
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage.rss());
      return {
        files: count,
        image: `${width}x${height} jpeg`,
        generate_s: round(generateS, 2),
        split_s: round(splitS, 2),
        files_per_s: Math.round(count / splitS),
        rss_before_mb: Math.round(rssBefore / MB),
        peak_rss_mb: Math.round(peak / MB),
        peak_rss_growth_mb: Math.round((peak - rssBefore) / MB),
        process_max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
        summary: result?.summary,
      };
    } finally {
      await ctx.cleanup();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const n = Number(process.argv[2] ?? 25_000);
  console.log(JSON.stringify(await benchData(Number.isFinite(n) && n > 0 ? n : 25_000), null, 2));
}
