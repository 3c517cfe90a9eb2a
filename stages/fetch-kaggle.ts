// `uses: fetch-kaggle`: a Kaggle competition's or dataset's files, downloaded (resumable, retried,
// verified) into the stage's work dir and unzipped into the artifact. Credentials are found as
// the official CLI finds them and are never params, log lines, messages or part of the key.
import { mkdir, open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import type { KaggleTarget, RemoteFile } from './kaggle/client.js';

export interface FetchKaggleParams {
  competition?: string;
  dataset?: string;
  dataset_version?: number;
  files?: string[];
  unzip: boolean;
  sha256: Record<string, string>;
  endpoint?: string;
  retries: number;
  stall_timeout: number;
}

/** Above this many files, a competition is fetched as one all-files zip instead of file by file. */
const MANY_FILES = 50;

interface Planned {
  /** Path under the download folder (and, without unzip, in the artifact). */
  readonly name: string;
  readonly fileName?: string;
  readonly sizeHint?: number;
  /** The all-files zip: extracted at the artifact's root. */
  readonly whole: boolean;
}

async function isZip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf[0] === 0x50 && buf[1] === 0x4b && (buf[2] === 3 || buf[2] === 5) && (buf[3] === 4 || buf[3] === 6);
  } finally {
    await fh.close();
  }
}

function targetOf(p: FetchKaggleParams): KaggleTarget {
  if ((p.competition === undefined) === (p.dataset === undefined)) {
    throw new StageError('fetch-kaggle needs exactly one of `competition` and `dataset`');
  }
  if (p.competition !== undefined) {
    if (p.dataset_version !== undefined) throw new StageError('`dataset_version` applies to `dataset`, not `competition`');
    return { kind: 'competition', slug: p.competition };
  }
  const [owner, slug] = p.dataset!.split('/') as [string, string];
  return p.dataset_version === undefined ? { kind: 'dataset', owner, slug } : { kind: 'dataset', owner, slug, version: p.dataset_version };
}

