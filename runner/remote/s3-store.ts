// The S3 side of the remote cache: `s3://bucket/prefix` parsing, the client (standard AWS
// credential chain; AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL for S3-compatible stores, with
// path-style addressing there), and small object operations that turn SDK errors into one
// clear, redacted line (missing credentials, missing bucket, access denied, unreachable).
// Checksums are WHEN_REQUIRED: with the SDK's default a streamed PutObject is sent aws-chunked
// and stores such as s3rver keep the framing in the object (docs/architecture.md, "Remote stores"). The remote
// verifies every file by sha256 after a pull instead.
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import {
  S3Client,
  HeadBucketCommand,
  HeadObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { RemoteError, type ObjectInfo, type ObjectStore } from './remote-error.js';

export { RemoteError, MULTIPART_THRESHOLD, type RemoteErrorKind, type ObjectInfo } from './remote-error.js';

export interface S3Location {
  readonly bucket: string;
  /** No leading or trailing '/'; '' for the bucket root. */
  readonly prefix: string;
}

export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url.trim());
  if (!m) throw new RemoteError('config', `remote '${url}' is not an s3:// URL (expected s3://bucket/prefix)`);
  const bucket = m[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new RemoteError('config', `remote '${url}': '${bucket}' is not a valid bucket name`);
  }
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '').replace(/\/{2,}/g, '/');
  return { bucket, prefix };
}

export function formatS3Url(loc: S3Location): string {
  return `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
}

export interface S3StoreOptions {
  /** Default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL; unset means AWS itself. */
  readonly endpoint?: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1. */
  readonly region?: string;
  /** Default: the SDK's standard chain (env, profile/SSO, process, web identity, container, instance). */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly maxAttempts?: number;
  readonly env?: NodeJS.ProcessEnv;
}

const PART_SIZE = 16 * 2 ** 20;

export class S3Store implements ObjectStore {
  readonly url: string;
  private readonly secrets: string[] = [];
  private checked: Promise<void> | undefined;

  private constructor(
    readonly location: S3Location,
    readonly client: S3Client,
    readonly endpoint: string | undefined,
    secrets: readonly string[],
  ) {
    this.url = formatS3Url(location);
    this.secrets.push(...secrets.filter((s) => s.length >= 4));
  }

  /** Throws RemoteError('config') for a malformed URL or endpoint; touches no network. */
  static create(url: string, options: S3StoreOptions = {}): S3Store {
    const env = options.env ?? process.env;
    const location = parseS3Url(url);
    // The SDK warns on stderr that later versions need Node 22; the version is pinned.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const endpoint = options.endpoint ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
    if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
      throw new RemoteError('config', `S3 endpoint '${redactUrl(endpoint)}' is not an http(s) URL`);
    }
    const region = options.region ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? profileRegion;
    const config: S3ClientConfig = {
      region,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      followRegionRedirects: true,
      ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}), // else AWS_MAX_ATTEMPTS, default 3
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    };
    const secrets = [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, options.credentials?.secretAccessKey, options.credentials?.sessionToken].filter(
      (s): s is string => typeof s === 'string',
    );
    return new S3Store(location, new S3Client(config), endpoint, secrets);
  }

  /** The object key of a path under the prefix. */
  key(rel: string): string {
    return this.location.prefix ? `${this.location.prefix}/${rel}` : rel;
  }

  /**
   * Credentials resolve and the bucket exists, checked once. A 403 on the bucket is not fatal:
   * a key allowed only Get/PutObject under a prefix may not HeadBucket.
   */
  ready(): Promise<void> {
    this.checked ??= this.check();
    return this.checked;
  }

  private async check(): Promise<void> {
    try {
      const creds = await this.client.config.credentials();
      for (const s of [creds.secretAccessKey, creds.sessionToken]) if (s && s.length >= 4) this.secrets.push(s);
    } catch (e) {
      throw this.explain(e, 'resolving credentials');
    }
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.location.bucket }));
    } catch (e) {
      const err = this.explain(e, `checking bucket ${this.location.bucket}`);
      if (err.kind !== 'access-denied') throw err;
    }
  }

  async head(rel: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(rel) }), opts(signal));
      return { key: rel, size: r.ContentLength ?? 0 };
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw this.explain(e, `HEAD ${this.url}/${rel}`);
    }
  }

  async getStream(rel: string, signal?: AbortSignal): Promise<{ body: Readable; size: number } | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(rel) }), opts(signal));
      return { body: r.Body as Readable, size: r.ContentLength ?? 0 };
    } catch (e) {
      if (nameOf(e) === 'NoSuchKey' || (statusOf(e) === 404 && nameOf(e) !== 'NoSuchBucket')) return undefined;
      throw this.explain(e, `GET ${this.url}/${rel}`);
    }
  }

  async getBuffer(rel: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    const got = await this.getStream(rel, signal);
    if (!got) return undefined;
    const chunks: Buffer[] = [];
    try {
      for await (const c of got.body) chunks.push(c as Buffer);
    } catch (e) {
      throw this.explain(e, `GET ${this.url}/${rel}`);
    }
    return Buffer.concat(chunks);
  }

  async putBuffer(rel: string, body: Buffer | string, contentType = 'application/octet-stream', signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.location.bucket, Key: this.key(rel), Body: body, ContentType: contentType }), opts(signal));
    } catch (e) {
      throw this.explain(e, `PUT ${this.url}/${rel}`);
    }
  }

  /** A large body as a multipart upload (parts in parallel); `onBytes` gets running totals. */
  async putLarge(rel: string, body: Readable, onBytes?: (loaded: number) => void, signal?: AbortSignal): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.location.bucket, Key: this.key(rel), Body: body, ContentType: 'application/octet-stream' },
      partSize: PART_SIZE,
      queueSize: 4,
      leavePartsOnError: false,
    });
    if (onBytes) upload.on('httpUploadProgress', (p) => p.loaded !== undefined && onBytes(p.loaded));
    const onAbort = (): void => void upload.abort().catch(() => undefined);
    if (signal) opts(signal);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (e) {
      throw this.explain(e, `multipart PUT ${this.url}/${rel}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async delete(rel: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.key(rel) }));
    } catch (e) {
      throw this.explain(e, `DELETE ${this.url}/${rel}`);
    }
  }

  /** Every object under a relative prefix, with its size (keys relative to the store prefix). */
  async *list(relPrefix: string, signal?: AbortSignal): AsyncGenerator<ObjectInfo> {
    const base = this.location.prefix ? `${this.location.prefix}/` : '';
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: base + relPrefix, ...(token ? { ContinuationToken: token } : {}) }),
          opts(signal),
        );
      } catch (e) {
        throw this.explain(e, `LIST ${this.url}/${relPrefix}`);
      }
      for (const o of page.Contents ?? []) if (o.Key) yield { key: o.Key.slice(base.length), size: o.Size ?? 0 };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** One clear, secret-free line for an SDK or network error. */
  explain(e: unknown, doing: string): RemoteError {
    if (e instanceof RemoteError) return e;
    const name = nameOf(e);
    const status = statusOf(e);
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    const where = this.endpoint ? ` at ${redactUrl(this.endpoint)}` : '';
    let err: RemoteError;
    if (name === 'AbortError' || (e as Error | undefined)?.message === 'Request aborted') {
      err = new RemoteError('other', `${doing}: interrupted`);
    } else if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(String((e as Error)?.message))) {
      err = new RemoteError(
        'credentials',
        `no AWS credentials for ${this.url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, or run with an instance/container role`,
      );
    } else if (name === 'NoSuchBucket' || (status === 404 && /bucket/i.test(doing))) {
      err = new RemoteError('no-bucket', `bucket '${this.location.bucket}' does not exist${where} (remote ${this.url}); create it or fix the remote URL`);
    } else if (name === 'InvalidAccessKeyId') {
      err = new RemoteError(
        'access-denied',
        `access denied to ${this.url}${where}: the access key id is not known to the store (InvalidAccessKeyId) while ${doing}`,
      );
    } else if (name === 'SignatureDoesNotMatch') {
      err = new RemoteError(
        'access-denied',
        `access denied to ${this.url}${where}: the secret key does not match the access key id (SignatureDoesNotMatch) while ${doing}`,
      );
    } else if (status === 403 || name === 'AccessDenied' || name === 'Forbidden') {
      err = new RemoteError(
        'access-denied',
        `access denied to ${this.url}${where} while ${doing} (check the credentials' permissions on the bucket and prefix)`,
      );
    } else if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'ETIMEDOUT' ||
      code === 'ECONNRESET' ||
      name === 'TimeoutError'
    ) {
      err = new RemoteError('unreachable', `cannot reach the S3 store${where || ` for ${this.url}`} (${code ?? name}) while ${doing}`);
    } else {
      const message = (e as Error | undefined)?.message;
      const detail = message && message !== 'UnknownError' ? message : `HTTP ${status ?? '?'}`;
      err = new RemoteError('other', `${doing}: ${name && name !== 'Error' && name !== 'Unknown' ? `${name}: ` : ''}${detail}`);
    }
    return new RemoteError(err.kind, this.redact(err.message));
  }

  redact(text: string): string {
    return redact(text, this.secrets);
  }
}

