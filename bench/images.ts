// What bringing 25,000 photos into the cache costs: the `images` stage copies them (a reflink
// where the file system has them), where it used to hard-link them. Both are measured on the
// same files, in the same folder, in the same run: the stage as it is, and the old hard links.
import { constants, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { imagesStage, linkOrCopy, type ImagesParams } from '../stages/images.js';
import { mapLimit } from '../runner/hash-files.js';
import { makeTestContext } from '../test/helpers/stage-context.js';

const PHOTOS = 25_000;
/** About the mean size of a photo of Kaggle's dogs-vs-cats train set (25,000 files, ~545 MB). */
const BYTES = 22_000;

export async function benchImages(): Promise<Record<string, unknown>> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-images-'));
  try {
    const photos = path.join(root, 'photos');
    const files: string[] = [];
    for (const cls of ['cat', 'dog']) await mkdir(path.join(photos, 'train', cls), { recursive: true });
    const body = Buffer.alloc(BYTES);
    for (let i = 0; i < PHOTOS; i++) files.push(`train/${i % 2 ? 'dog' : 'cat'}/${i}.jpg`);
    await mapLimit(files, 16, async (rel, i) => {
      body.writeUInt32LE(i, 0); // distinct contents
      await writeFile(path.join(photos, rel), Buffer.from(body));
    });

    const ctx = await makeTestContext<ImagesParams>({ path: 'photos', follow_symlinks: false }, { pipelineDir: root });
    const t0 = performance.now();
    await imagesStage.run(ctx);
    const copyS = (performance.now() - t0) / 1000;
    await ctx.cleanup();

    // The old way: hard links into a fresh folder.
    const out = path.join(root, 'linked');
    const t1 = performance.now();
    for (const d of ['train/cat', 'train/dog']) await mkdir(path.join(out, d), { recursive: true });
    await mapLimit(files, 16, (rel) => linkOrCopy(path.join(photos, rel), path.join(out, rel)));
    const linkS = (performance.now() - t1) / 1000;

    let reflink = true;
    await copyFile(path.join(photos, files[0]!), path.join(root, 'reflink-probe'), constants.COPYFILE_FICLONE_FORCE).catch(() => (reflink = false));
    const round = (x: number) => Number(x.toFixed(3));
    return {
      photos: PHOTOS,
      bytes_each: BYTES,
      file_system_reflinks: reflink,
      images_copy_s: round(copyS),
      images_hardlink_s: round(linkS),
      copy_mb_per_s: round((PHOTOS * BYTES) / 1e6 / copyS),
      extra_disk_mb: reflink ? 0 : round((PHOTOS * BYTES) / 1e6),
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
