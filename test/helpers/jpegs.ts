// Small generated JPEGs named like the Kaggle dogs-vs-cats set (train/cat.0.jpg, train/dog.0.jpg,
// test/1.jpg), for stage tests that must not touch the network.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

export interface JpegOptions {
  readonly width?: number;
  readonly height?: number;
  readonly quality?: number;
}

/** A small JPEG whose pixels depend on `seed` (a colour plus seeded noise). */
export async function jpeg(seed: number, o: JpegOptions = {}): Promise<Buffer> {
  const width = o.width ?? 24;
  const height = o.height ?? 18;
  const px = Buffer.alloc(width * height * 3);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < px.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    px[i] = ((seed * 37 + (i % 3) * 80) & 0xff) ^ (s & 0x3f);
  }
  return sharp(px, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: o.quality ?? 80 })
    .toBuffer();
}

/** The first half of a JPEG: sharp reports "premature end of JPEG image". */
export function truncatedJpeg(buf: Buffer): Buffer {
  return buf.subarray(0, Math.floor(buf.length / 2));
}

export interface KaggleSetOptions extends JpegOptions {
  readonly cats?: number;
  readonly dogs?: number;
  /** Unlabelled images test/1.jpg ... */
  readonly test?: number;
  /** Top folder names (default train / test); '' puts the files at the root. */
  readonly trainDir?: string;
  readonly testDir?: string;
}

/** In-memory files of a Kaggle-like set: path -> bytes. */
export async function kaggleFiles(o: KaggleSetOptions = {}): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const trainDir = o.trainDir ?? 'train';
  const testDir = o.testDir ?? 'test';
  const join = (dir: string, name: string): string => (dir ? `${dir}/${name}` : name);
  let seed = 1;
  for (let i = 0; i < (o.cats ?? 3); i++) out.set(join(trainDir, `cat.${i}.jpg`), await jpeg(seed++, o));
  for (let i = 0; i < (o.dogs ?? 3); i++) out.set(join(trainDir, `dog.${i}.jpg`), await jpeg(seed++, o));
  for (let i = 1; i <= (o.test ?? 0); i++) out.set(join(testDir, `${i}.jpg`), await jpeg(seed++, o));
  return out;
}

/** Write files (path -> bytes) under dir; returns the relative paths. */
export async function writeFiles(dir: string, files: ReadonlyMap<string, Buffer>): Promise<string[]> {
  for (const [rel, buf] of files) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), buf);
  }
  return [...files.keys()].sort();
}

/** Write a Kaggle-like set under dir. */
export async function writeKaggleSet(dir: string, o: KaggleSetOptions = {}): Promise<string[]> {
  return writeFiles(dir, await kaggleFiles(o));
}
