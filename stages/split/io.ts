// The split's disk work: decoding every image once (corrupt files are left out with the
// decoder's reason) and laying out the chosen images as hard links into the output.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { StageContext } from '../../runner/types.js';
import { StageError } from '../../runner/types.js';
import { mapLimit } from '../../runner/stage-api.js';
import { byCodePoint } from '../random.js';

/** Decodes in flight: measured best at 3-4 on two cores (sharp runs one thread per call). */
const DECODE_CONCURRENCY = 4;

/** Decode every image once; the files that do not decode, with the decoder's reason. */
export async function decodeCheck(ctx: StageContext<unknown>, base: string, all: readonly string[]): Promise<Map<string, string>> {
  const { checkImage } = await import('../vision/decode-check.js');
  const bar = ctx.progress('decode check', all.length);
  const bad = new Map<string, string>();
  await mapLimit(all, DECODE_CONCURRENCY, async (file) => {
    if (ctx.signal.aborted) throw new StageError('interrupted');
    const reason = await checkImage(path.join(base, file));
    if (reason !== undefined) bad.set(file, reason);
    bar.tick();
  });
  // Decoder messages are only reproducible when nothing else decodes at the same time (see
  // decode-check.ts): check the failures again, one by one, for the reason that is recorded.
  for (const file of [...bad.keys()].sort(byCodePoint)) {
    const reason = await checkImage(path.join(base, file));
    if (reason === undefined) bad.delete(file);
    else bad.set(file, reason);
  }
  bar.done(`${all.length - bad.size} ok, ${bad.size} corrupt`);
  for (const [file, reason] of [...bad].sort((x, y) => byCodePoint(x[0], y[0])).slice(0, 10)) ctx.log.warn(`left out ${file}: ${reason}`);
  if (bad.size > 10) ctx.log.warn(`... and ${bad.size - 10} more corrupt files (listed in split.json)`);
  return bad;
}

/** Hard links (copies across devices) of the chosen images into the output. */
export async function writeLinks(ctx: StageContext<unknown>, base: string, links: readonly [string, string][]): Promise<void> {
  const dirs = new Set(links.map(([, rel]) => path.posix.dirname(rel)));
  for (const d of dirs) await mkdir(path.join(ctx.outDir, d), { recursive: true });
  const { linkOrCopy } = await import('../images.js');
  const linkBar = ctx.progress('link', links.length);
  let copies = 0;
  await mapLimit(links, 16, async ([src, rel]) => {
    if ((await linkOrCopy(path.join(base, src), path.join(ctx.outDir, rel))) === 'copy') copies++;
    linkBar.tick();
  });
  linkBar.done(copies ? `${copies} copied (another device)` : undefined);
}
