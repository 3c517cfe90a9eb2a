// Training rows decoded straight from the images, for a fine-tune with nothing frozen (so no
// frozen-output cache): optionally each row a drawn augmentation variant. sharp comes in lazily.
import path from 'node:path';
import type { Fit, PreprocessMode } from './images.js';
import type { VariantPlan } from './augment.js';
import type { DataSource } from './train.js';

/** Training rows straight from images (nothing frozen: no feature cache). */
export function imageSource(
  dir: string,
  files: readonly string[],
  labels: Int32Array,
  pre: { readonly mode: PreprocessMode; readonly size: readonly [number, number]; readonly fit: Fit },
  plan?: (row: number) => VariantPlan,
): DataSource {
  const [h, w] = pre.size;
  const per = h * w * 3;
  return {
    count: files.length,
    shape: [h, w, 3],
    labels,
    async rows(indices) {
      const { decodeImage, preprocessInto } = await import('./images.js');
      const { decodeVariant } = await import('./augment.js');
      const out = new Float32Array(indices.length * per);
      const limit = 4;
      for (let s = 0; s < indices.length; s += limit) {
        await Promise.all(
          indices.slice(s, s + limit).map(async (r, j) => {
            const file = path.join(dir, files[r]!);
            const rgb = plan ? await decodeVariant(file, pre, plan(r)) : await decodeImage(file, { size: pre.size, fit: pre.fit });
            preprocessInto(rgb, out, (s + j) * per, pre.mode);
          }),
        );
      }
      return out;
    },
  };
}
