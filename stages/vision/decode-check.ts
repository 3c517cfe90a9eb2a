// Is this file an image the loader can use? A real decode, not `metadata()` (which succeeds on a
// truncated JPEG), through the same sharp settings as the loader (stages/vision/images.ts:
// one libvips thread per call, sharp's default `failOn`), with `limitInputPixels` against
// decompression bombs. Large images are decoded at most 224 px wide: JPEG shrink-on-load skips
// most of the IDCT work while every entropy-coded byte is still read, so truncation and
// corrupt data are still found; small ones are decoded as they are (never upscaled).
import { stat } from 'node:fs/promises';
import { loadSharp } from './images.js';

/** Decoded no larger than this (the loader's usual input size): no work is spent upscaling small files. */
const CHECK_SIZE = 224;

/** Same bound as the loader's default. */
export const MAX_INPUT_PIXELS = 2 ** 28;

/** undefined when the file decodes; else the decoder's reason ("VipsJpeg: premature end of JPEG image"). */
export async function checkImage(file: string, limitInputPixels = MAX_INPUT_PIXELS): Promise<string | undefined> {
  const sharp = await loadSharp();
  try {
    const { info } = await sharp(file, { limitInputPixels })
      .resize(CHECK_SIZE, CHECK_SIZE, { fit: 'inside', withoutEnlargement: true })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width < 1 || info.height < 1) return `decoded to ${info.width}x${info.height}`;
    return undefined;
  } catch (e) {
    // "unsupported image format" is what sharp says of an empty file: say what it is.
    if ((await stat(file).catch(() => undefined))?.size === 0) return 'empty file';
    return reasonOf(e instanceof Error ? e.message : String(e));
  }
}

/**
 * The first informative line of a sharp error. libvips keeps one error buffer per process, so
 * with several decodes in flight a message can carry other calls' lines or lose its own detail
 * ("Input file has corrupt header:"): callers that record reasons (split.json must be
 * reproducible) re-check failed files one at a time, with nothing else decoding.
 */
export function reasonOf(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const first = lines[0] ?? '';
  if (first.endsWith(':') && lines[1]) return `${first} ${lines[1]}`;
  return first || 'cannot decode';
}
