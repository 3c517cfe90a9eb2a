// The remote cache against a local S3-compatible server (s3rver in its own process): push and
// pull of a 25,000-file split-like artifact (23,000 train and 2,000 valid images, split.json)
// plus a 500 MB model directory (model.json and 128 MiB weight shards, as stages/vision/model-io
// writes them); a second push that finds everything present (target <= 2 s); a push of a new
// artifact whose files the remote already holds (presence found by listing shards, nothing
// uploaded); the partial pull an evaluation makes (split.json + valid/: 2,000 of 25,000 files)
// into an empty cache, then the completion of that sparse entry when a stage needs all of it.
// Sizes: PIPE_BENCH_REMOTE_FILES (25000), PIPE_BENCH_REMOTE_VALID (2000),
// PIPE_BENCH_REMOTE_FILE_KB (2), PIPE_BENCH_REMOTE_MB (500; e.g. 200 for a quicker run).
// s3rver is a JavaScript server writing every object and its metadata to disk: the figures are
// a floor for real S3/MinIO, and shared with the client's 2 cores.
import { randomBytes, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { cp, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cache, type MetaDraft } from '../runner/cache.js';
import type { Progress } from '../runner/types.js';
import { S3Store, MULTIPART_THRESHOLD } from '../runner/remote/s3-store.js';
import { RemoteCache } from '../runner/remote/remote-cache.js';
import { startS3ServerProcess, S3_ACCESS_KEY_ID } from '../test/servers/s3.js';

const num = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

function draft(stage: string, seed: string): MetaDraft {
  return {
    kind: stage === 'model' ? 'model' : 'dataset',
    key: createHash('sha256').update(`${stage}:${seed}`).digest('hex'),
    stage,
    uses: stage,
    version: 1,
    params: {},
    inputs: {},
    createdAt: new Date().toISOString(),
    durationMs: 0,
    runId: 'bench',
    host: os.hostname(),
  };
}

async function writeBig(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  const chunk = 4 * 2 ** 20;
  for (let left = bytes; left > 0; left -= chunk) {
    if (!out.write(randomBytes(Math.min(chunk, left)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/** Weight shard size of stages/vision/model-io.ts. */
const SHARD_BYTES = 128 * 1024 * 1024;

export async function benchRemote(): Promise<object> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const files = Math.round(num('PIPE_BENCH_REMOTE_FILES', 25_000));
  const validFiles = Math.min(files - 1, Math.round(num('PIPE_BENCH_REMOTE_VALID', 2_000)));
  const fileBytes = Math.round(num('PIPE_BENCH_REMOTE_FILE_KB', 2) * 1024);
  const bigBytes = Math.round(num('PIPE_BENCH_REMOTE_MB', 500) * 1e6);
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-remote-'));
  const server = await startS3ServerProcess();
  try {
    const a = new Cache(path.join(root, 'a'));
    const b = new Cache(path.join(root, 'b'));
    const c = new Cache(path.join(root, 'c'));
    await a.init();

    let t = Date.now();
    const splitTmp = await a.makeTemp('split');
    for (const set of ['train', 'valid']) for (const cls of ['cats', 'dogs']) await mkdir(path.join(splitTmp, 'data', set, cls), { recursive: true });
    const valid: string[] = [];
    for (let i = 0; i < files; i++) {
      const rel = `${i < validFiles ? 'valid' : 'train'}/${i % 2 ? 'dogs' : 'cats'}/${i}.jpg`;
      if (i < validFiles) valid.push(rel);
      await writeFile(path.join(splitTmp, 'data', rel), randomBytes(fileBytes));
    }
    await writeFile(path.join(splitTmp, 'data', 'split.json'), JSON.stringify({ version: 1, classes: ['cats', 'dogs'], files: { valid } }));
    const split = await a.commit(splitTmp, draft('split', 'one'));
    const modelTmp = await a.makeTemp('model');
    const shards = Math.max(1, Math.ceil(bigBytes / SHARD_BYTES));
    for (let i = 0; i < shards; i++) {
      await writeBig(path.join(modelTmp, 'data', `weights-shard${i + 1}of${shards}.bin`), Math.min(SHARD_BYTES, bigBytes - i * SHARD_BYTES));
    }
    await writeFile(path.join(modelTmp, 'data', 'model.json'), '{"format":"layers-model"}');
    for (const f of ['classes.json', 'preprocess.json', 'finetune.json', 'history.json']) await writeFile(path.join(modelTmp, 'data', f), `{"${f}":1}`);
    const model = await a.commit(modelTmp, draft('model', 'one'));
    const setupS = (Date.now() - t) / 1000;

    const remote = new RemoteCache(
      S3Store.create(`s3://${server.bucket}/bench`, {
        endpoint: server.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: 'bench' },
      }),
    );
    const totalBytes = files * fileBytes + bigBytes;
    const mb = (bytes: number, s: number): number => round(bytes / 1e6 / s, 1);

    t = Date.now();
    const pushSplit = await remote.push(a, [split.key]);
    const pushSplitS = (Date.now() - t) / 1000;
    t = Date.now();
    const pushModel = await remote.push(a, [model.key]);
    const pushModelS = (Date.now() - t) / 1000;

    t = Date.now();
    const again = await remote.push(a, [split.key, model.key]);
    const againS = (Date.now() - t) / 1000;

    // Same images under another split key (e.g. a re-split with other params keeps the files).
    const resplitTmp = await a.makeTemp('resplit');
    await rm(path.join(resplitTmp, 'data'), { recursive: true });
    await cp(split.dir, path.join(resplitTmp, 'data'), { recursive: true });
    await writeFile(path.join(resplitTmp, 'data', 'split.json'), '{"seed":2}');
    const resplit = await a.commit(resplitTmp, draft('split', 'two'));
    t = Date.now();
    const shared = await remote.push(a, [resplit.key]);
    const sharedS = (Date.now() - t) / 1000;

    await b.init();
    // The progress bar's done() comes after the last download, before Cache.commit.
    let downloaded = 0;
    const mark: Progress = { tick: () => undefined, update: () => undefined, setTotal: () => undefined, done: () => void (downloaded = Date.now()) };
    t = Date.now();
    await remote.pull(b, split.key, { progress: mark });
    const pullSplitS = (Date.now() - t) / 1000;
    const pullSplitDownloadS = (downloaded - t) / 1000;
    t = Date.now();
    await remote.pull(b, model.key, { progress: mark });
    const pullModelS = (Date.now() - t) / 1000;
    const pullModelDownloadS = (downloaded - t) / 1000;

    // What `pipe run --only evaluate --pull` fetches of the split into an empty cache (a sparse
    // entry), then the rest when a stage reads all of it (completed in place).
    await c.init();
    const reads = ['split.json', 'valid/**'];
    t = Date.now();
    const sparse = await remote.pull(c, split.key, { reads, reader: 'evaluate', progress: mark });
    const pullSparseS = (Date.now() - t) / 1000;
    t = Date.now();
    const completed = await remote.pull(c, split.key, { progress: mark });
    const completeS = (Date.now() - t) / 1000;
    const verified = (await c.verify(split.key)).length === 0 && (await c.lookup(split.key)) !== undefined;

    return {
      server: 's3rver 3.7.1 in a child process on 127.0.0.1',
      files_in_split: files,
      split_mb: round((files * fileBytes) / 1e6, 1),
      model_mb: round(bigBytes / 1e6, 1),
      model_files: shards + 5,
      setup_s: round(setupS),
      push_split: { s: round(pushSplitS), mb_per_s: mb(pushSplit.uploadedBytes, pushSplitS), files_per_s: Math.round(pushSplit.uploadedFiles / pushSplitS) },
      push_model: {
        s: round(pushModelS),
        mb_per_s: mb(pushModel.uploadedBytes, pushModelS),
        multipart: Math.min(SHARD_BYTES, bigBytes) >= MULTIPART_THRESHOLD,
      },
      second_push_all_present: { s: round(againS, 3), target_s: 2, uploaded_files: again.uploadedFiles, entries_present: again.entriesPresent },
      push_new_entry_blobs_present: { s: round(sharedS), uploaded_files: shared.uploadedFiles, present_files: shared.presentFiles },
      pull_split: {
        s: round(pullSplitS),
        download_s: round(pullSplitDownloadS),
        mb_per_s: mb(files * fileBytes, pullSplitS),
        files_per_s: Math.round(files / pullSplitS),
      },
      pull_model: { s: round(pullModelS), download_s: round(pullModelDownloadS), mb_per_s: mb(bigBytes, pullModelS) },
      push_total: { s: round(pushSplitS + pushModelS), mb_per_s: mb(totalBytes, pushSplitS + pushModelS) },
      pull_total: { s: round(pullSplitS + pullModelS), mb_per_s: mb(totalBytes, pullSplitS + pullModelS) },
      sparse_pull_valid: {
        reads,
        s: round(pullSparseS),
        files: sparse?.info.files,
        of: files + 1,
        mb: round((sparse?.info.downloadedBytes ?? 0) / 1e6, 2),
        files_per_s: Math.round((sparse?.info.files ?? 0) / pullSparseS),
        vs_full_pull_s: round(pullSplitS),
      },
      complete_sparse_entry: { s: round(completeS), files: completed?.info.files, mb: round((completed?.info.downloadedBytes ?? 0) / 1e6, 1), verified },
      note: 'pull s includes the sha256 check of every file and Cache.commit (re-hash + fsync of every file); download_s stops before the commit',
    };
  } finally {
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(JSON.stringify(await benchRemote(), null, 2));
}
