// The `open` of a download from a plain URL (a GET, redirects followed), with answers sorted the
// way the downloader needs: what retrying may fix is a TransientError, what it cannot is a
// StageError that names the URL and the status, in one line.
import { StageError } from '../../runner/types.js';
import { TransientError } from './download.js';

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** The host and path of a URL, without a query (signed URLs carry credentials there). */
export function safeUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

export function openUrl(url: string, fetchFn: typeof fetch = fetch): (headers: Record<string, string>, signal: AbortSignal) => Promise<Response> {
  return async (headers, signal) => {
    let res: Response;
    try {
      res = await fetchFn(url, { headers: { 'User-Agent': 'pipe-ml', ...headers }, redirect: 'follow', signal });
    } catch (e) {
      if (signal.aborted) throw e;
      const err = e as Error & { cause?: { code?: string; message?: string } };
      throw new TransientError(`cannot reach ${new URL(url).host} (${err.cause?.code ?? err.cause?.message ?? err.message})`);
    }
    if (res.ok || res.status === 206 || res.status === 416) return res;
    await res.body?.cancel();
    const what = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} from ${safeUrl(res.url || url)}`;
    if (RETRYABLE_STATUS.has(res.status)) throw new TransientError(what);
    throw new StageError(`cannot download ${safeUrl(url)}: ${what}`);
  };
}
