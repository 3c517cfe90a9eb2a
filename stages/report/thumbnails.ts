// Small JPEG thumbnails embedded as data: URIs, so the report is one file that opens anywhere.
// sharp is imported lazily: stage modules stay light for `pipe validate`.
import path from 'node:path';
import { mapLimit } from '../../runner/stage-api.js';

export interface Thumbnail {
  readonly dataUri: string;
  readonly width: number;
  readonly height: number;
}

export type ThumbnailResult = { readonly ok: true; readonly thumb: Thumbnail } | { readonly ok: false; readonly reason: string };

export interface ThumbnailOptions {
  /** Longest side in pixels. */
  readonly size: number;
  readonly quality?: number;
  /** Images decoded at once: sharp runs each on a libuv thread; 3 keeps 2 cores busy. */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onDone?: () => void;
}

/**
 * The absolute path of `file` (as written in analysis.json, relative to the dataset artifact),
 * or undefined when it would leave `root`: a file name must not make the report read
 * /etc/passwd.
 */
export function resolveInside(root: string, file: string): string | undefined {
  const abs = path.resolve(root, file);
  const rel = path.relative(root, abs);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return abs;
}

/**
 * Thumbnails for absolute image paths (deduplicated by the caller or not: equal paths are made
 * once). A missing or undecodable image is a result with a reason, not a failure: one bad
 * picture should not cost the whole report.
 */
export async function makeThumbnails(files: readonly string[], options: ThumbnailOptions): Promise<Map<string, ThumbnailResult>> {
  const { default: sharp } = await import('sharp');
  const unique = [...new Set(files)];
  const quality = options.quality ?? 70;
  const out = new Map<string, ThumbnailResult>();
  await mapLimit(unique, options.concurrency ?? 3, async (file) => {
    options.signal?.throwIfAborted();
    let result: ThumbnailResult;
    try {
      const { data, info } = await sharp(file, { limitInputPixels: 100_000_000 })
        .rotate() // honour EXIF orientation, as a photo viewer would
        .resize(options.size, options.size, { fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .jpeg({ quality })
        .toBuffer({ resolveWithObject: true });
      result = { ok: true, thumb: { dataUri: `data:image/jpeg;base64,${data.toString('base64')}`, width: info.width, height: info.height } };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const message = (error as Error).message;
      result = { ok: false, reason: code === 'ENOENT' || /missing|does not exist/i.test(message) ? 'image not found' : `cannot decode: ${message}` };
    }
    out.set(file, result);
    options.onDone?.();
  });
  return out;
}