/** Remove known secret values and anything that looks like a signature or key from a message. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out
    .replace(/(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s]+/gi, '$1***')
    .replace(/(aws_secret_access_key|secretAccessKey|sessionToken|aws_session_token)(["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, '$1$2***')
    .replace(/(Signature=)[0-9a-f]{16,}/gi, '$1***');
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@\s]*@/, '//***@');
}

function nonEmpty(s: string | undefined): string | undefined {
  return s && s.trim() ? s.trim() : undefined;
}

let regionFromProfile: Promise<string> | undefined;

/** The SDK's own region chain (the shared config of AWS_PROFILE), else us-east-1: the SDK throws
 * when no region is set, and a bucket elsewhere is reached through followRegionRedirects. */
function profileRegion(): Promise<string> {
  regionFromProfile ??= (async () => {
    const probe = new S3Client({});
    try {
      return await probe.config.region();
    } catch {
      return 'us-east-1';
    } finally {
      probe.destroy();
    }
  })();
  return regionFromProfile;
}

const widened = new WeakSet<AbortSignal>();

/** One signal is shared by hundreds of concurrent requests: lift Node's listener warning for it. */
function opts(signal?: AbortSignal): { abortSignal?: AbortSignal } {
  if (!signal) return {};
  if (!widened.has(signal)) {
    setMaxListeners(0, signal);
    widened.add(signal);
  }
  return { abortSignal: signal };
}

export function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export function nameOf(e: unknown): string | undefined {
  return (e as Error | undefined)?.name;
}