export const fetchKaggleStage: Stage<FetchKaggleParams> = {
  name: 'fetch-kaggle',
  version: 1,
  description:
    "Downloads a Kaggle competition's or dataset's files (HTTP Range resume, retries, size and sha256 checks) and unzips them, " +
    "zips inside zips included. Credentials as Kaggle's CLI finds them: an API token (KAGGLE_API_TOKEN, or access_token in $KAGGLE_CONFIG_DIR, ~/.kaggle or ~/.config/kaggle), " +
    'else a legacy key (KAGGLE_USERNAME + KAGGLE_KEY, or kaggle.json in the same folders).',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      competition: {
        description:
          'Competition slug, as in https://www.kaggle.com/c/<slug> (e.g. dogs-vs-cats-redux-kernels-edition). Exactly one of competition and dataset.',
        type: 'string',
        pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$',
      },
      dataset: {
        description: 'Dataset as <owner>/<slug>, as in https://www.kaggle.com/datasets/<owner>/<slug>.',
        type: 'string',
        pattern: '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$',
      },
      dataset_version: {
        description: 'Dataset version number (default: the latest). Pin it for reproducible runs.',
        type: 'integer',
        minimum: 1,
      },
      files: {
        description: 'File names to download (e.g. [train.zip, test.zip]); default: all of them.',
        type: 'array',
        items: { type: 'string', minLength: 1 },
        minItems: 1,
        uniqueItems: true,
      },
      unzip: {
        description: 'Extract downloaded zips (and zips inside them) into the artifact; false keeps the archives as they are.',
        type: 'boolean',
        default: true,
      },
      sha256: {
        description: 'Expected sha256 (hex) per downloaded file name; a mismatch fails the stage. The run log prints the hashes to pin.',
        type: 'object',
        additionalProperties: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
        default: {},
      },
      endpoint: {
        description:
          "Kaggle API host (a mirror, or a test server), read as Kaggle's own tools read KAGGLE_API_ENDPOINT: `http://localhost:8080` gets /api/v1 added, a URL ending in /api/v1 is used as is. " +
          'Default: $KAGGLE_API_ENDPOINT, else https://api.kaggle.com/v1. Not part of the cache key.',
        type: 'string',
        pattern: '^https?://',
      },
      retries: {
        description: 'Failed attempts in a row (connection errors, stalls, HTTP 5xx/429) before giving up. Not part of the cache key.',
        type: 'integer',
        minimum: 0,
        maximum: 100,
        default: 5,
      },
      stall_timeout: {
        description: 'Seconds without a byte from the server before an attempt is abandoned and retried. Not part of the cache key.',
        type: 'number',
        exclusiveMinimum: 0,
        default: 60,
      },
    },
  },
  inputs: {},
  output: 'files',
  keyExclude: ['endpoint', 'retries', 'stall_timeout'],
  // Passed on to a `runs_on` host when set here; optional, since the machine that runs it may
  // hold them in a file instead (~/.kaggle/access_token, kaggle.json), which the stage reads.
  secrets: [{ anyOf: [['KAGGLE_API_TOKEN'], ['KAGGLE_USERNAME', 'KAGGLE_KEY']], optional: true }],
  async run(ctx) {
    const p = ctx.params;
    const target = targetOf(p);
    const { findCredentials } = await import('./kaggle/credentials.js');
    const { KaggleClient, apiBase, describeTarget, TransientError } = await import('./kaggle/client.js');
    const { download } = await import('./net/download.js');
    const { extractZip, listZip, nestedPlacement, unsafeEntryName } = await import('./kaggle/unzip.js');
    const { linkOrCopy } = await import('./images.js');

    // Credentials before any network call: a missing file is a clean error, not a 401.
    const credentials = await findCredentials();
    for (const w of credentials.warnings) ctx.log.warn(w);
    const configured = p.endpoint ?? (process.env.KAGGLE_API_ENDPOINT || undefined);
    if (configured !== undefined && (!URL.canParse(configured) || !/^https?:$/.test(new URL(configured).protocol))) {
      throw new StageError(
        `invalid Kaggle API endpoint '${configured}'${p.endpoint === undefined ? ' (from KAGGLE_API_ENDPOINT)' : ''}: use an http(s) URL such as https://www.kaggle.com or http://localhost:8080`,
      );
    }
    const endpoint = apiBase(configured);
    const client = new KaggleClient(endpoint, credentials);
    const where = describeTarget(target);
    ctx.log.info(`${where} with ${credentials.describe()}, API ${endpoint}`);

    const retrying = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn();
        } catch (e) {
          if (ctx.signal.aborted) throw new StageError(`interrupted during ${what}`);
          if (!(e instanceof TransientError) || attempt >= p.retries) {
            if (e instanceof TransientError) throw new StageError(`${what} failed: ${e.message}`);
            throw e;
          }
          ctx.log.warn(`${what}: ${e.message}; retrying`);
          await sleep(Math.min(30_000, 1000 * 2 ** attempt), undefined, { signal: ctx.signal }).catch(() => undefined);
        }
      }
    };

    // What to download.
    const plan: Planned[] = [];
    if (target.kind === 'competition') {
      const timeout = (): AbortSignal => AbortSignal.any([ctx.signal, AbortSignal.timeout(p.stall_timeout * 1000)]);
      const listed: RemoteFile[] = await retrying('ListDataFiles', () => client.listCompetitionFiles(target.slug, timeout()));
      const byName = new Map(listed.map((f) => [f.name, f]));
      if (p.files) {
        for (const name of p.files) {
          const f = byName.get(name);
          if (!f) {
            const names = listed.map((x) => x.name);
            throw new StageError(
              `no file '${name}' in ${where}`,
              names.length ? `it has: ${names.slice(0, 20).join(', ')}${names.length > 20 ? `, ... (${names.length})` : ''}` : 'it lists no files',
            );
          }
          plan.push({ name, fileName: name, ...(f.size !== undefined ? { sizeHint: f.size } : {}), whole: false });
        }
      } else if (listed.length > MANY_FILES || listed.length === 0) {
        plan.push({ name: `${target.slug}.zip`, whole: true });
      } else {
        for (const f of listed) plan.push({ name: f.name, fileName: f.name, ...(f.size !== undefined ? { sizeHint: f.size } : {}), whole: false });
      }
    } else if (p.files) {
      for (const name of p.files) plan.push({ name, fileName: name, whole: false });
    } else {
      plan.push({ name: `${target.slug}.zip`, whole: true });
    }
    for (const item of plan) {
      const why = unsafeEntryName(item.name);
      if (why) throw new StageError(`refusing the file name '${item.name}' from ${where}: ${why}`);
    }
    for (const name of Object.keys(p.sha256)) {
      if (!plan.some((item) => item.name === name)) {
        throw new StageError(`sha256 is given for '${name}', which is not downloaded`, `downloads: ${plan.map((i) => i.name).join(', ')}`);
      }
    }

    // Download into the work dir (kept across interrupted attempts: a re-run resumes).
    const downloads = path.join(ctx.workDir, 'downloads');
    const got: { name: string; size: number; sha256: string; requests: number; resumes: number }[] = [];
    for (const item of plan) {
      const dest = path.join(downloads, item.name);
      await mkdir(path.dirname(dest), { recursive: true });
      const expected = p.sha256[item.name]?.toLowerCase();
      const res = await download({
        open: (headers, signal) => client.openDownload({ target, ...(item.fileName !== undefined ? { fileName: item.fileName } : {}) }, headers, signal),
        dest,
        label: item.name,
        ...(expected ? { expected } : {}),
        ...(item.sizeHint !== undefined ? { sizeHint: item.sizeHint } : {}),
        progress: (label, total) => ctx.progress(label, total),
        log: ctx.log,
        signal: ctx.signal,
        stallTimeoutMs: p.stall_timeout * 1000,
        retries: p.retries,
      });
      ctx.log.info(`${item.name}: ${res.size} bytes, sha256 ${res.digest}${res.resumes ? ` (resumed ${res.resumes} time(s))` : ''}`);
      got.push({ name: item.name, size: res.size, sha256: res.digest, requests: res.requests, resumes: res.resumes });
    }

    // Place into the artifact.
    let extracted = 0;
    let skipped = 0;
    for (const item of plan) {
      const file = path.join(downloads, item.name);
      if (p.unzip && (await isZip(file))) {
        const entries = await listZip(file, item.name);
        const total = entries.reduce((s, e) => s + e.size, 0);
        const bar = ctx.progress(`unzip ${item.name}`, total);
        const dir = item.whole ? ctx.outDir : path.join(ctx.outDir, path.dirname(item.name), nestedPlacement(item.name, entries));
        const res = await extractZip(file, dir, { label: item.name, nested: true, root: ctx.outDir, signal: ctx.signal, onBytes: (n) => bar.tick(n) });
        bar.done(`${res.files.length} files`);
        extracted += res.files.length;
        skipped += res.skipped.length;
      } else {
        await linkOrCopy(file, path.join(ctx.outDir, item.name));
        extracted++;
      }
    }
    if (skipped) ctx.log.info(`left out ${skipped} macOS metadata entries (__MACOSX/, .DS_Store)`);
    const bytes = got.reduce((s, g) => s + g.size, 0);
    return {
      meta: {
        source:
          target.kind === 'competition'
            ? { competition: target.slug }
            : { dataset: `${target.owner}/${target.slug}`, ...(target.version ? { version: target.version } : {}) },
        downloads: got.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
        files: extracted,
        requests: got.reduce((s, g) => s + g.requests, 0),
        resumes: got.reduce((s, g) => s + g.resumes, 0),
      },
      summary: `${got.length} download(s), ${(bytes / 1e6).toFixed(1)} MB; ${extracted} files${p.unzip ? ' after unzipping' : ''}`,
    };
  },
};
