// A small client for the current Kaggle API (kaggle 1.8): `POST {endpoint}/{service}/{method}`
// with a JSON body, authorized by an API token (Bearer) or a legacy key (HTTP basic auth).
// Downloads answer with a redirect to a signed storage URL; Node's fetch follows it as a GET and
// drops the Authorization header on the cross-origin hop, as the official client does (tests
// check it against a storage server on another origin, for both kinds of credentials).
import { StageError } from '../../runner/types.js';
import type { KaggleCredentials } from './credentials.js';
import { TransientError } from '../net/download.js';

export const DEFAULT_ENDPOINT = 'https://api.kaggle.com/v1';
/** The path Kaggle's own tools add to a KAGGLE_API_ENDPOINT host. */
export const API_PATH = '/api/v1';

/**
 * The API base for a configured endpoint, read as Kaggle's own tools read KAGGLE_API_ENDPOINT:
 * a host (`http://localhost:8080`) gets `/api/v1` added; a value already ending in `/api/v1` is
 * used as it is. Undefined (nothing configured) is the public API. The result has no trailing `/`.
 */
export function apiBase(configured: string | undefined): string {
  if (configured === undefined) return DEFAULT_ENDPOINT;
  const trimmed = configured.replace(/\/+$/, '');
  return trimmed.endsWith(API_PATH) ? trimmed : `${trimmed}${API_PATH}`;
}

export { TransientError };

export type KaggleTarget =
  | { readonly kind: 'competition'; readonly slug: string }
  | { readonly kind: 'dataset'; readonly owner: string; readonly slug: string; readonly version?: number };

export function describeTarget(t: KaggleTarget): string {
  return t.kind === 'competition' ? `competition '${t.slug}'` : `dataset '${t.owner}/${t.slug}'`;
}

export interface RemoteFile {
  readonly name: string;
  /** As listed by Kaggle; may be the uncompressed size, so only a progress hint. */
  readonly size?: number;
}

/** One download call: which method, with which body. `fileName` undefined = everything (one zip). */
export interface DownloadRequest {
  readonly target: KaggleTarget;
  readonly fileName?: string;
}

type FetchFn = typeof fetch;

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export class KaggleClient {
  readonly endpoint: string;

  constructor(
    endpoint: string,
    private readonly credentials: KaggleCredentials,
    private readonly fetchFn: FetchFn = fetch,
  ) {
    this.endpoint = endpoint.replace(/\/+$/, '');
  }

  /** Every file of a competition (follows pagination). */
  async listCompetitionFiles(slug: string, signal: AbortSignal): Promise<RemoteFile[]> {
    const target: KaggleTarget = { kind: 'competition', slug };
    const files: RemoteFile[] = [];
    let pageToken = '';
    for (let page = 0; page < 10_000; page++) {
      const res = await this.call(
        'competitions.CompetitionApiService',
        'ListDataFiles',
        { competitionName: slug, pageSize: 200, pageToken },
        { target },
        {},
        signal,
      );
      let body: { files?: { name?: unknown; totalBytes?: unknown }[]; nextPageToken?: unknown };
      try {
        body = (await res.json()) as typeof body;
      } catch (e) {
        if (signal.aborted) throw timedOut(signal) ?? e;
        throw new TransientError(`ListDataFiles: the answer is not JSON`);
      }
      for (const f of body.files ?? []) {
        if (typeof f.name !== 'string') continue;
        const size = Number(f.totalBytes);
        files.push(Number.isFinite(size) && size >= 0 ? { name: f.name, size } : { name: f.name });
      }
      if (typeof body.nextPageToken !== 'string' || body.nextPageToken === '') return files;
      pageToken = body.nextPageToken;
    }
    throw new StageError(`ListDataFiles for ${describeTarget(target)} did not end`);
  }

  /** Start a download (following the redirect to storage); the caller reads the body. */
  async openDownload(req: DownloadRequest, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const { target, fileName } = req;
    if (target.kind === 'competition') {
      return fileName === undefined
        ? this.call('competitions.CompetitionApiService', 'DownloadDataFiles', { competitionName: target.slug }, req, headers, signal)
        : this.call('competitions.CompetitionApiService', 'DownloadDataFile', { competitionName: target.slug, fileName }, req, headers, signal);
    }
    const body: Record<string, unknown> = { ownerSlug: target.owner, datasetSlug: target.slug };
    if (fileName !== undefined) body.fileName = fileName;
    if (target.version !== undefined) body.datasetVersionNumber = target.version;
    return this.call('datasets.DatasetApiService', 'DownloadDataset', body, req, headers, signal);
  }

  private async call(
    service: string,
    method: string,
    body: Record<string, unknown>,
    what: { target: KaggleTarget; fileName?: string },
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    const url = `${this.endpoint}/${service}/${method}`;
    let res: Response;
    try {
      res = await this.fetchFn(url, {
        method: 'POST',
        headers: {
          ...headers,
          Authorization: this.credentials.authorization(),
          'Content-Type': 'application/json',
          Accept: 'application/json, application/octet-stream;q=0.9, */*;q=0.8',
          'User-Agent': 'pipe-ml (fetch-kaggle)',
        },
        body: JSON.stringify(body),
        redirect: 'follow',
        signal,
      });
    } catch (e) {
      if (signal.aborted) throw timedOut(signal) ?? e;
      throw new TransientError(`${method}: ${this.networkReason(e)}`);
    }
    if (res.ok || res.status === 206 || res.status === 416) return res;
    throw await this.failure(res, method, what);
  }

  private networkReason(e: unknown): string {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const detail = err.cause?.code ?? err.cause?.message ?? err.message;
    return this.credentials.redact(`cannot reach ${new URL(this.endpoint).host} (${detail})`);
  }

  /** The error for a failed response: StageError when retrying cannot help, else TransientError. */
  private async failure(res: Response, method: string, what: { target: KaggleTarget; fileName?: string }): Promise<Error> {
    const reply = await serverMessage(res);
    const message = reply.text;
    const fromStorage = res.redirected && new URL(res.url).origin !== new URL(this.endpoint).origin;
    const detail = this.credentials.redact(message ? `: ${message}` : '');
    if (fromStorage) {
      // A signed URL can expire between the redirect and a resume: asking Kaggle again gets a new one.
      return new TransientError(`storage server ${new URL(res.url).host} answered HTTP ${res.status}${detail}`);
    }
    if (RETRYABLE_STATUS.has(res.status)) return new TransientError(`${method}: HTTP ${res.status}${detail}`);
    const { target, fileName } = what;
    const where = describeTarget(target);
    switch (res.status) {
      case 401:
        return unauthorized(this.credentials);
      case 403:
        if (target.kind === 'competition') {
          return new StageError(`accept the competition rules at https://www.kaggle.com/c/${target.slug}/rules first (HTTP 403 for ${where})`);
        }
        return new StageError(
          `no access to ${where} (HTTP 403${detail})`,
          `check that the dataset is public or shared with ${this.credentials.username !== undefined ? `'${this.credentials.username}'` : 'the account the token belongs to'}`,
        );
      case 404:
        if (isUnknownMethod(reply, method)) {
          return new StageError(
            `the Kaggle API at ${this.endpoint} has no method ${method} (HTTP 404 for ${new URL(res.url || this.endpoint).pathname})`,
            'check `endpoint` or KAGGLE_API_ENDPOINT: a host such as http://localhost:8080 (pipe adds /api/v1), or a URL ending in /api/v1',
          );
        }
        if (fileName !== undefined) return new StageError(`no file '${fileName}' in ${where} (or no such ${target.kind}): HTTP 404${detail}`);
        return new StageError(
          `unknown ${where}: HTTP 404${detail}`,
          target.kind === 'competition'
            ? 'the slug is the last part of https://www.kaggle.com/c/<slug>'
            : 'use <owner>/<slug> as in https://www.kaggle.com/datasets/<owner>/<slug>',
        );
      default:
        return new StageError(`Kaggle ${method} for ${where} failed: HTTP ${res.status}${detail}`);
    }
  }
}

