// Computing a feature entry's rows (features.ts): the images through the frozen engine, streamed
// to a float32 file that survives an interrupted attempt (resumable), and a set's rows assembled
// from earlier entries and the computed file (feature-reuse.ts).
import { createHash } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, ImageDecodeError, loadBatches } from './images.js';
import { RowCopier, type RowSource } from './feature-reuse.js';
import type { FeatureRequest } from './feature-types.js';

/**
 * The frozen outputs of `files` (dataset-relative) into `target`, through the engine; resumable.
 * With `r.variants`: `copies` rows per file, row `copy * files.length + i` variant `copy` of file i.
 */
export async function computeRows(
  r: FeatureRequest,
  files: readonly string[],
  key: unknown,
  target: string,
): Promise<{ file: string; shape: readonly number[]; engine: Record<string, unknown>; undecodable: Map<string, string> }> {
  const t0 = performance.now();
  const engine = await r.engine();
  const rowBytes = engine.outputShape.reduce((a, b) => a * b, 1) * 4;
  const variants = r.variants;
  const n = files.length;
  const rows = n * (variants?.copies ?? 1);
  const label = variants ? `augmented outputs: ${r.split} (${variants.copies} per image)` : `frozen outputs: ${r.split}`;
  // Named by what it holds: the key and the list computed (which depends on what was found).
  const tag = createHash('sha256').update(JSON.stringify(key)).update(files.join('\n')).digest('hex').slice(0, 24);
  const file = r.resumeDir ? path.join(r.resumeDir, `features-${tag}.f32`) : target;
  let done = 0;
  if (r.resumeDir) {
    await mkdir(r.resumeDir, { recursive: true });
    const size = await stat(file).then(
      (st) => st.size,
      () => 0,
    );
    done = Math.min(rows, Math.floor(size / rowBytes));
    await writeFile(file, '', { flag: 'a' });
    await truncate(file, done * rowBytes); // drop a half-written row
    if (done > 0) r.log(`${label}: resuming after ${done} of ${rows} images`);
  }
  // With skipUndecodable, the files that did not decode so far; kept beside the resumable rows
  // (written before the rows of their batch) so a resumed pass still knows them.
  const badFile = `${file}.undecodable.json`;
  const bad = new Map<string, string>(
    r.skipUndecodable && r.resumeDir && done > 0 ? Object.entries(JSON.parse(await readFile(badFile, 'utf8').catch(() => '{}')) as Record<string, string>) : [],
  );
  const [h, w] = r.preprocess.size;
  const decodeOrSkip = async (abs: string, k: number): Promise<Uint8Array> => {
    try {
      return await decodeImage(abs, r.preprocess);
    } catch (e) {
      if (!(e instanceof ImageDecodeError)) throw e;
      bad.set(files[(from + k) % n]!, e.reason);
      return new Uint8Array(h * w * 3);
    }
  };
  let savedBad = bad.size;
  const bar = r.progress(label, rows, done);
  const fh = await open(file, r.resumeDir ? 'a' : 'w');
  const first = done;
  const from = done;
  try {
    const abs = Array.from({ length: rows - done }, (_, k) => path.join(r.datasetDir, files[(from + k) % n]!));
    for await (const batch of loadBatches(abs, {
      ...(variants ? { decode: (file: string, k: number) => variants.decode(file, files[(from + k) % n]!, Math.floor((from + k) / n)) } : {}),
      ...(r.skipUndecodable && !variants ? { decode: decodeOrSkip } : {}),
      size: r.preprocess.size,
      fit: r.preprocess.fit,
      preprocess: r.preprocess.mode,
      batchSize: r.batchSize,
      concurrency: r.concurrency ?? 4,
      signal: r.signal,
      reuseBuffers: true, // each batch is run through the engine before the next is taken
    })) {
      const y = await engine.run(batch.data, batch.count);
      if (bad.size > savedBad && r.resumeDir) {
        await writeFile(badFile, JSON.stringify(Object.fromEntries(bad)));
        savedBad = bad.size;
      }
      await fh.write(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
      done += batch.count;
      const secs = (performance.now() - t0) / 1000;
      bar.update(done, `${((done - first) / secs).toFixed(1)} img/s`);
    }
  } finally {
    await fh.close();
  }
  if (file !== target) {
    await rename(file, target).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EXDEV') throw e;
      await copyFile(file, target);
      await rm(file, { force: true });
    });
  }
  if (r.resumeDir) await rm(badFile, { force: true });
  bar.done(`${rows} images, ${((performance.now() - t0) / 1000).toFixed(1)} s${bad.size ? `, ${bad.size} undecodable` : ''}`);
  return { file: target, shape: engine.outputShape, engine: { name: engine.name, ...engine.detail }, undecodable: await lonelyReasons(r.datasetDir, bad) };
}

/**
 * The reasons a lone decode check gives for `bad` (dataset-relative files): libvips keeps one
 * error buffer per process, so a message from a decode among others in flight can carry other
 * calls' lines; the recorded reason must be reproducible (./decode-check.ts).
 */
async function lonelyReasons(dir: string, bad: ReadonlyMap<string, string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (bad.size === 0) return out;
  const { checkImage } = await import('./decode-check.js');
  for (const [file, loaderReason] of [...bad].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    out.set(file, (await checkImage(path.join(dir, file))) ?? loaderReason);
  }
  return out;
}

/** The set's rows in file order into `target`: each from an earlier entry or from the computed file (then removed). */
export async function assembleRows(
  target: string,
  hashes: readonly string[],
  known: ReadonlyMap<string, RowSource>,
  slot: ReadonlyMap<string, number>,
  computed: string | undefined,
  rowBytes: number,
): Promise<void> {
  const copier = new RowCopier(rowBytes);
  const out = await open(target, 'w');
  const row = new Uint8Array(rowBytes);
  try {
    for (const h of hashes) {
      const src = known.get(h) ?? { file: computed!, row: slot.get(h)! };
      await copier.read(src, row);
      await out.write(row);
    }
  } finally {
    await out.close();
    await copier.close();
  }
  if (computed) await rm(computed, { force: true });
}
