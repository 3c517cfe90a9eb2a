// A weights file from a URL, fetched with the downloader fetch-kaggle uses (retries, Range
// resume, stall timeout, size from Content-Length), md5-checked when the md5 is known, and, for
// HDF5, checked for its signature and end of file: only a complete file gets its final name, so
// a cut-short download is never marked complete in the cache.
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Logger, Progress, StageContext } from '../../runner/types.js';
import { download, type DownloadResult } from '../net/download.js';
import { openUrl } from '../net/open-url.js';
import { hdf5Problem } from './hdf5-check.js';

export const VGG16_WEIGHTS_URL = 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5';
export const VGG16_WEIGHTS_MD5 = '64373286793e3c8b2b4e3219cbf3544b';
export const VGG16_WEIGHTS_BYTES = 553_467_096;

export interface FetchWeightsOptions {
  readonly url: string;
  /** Final path; `<dest>.part` holds the bytes so far (keep it across runs to resume). */
  readonly dest: string;
  readonly md5?: string;
  readonly log: Logger;
  progress(label: string, total?: number): Progress;
  readonly signal: AbortSignal;
  /** Defaults: 60 s without a byte abandons an attempt; 5 failures in a row without progress give up. */
  readonly stallTimeoutMs?: number;
  readonly retries?: number;
  readonly backoffMs?: number;
}

export function isHdf5Name(name: string): boolean {
  return /\.(h5|hdf5)$/i.test(name);
}

export async function fetchWeights(o: FetchWeightsOptions): Promise<DownloadResult> {
  const label = path.basename(o.dest);
  return download({
    open: openUrl(o.url),
    dest: o.dest,
    label,
    algorithm: 'md5',
    ...(o.md5 ? { expected: o.md5 } : {}),
    ...(isHdf5Name(label) ? { verify: hdf5Problem } : {}),
    ...(o.url === VGG16_WEIGHTS_URL ? { sizeHint: VGG16_WEIGHTS_BYTES } : {}),
    progress: o.progress,
    log: o.log,
    signal: o.signal,
    stallTimeoutMs: o.stallTimeoutMs ?? 60_000,
    retries: o.retries ?? 5,
    ...(o.backoffMs !== undefined ? { backoffMs: o.backoffMs } : {}),
  });
}

/** What cachedWeightsFile needs of a stage's context. */
export type WeightsContext = Pick<StageContext<unknown>, 'derived' | 'workDir' | 'log' | 'progress' | 'signal'>;

/**
 * The weights at `url`, downloaded once into a derived cache entry keyed by url and md5. The
 * partial file lives in the stage's work dir, which outlives a failed or interrupted run: the
 * next run resumes it instead of starting the 528 MB again. Returns the file's path.
 */
export async function cachedWeightsFile(
  ctx: WeightsContext,
  url: string,
  md5: string | undefined,
  tuning: Pick<FetchWeightsOptions, 'stallTimeoutMs' | 'retries' | 'backoffMs'> = {},
): Promise<string> {
  const name = path.basename(new URL(url).pathname) || 'weights.h5';
  if (!md5) ctx.log.warn(`no md5 known for ${url}: the download is checked for size${isHdf5Name(name) ? ' and HDF5 completeness' : ''} only (set weights_md5)`);
  const dir = await ctx.derived('weights', { url, md5: md5 ?? null }, async (d) => {
    const dest = path.join(ctx.workDir, 'weights', name);
    await mkdir(path.dirname(dest), { recursive: true });
    const got = await fetchWeights({
      url,
      dest,
      ...(md5 ? { md5 } : {}),
      log: ctx.log,
      progress: (label, total) => ctx.progress(label, total),
      signal: ctx.signal,
      ...tuning,
    });
    await mkdir(d, { recursive: true });
    await rename(got.path, path.join(d, name));
    ctx.log.info(`downloaded ${url}: ${got.size} bytes, md5 ${got.digest}${got.resumes ? ` (resumed ${got.resumes} time(s))` : ''}`);
  });
  return path.join(dir, name);
}