/** HTTP 401: a token has expired or was revoked; a legacy key is wrong. Either way, say where it came from. */
function unauthorized(c: KaggleCredentials): StageError {
  const renew = 'create a new API token at https://www.kaggle.com/settings (API: "Generate New Token")';
  if (c.kind === 'token') {
    return new StageError(
      `invalid Kaggle credentials: the API token from ${c.source} was refused (HTTP 401): it has expired or was revoked`,
      `${renew} and put it where this one came from`,
    );
  }
  return new StageError(
    `invalid Kaggle credentials (user '${c.username}' from ${c.source}): HTTP 401`,
    `${renew} and set KAGGLE_API_TOKEN or save it as ~/.kaggle/access_token (it is used before the legacy key)`,
  );
}

/** A TransientError when `signal` fired because of AbortSignal.timeout (retry), else undefined (a real abort). */
function timedOut(signal: AbortSignal): TransientError | undefined {
  const reason = signal.reason as { name?: string } | undefined;
  return reason?.name === 'TimeoutError' ? new TransientError('no answer in time') : undefined;
}

interface ServerReply {
  /** The `message` of a JSON error body, else a short text ('' for HTML). */
  readonly text: string;
  /** Whether the body was the API's own JSON error (`{"code":404,"message":"..."}`). */
  readonly fromApi: boolean;
}

/** The `message` of a JSON error body (Kaggle's `{"code":403,"message":"..."}`), else a short text. */
async function serverMessage(res: Response): Promise<ServerReply> {
  let text = '';
  try {
    text = (await res.text()).slice(0, 2000);
  } catch {
    return { text: '', fromApi: false };
  }
  try {
    const json = JSON.parse(text) as { message?: unknown };
    if (typeof json.message === 'string') return { text: json.message.slice(0, 300), fromApi: true };
  } catch {
    // not JSON
  }
  const type = res.headers.get('content-type') ?? '';
  return { text: type.includes('html') ? '' : text.replace(/\s+/g, ' ').trim().slice(0, 200), fromApi: false };
}

/**
 * A 404 that is about the URL, not the competition or dataset: a web server's page (not the
 * API's JSON error), or an API error that names the method it does not know. Blaming the slug
 * for these sends the user hunting for a typo that is not there.
 */
function isUnknownMethod(reply: ServerReply, method: string): boolean {
  return !reply.fromApi || reply.text.includes(method);
}
