// Partial (sparse) pulls against a real S3-compatible server (s3rver on loopback): a stage that
// declares what it reads (Stage.reads) gets only those files of an upstream artifact; the
// sparse cache entry is never a cache hit for its own stage, is completed in place when a stage
// needs more, verifies as partial (not corrupt), is not pushed, and a corrupt blob within it is
// still refused. End to end with the real `split`, `evaluate` and `report` stages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Cache, type MetaDraft } from '../runner/cache.js';
import { sparseOf } from '../runner/sparse.js';
import type { Artifact, ManifestEntry } from '../runner/types.js';
import { readsMatcher, normalizeReads } from '../runner/reads.js';
import { S3Store } from '../runner/remote/s3-store.js';
import { RemoteCache, blobPath } from '../runner/remote/remote-cache.js';
import { pulledInfo } from '../runner/remote/stub.js';
import { evaluateStage, type EvaluateParams } from '../stages/evaluate.js';
import { reportStage } from '../stages/report.js';
import { startS3Server, S3_ACCESS_KEY_ID, type S3Server } from './servers/s3.js';
import { commitFiles, s3ChildEnv } from './helpers/remote-fixtures.js';
import { listAll, withTempDir } from './helpers/files.js';
import { Rig, type RunResult } from './e2e/rig.js';
import { sizeOf } from '../runner/cache-gc.js';

const SECRET = 'sparse-SECRET-never-printed-71c0e2';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
let server: S3Server;
let prefixN = 0;

before(async () => {
  server = await startS3Server();
});
after(async () => {
  await server.close();
});

function remote(prefix = `sparse${++prefixN}`): RemoteCache {
  return new RemoteCache(
    S3Store.create(`s3://${server.bucket}/${prefix}`, {
      endpoint: server.endpoint,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: SECRET },
    }),
  );
}

const s3Env = (prefix: string): Record<string, string> => s3ChildEnv(server, SECRET, prefix);
const artifact = (cache: Cache, stage: string, files: Record<string, Buffer | string>): Promise<Artifact> =>
  commitFiles(cache, stage, files, { kind: 'dataset', uses: 'split' });

test('read patterns: *, ?, **, folders cover what is below them; bad patterns are refused', () => {
  const m = readsMatcher(['split.json', 'valid/**', 'test/*.jpg', 'x?.txt', '**/notes.md', 'models']);
  for (const yes of ['split.json', 'valid/cat/1.jpg', 'valid/a', 'test/1.jpg', 'x1.txt', 'notes.md', 'a/b/notes.md', 'models/w.bin', 'models/a/b'])
    assert.ok(m(yes), yes);
  for (const no of [
    'split.json.bak',
    'train/cat/1.jpg',
    'validation/1.jpg',
    'test/a/1.jpg',
    'x12.txt',
    'sample/valid/cat/1.jpg',
    'modelsX/w.bin',
    'a/split.json',
  ])
    assert.ok(!m(no), no);
  assert.ok(readsMatcher(['**'])('any/thing'));
  assert.ok(!readsMatcher([])('split.json'));
  assert.deepEqual(normalizeReads(['b', 'a', 'b'], 's'), ['a', 'b']);
  assert.equal(normalizeReads(undefined, 's'), undefined);
  for (const bad of ['', '/etc', '../x', 'a//b', 'a\\b', './a']) assert.throws(() => normalizeReads([bad], 'stage x'), /stage x: read pattern/);
});

test('evaluate and report declare what they read', () => {
  const p = (on: EvaluateParams['on']) => ({ on }) as EvaluateParams;
  assert.deepEqual(evaluateStage.reads?.(p('valid'), 'dataset'), ['split.json', 'valid/**']);
  assert.deepEqual(evaluateStage.reads?.(p('both'), 'dataset'), ['split.json', 'valid/**', 'test/**']);
  assert.deepEqual(evaluateStage.reads?.(p('test'), 'dataset'), ['split.json', 'test/**']);
  assert.equal(evaluateStage.reads?.(p('valid'), 'model'), undefined);
  const r = { thumbnails: 160, max_per_view: 8 };
  assert.deepEqual(reportStage.reads?.(r, 'model'), ['history.json', 'finetune.json', 'preprocess.json']);
  assert.deepEqual(reportStage.reads?.(r, 'dataset'), ['valid/**']);
  assert.equal(reportStage.reads?.(r, 'evaluation'), undefined);
  assert.deepEqual(reportStage.reads?.(r, 'notes'), []);
});

test('a partial pull commits a sparse entry; more reads extend it in place; all of it completes it', async () => {
  await withTempDir('pipe-sparse-', async (root) => {
    const a = new Cache(path.join(root, 'a'));
    const b = new Cache(path.join(root, 'b'));
    await a.init();
    const r = remote();
    const files: Record<string, Buffer | string> = { 'split.json': '{"classes":["cat","dog"]}' };
    for (let i = 0; i < 40; i++) files[`train/cat/${i}.jpg`] = randomBytes(300);
    for (let i = 0; i < 6; i++) files[`valid/dog/${i}.jpg`] = randomBytes(200);
    files['sample/valid/dog/0.jpg'] = files['valid/dog/0.jpg']!; // same content as a valid file
    files['test/unknown/1.jpg'] = randomBytes(100);
    const art = await artifact(a, 'split', files);
    await r.push(a, [art.key]);

    const first = await r.pull(b, art.key, { reads: ['split.json', 'valid/**'], reader: 'evaluate' });
    assert.ok(first?.fresh);
    assert.equal(first.info.files, 7);
    assert.equal(first.info.bytes, 25 + 6 * 200);
    assert.equal(first.info.downloadedBytes, 25 + 6 * 200);
    assert.deepEqual(first.info.partial && [first.info.partial.of, first.info.partial.reads], [49, ['split.json', 'valid/**']]);
    // Not a cache hit; found, marked sparse; the whole manifest, only the read files.
    assert.equal(await b.lookup(art.key), undefined);
    const found = await b.find(art.key);
    assert.ok(found);
    assert.equal(found.contentHash, art.contentHash);
    const sparse = sparseOf(found);
    assert.deepEqual(sparse && [sparse.present.length, sparse.files, sparse.readers], [7, 49, ['evaluate']]);
    assert.deepEqual(await b.readManifest(art.key), await a.readManifest(art.key));
    assert.deepEqual(await listAll(found.dir), ['split.json', ...Array.from({ length: 6 }, (_, i) => `valid/dog/${i}.jpg`)]);
    assert.deepEqual(pulledInfo(found)?.partial?.of, 49);
    assert.deepEqual(await readdir(b.tmpRoot), []);
    assert.deepEqual(await readdir(b.workRoot), []);
    // Verify checks what is there and knows it is partial; a changed file is still found.
    const v = await b.verifyEntry(art.key);
    assert.deepEqual(v.problems, []);
    assert.equal(v.sparse?.present.length, 7);
    assert.equal(await sizeOf(b, art.key), 25 + 6 * 200);

    // The same reads again: nothing to do. More reads: only the new files, copied locally when
    // the entry already holds their content (sample/valid/dog/0.jpg).
    assert.equal((await r.pull(b, art.key, { reads: ['valid/**'] }))?.fresh, false);
    const more = await r.pull(b, art.key, { reads: ['sample/**', 'test/**'], reader: 'other' });
    assert.deepEqual(more && [more.info.files, more.info.downloadedBytes], [2, 100]);
    const extended = sparseOf((await b.find(art.key))!);
    assert.deepEqual(extended && [extended.present.length, extended.reads, extended.readers], [
      9,
      ['sample/**', 'split.json', 'test/**', 'valid/**'],
      ['evaluate', 'other'],
    ]);
    assert.equal(await b.lookup(art.key), undefined);

    // Everything: the 40 train files; the entry is complete, the same content, verified.
    const all = await r.pull(b, art.key);
    assert.deepEqual(all && [all.info.files, all.info.downloadedBytes, all.info.partial], [40, 40 * 300, undefined]);
    const complete = await b.lookup(art.key);
    assert.ok(complete && !sparseOf(complete));
    assert.ok(!existsSync(path.join(b.entryDir(art.key), 'sparse.json')));
    assert.deepEqual(await b.verify(art.key), []);
    assert.deepEqual(await listAll(complete.dir), await listAll(art.dir));
    assert.equal(pulledInfo(complete)?.files, 49);
    assert.equal(pulledInfo(complete)?.partial, undefined);
    // A complete entry is pushed as any other (uploads nothing: the remote has it).
    assert.equal((await r.push(b, [art.key])).uploadedFiles, 0);
  });
});

test('a sparse entry: tampering is found by verify; a re-run of its stage completes or replaces it; it is never pushed', async () => {
  await withTempDir('pipe-sparse-', async (root) => {
    const a = new Cache(path.join(root, 'a'));
    const b = new Cache(path.join(root, 'b'));
    await a.init();
    const r = remote();
    const files = { 'split.json': '{}', 'valid/1.jpg': 'v1', 'train/1.jpg': 't1', 'train/2.jpg': 't2' };
    const art = await artifact(a, 'split', files);
    await r.push(a, [art.key]);
    await r.pull(b, art.key, { reads: ['valid'] });
    const data = path.join(b.entryDir(art.key), 'data');
    await writeFile(path.join(data, 'valid/1.jpg'), 'v2');
    await writeFile(path.join(data, 'stray.txt'), 'x');
    const problems = (await b.verify(art.key)).map((p) => `${p.path}: ${p.problem}`);
    assert.deepEqual(problems, ['stray.txt: not in the manifest', 'valid/1.jpg: content differs from the manifest (sha256)']);
    await writeFile(path.join(data, 'valid/1.jpg'), 'v1');
    await rm(path.join(data, 'stray.txt'));
    await assert.rejects(r.push(b, [art.key]), /only partly in the local cache/);

    // The stage re-runs here and makes the same bytes: the entry is completed in place.
    const same = await b.makeTemp('split');
    for (const [rel, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(same, 'data', rel)), { recursive: true });
      await writeFile(path.join(same, 'data', rel), content);
    }
    const made = await b.commit(same, { ...(art.meta as unknown as MetaDraft), runId: 'run-2', host: 'ci' });
    assert.equal(made.contentHash, art.contentHash);
    assert.equal(made.meta.runId, 'run-2');
    assert.ok(!sparseOf(made));
    assert.deepEqual(await b.verify(art.key), []);

    // Other bytes for the same key (a non-deterministic stage): the new entry replaces the sparse one.
    const c = new Cache(path.join(root, 'c'));
    await r.pull(c, art.key, { reads: ['split.json'] });
    const other = await c.makeTemp('split');
    await writeFile(path.join(other, 'data', 'split.json'), '{"other":1}');
    const replaced = await c.commit(other, { ...(art.meta as unknown as MetaDraft), runId: 'run-3' });
    assert.notEqual(replaced.contentHash, art.contentHash);
    assert.ok(!sparseOf(replaced));
    assert.deepEqual(await listAll(replaced.dir), ['split.json']);
    assert.deepEqual(await c.verify(art.key), []);
    assert.deepEqual(await readdir(c.tmpRoot), []);
  });
});

test('an interrupted partial pull commits nothing; the next one resumes with the verified files', async () => {
  await withTempDir('pipe-sparse-', async (root) => {
    const a = new Cache(path.join(root, 'a'));
    const b = new Cache(path.join(root, 'b'));
    await a.init();
    const r = remote();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 20; i++) files[`valid/${i}.jpg`] = randomBytes(1000);
    for (let i = 0; i < 20; i++) files[`train/${i}.jpg`] = randomBytes(1000);
    const art = await artifact(a, 'split', files);
    await r.push(a, [art.key]);
    let gets = 0;
    server.setHook(({ method, url }) => (method === 'GET' && url.includes('/blobs/') && ++gets > 8 ? 'fail' : 'pass'));
    try {
      await assert.rejects(r.pull(b, art.key, { reads: ['valid/**'] }));
    } finally {
      server.setHook(undefined);
    }
    assert.equal(await b.find(art.key), undefined);
    assert.deepEqual(await readdir(b.tmpRoot), []);
    const resumed = await r.pull(b, art.key, { reads: ['valid/**'] });
    assert.ok(resumed && sparseOf(resumed.artifact));
    assert.equal(resumed.info.files, 20);
    assert.ok(resumed.info.downloadedBytes < 20 * 1000, `re-downloaded ${resumed.info.downloadedBytes} bytes`);
    assert.deepEqual(
      await listAll(resumed.artifact.dir),
      Object.keys(files)
        .filter((f) => f.startsWith('valid/'))
        .sort(),
    );
    assert.deepEqual(await b.verify(art.key), []);
    assert.deepEqual(await readdir(b.workRoot), []);
  });
});

// ---- end to end: the real binary, the real split / evaluate / report stages ----

const PIPELINE = `name: tiny
stages:
  photos:
    uses: synth-images
    with: { classes: [cat, dog], train_per_class: 24, test: 6, width: 40, height: 32, seed: 1 }
  split:
    uses: split
    inputs: { images: photos }
    with: { from: train, label_from: filename, valid: 10, sample: { train: 4, valid: 4 }, test: test, seed: 1 }
  finetune:
    uses: finetune-vgg16
    inputs: { dataset: split }
    with: { architecture: tiny-vgg, weights: none, input_size: 32, trainable: all, epochs: 1, batch_size: 16, seed: 1, backend: wasm }
  evaluate:
    uses: evaluate
    inputs: { model: finetune, dataset: split }
    with: { on: valid, backend: wasm }
  report:
    uses: report
    inputs: { evaluation: evaluate, model: finetune }
  count:
    uses: command
    inputs: { dataset: split }
    with:
      workdir: out
      run: find "$PIPE_IN_DATASET" -type f | wc -l | tr -d ' ' > files.txt
`;

/** The run record of a `pipe run` (named by the run id it printed: two runs in one second sort at random). */
async function runRecord(rig: Rig, cacheDir: string, run: RunResult): Promise<Record<string, unknown>[]> {
  const id = /pipe run \S+ \((\S+)\)/.exec(run.stderr)?.[1];
  assert.ok(id, `no run id in:\n${run.stderr}`);
  return (await readFile(rig.path(cacheDir, 'runs', `${id}.jsonl`), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The split's manifest in cache `dir`, and its key. */
async function splitEntry(rig: Rig, dir: string): Promise<{ key: string; manifest: ManifestEntry[] }> {
  const cache = new Cache(rig.path(dir));
  const key = (await cache.latestKey('tiny', 'split'))!;
  return { key, manifest: await cache.readManifest(key) };
}

const printed: RunResult[] = [];
async function pipe(rig: Rig, args: string[], env: Record<string, string>): Promise<RunResult> {
  const r = await rig.run(args, env);
  printed.push(r);
  return r;
}

test(
  '`run --only evaluate report --pull` pulls split.json and valid/ of the split only; a stage that reads all of it completes it',
  { timeout: 120_000 },
  async () => {
    const rig = await Rig.create();
    const env = s3Env(`sparse-e2e${++prefixN}`);
    try {
      await rig.write('p.yaml', PIPELINE);
      const a = await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'A', '--until', 'report'], env);
      assert.equal(a.code, 0, a.stderr);
      assert.equal((await pipe(rig, ['push', 'p.yaml', '--cache-dir', 'A', '--stage', 'photos', 'split', 'finetune'], env)).code, 0);
      const { key, manifest } = await splitEntry(rig, 'A');
      const wanted = manifest.filter((m) => m.path === 'split.json' || m.path.startsWith('valid/'));
      assert.equal(wanted.length, 11);
      assert.ok(manifest.length > 60);

      const b = await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'B', '--only', 'evaluate', 'report', '--pull'], env);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(await rig.read('B/latest/tiny/evaluate/metrics.json'), await rig.read('A/latest/tiny/evaluate/metrics.json'));
      assert.match(b.stderr, new RegExp(`pulling 11 files of ${manifest.length} \\(what evaluate reads\\)`));
      assert.match(b.stderr, /5 stages: 2 ran, 3 cached \(2 pulled from s3:\/\/\S+; partly: split\)/);
      // The split's entry: the whole manifest, split.json and valid/ only, marked sparse.
      const entry = rig.path('B/cache', key);
      assert.deepEqual(await listAll(path.join(entry, 'data')), wanted.map((m) => m.path).sort());
      assert.deepEqual(JSON.parse(await readFile(path.join(entry, 'manifest.json'), 'utf8')), manifest);
      const sparse = JSON.parse(await readFile(path.join(entry, 'sparse.json'), 'utf8')) as { present: string[]; reads: string[]; readers: string[] };
      assert.deepEqual([sparse.present.length, sparse.reads, sparse.readers], [11, ['split.json', 'valid/**'], ['evaluate']]);
      const events = await runRecord(rig, 'B', b);
      const pulledSplit = events.find((e) => e['type'] === 'stage-pulled' && e['stage'] === 'split') as
        { files: number; bytes: number; partial?: { files: number; of: number } } | undefined;
      assert.deepEqual(pulledSplit && [pulledSplit.files, pulledSplit.partial?.files, pulledSplit.partial?.of], [11, 11, manifest.length]);
      assert.equal(
        pulledSplit?.bytes,
        [...new Map(wanted.map((m) => [m.sha256, m.size])).values()].reduce((n, s) => n + s, 0),
      );
      assert.ok(!existsSync(rig.path('B/latest/tiny/photos')), 'the raw data is only looked up');
      // The report's run view (the path the run prints) says which artifacts came from the remote,
      // and that the split came partly.
      const view = /^report: (\S+)index\.html$/m.exec(b.stderr + b.stdout)?.[1];
      assert.ok(view && /runs\/[^/]+\/report\/$/.test(view), `the run view's path is printed:\n${b.stderr}`);
      const md = await readFile(path.resolve(rig.dir, view, 'report.md'), 'utf8');
      assert.match(
        md,
        new RegExp(`\\| split \\| split \\|.*\\*\\*pulled\\*\\* from s3://${server.bucket}/sparse-e2e\\d+ .*\\(partly: 11 of ${manifest.length} files\\)`),
      );
      assert.match(md, /\| finetune \| finetune-vgg16 \|.*\*\*pulled\*\* from s3:\/\/\S+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \|/);
      assert.match(md, /\| photos \| synth-images \|.*on remote s3:\/\/\S+ \(only its meta\.json was read\)/);
      const html = await readFile(path.resolve(rig.dir, view, 'index.html'), 'utf8');
      assert.match(html, /<span class="badge remote">pulled<\/span> from <code>s3:\/\/[^<]+<\/code>, [^<]+ <span class="muted">\(partly: 11 of \d+ files\)/);
      assert.doesNotMatch(b.stderr, /could not be shown/, 'the valid pictures are there for the report');

      // verify: clean and partial; push skips it (the remote has it whole); status after the raw
      // data is pulled says partial.
      const verify = await pipe(rig, ['verify', 'p.yaml', '--cache-dir', 'B'], env);
      assert.equal(verify.code, 0, verify.stdout);
      assert.match(verify.stdout, new RegExp(`ok +split [0-9a-f]{12} partial: 11 of ${manifest.length} files here \\(split\\.json, valid/\\*\\*\\)`));
      assert.match(verify.stdout, /0 corrupt, 1 partial/);
      const push = await pipe(rig, ['push', 'p.yaml', '--cache-dir', 'B', '--stage', 'split'], env);
      assert.equal(push.code, 0, push.stderr);
      assert.match(push.stderr, /split: only 11 of \d+ files are here .*has it whole: skipped/);
      const waits = await pipe(rig, ['status', 'p.yaml', '--cache-dir', 'B'], env);
      assert.match(waits.stdout, /waits +split .*; latest: a partial pull \(11 of \d+ files\) from s3:\/\//);
      const gc = await pipe(rig, ['gc', 'p.yaml', '--cache-dir', 'B'], env);
      assert.equal(gc.code, 0, gc.stderr);
      assert.match(gc.stdout, /removed 0 entries/);
      assert.ok(existsSync(path.join(entry, 'sparse.json')), 'gc keeps the partial pull the latest links use');
      assert.equal((await pipe(rig, ['pull', 'p.yaml', '--cache-dir', 'B', '--stage', 'photos'], env)).code, 0);
      const status = await pipe(rig, ['status', 'p.yaml', '--cache-dir', 'B'], env);
      assert.match(status.stdout, /partial split +11 of \d+ files \(split\.json, valid\/\*\*\) pulled from s3:\/\/\S+ for evaluate/);

      // A stage that reads all of it, without --pull: a clear error; with --pull: the rest is pulled.
      const noPull = await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'B', '--only', 'count'], env);
      assert.equal(noPull.code, 1);
      assert.match(
        noPull.stderr,
        /input dataset: only 11 of \d+ files of split .* are in the local cache \(a partial pull for evaluate\), and count reads all of it \(run with --pull/,
      );
      const full = await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'B', '--only', 'count', '--pull'], env);
      assert.equal(full.code, 0, full.stderr);
      assert.equal((await rig.read('B/latest/tiny/count/files.txt')).trim(), String(manifest.length));
      const completed = (await runRecord(rig, 'B', full)).find((e) => e['type'] === 'stage-pulled' && e['stage'] === 'split') as
        { files: number; partial?: unknown } | undefined;
      assert.deepEqual(completed && [completed.files, completed.partial], [manifest.length - 11, undefined]);
      assert.ok(!existsSync(path.join(entry, 'sparse.json')));
      assert.deepEqual(await listAll(path.join(entry, 'data')), manifest.map((m) => m.path).sort());
      const again = await pipe(rig, ['verify', 'p.yaml', '--cache-dir', 'B'], env);
      assert.equal(again.code, 0);
      assert.match(again.stdout, /0 corrupt\n/);
      assert.deepEqual(await readdir(rig.path('B/tmp')), []);

      // --only report: evaluate is pulled whole; the split reaches report only through its lineage
      // (report has no dataset wire), and the valid/ pictures report declares are pulled for it.
      assert.equal((await pipe(rig, ['push', 'p.yaml', '--cache-dir', 'A', '--stage', 'evaluate'], env)).code, 0);
      const c = await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'C', '--only', 'report', '--pull'], env);
      assert.equal(c.code, 0, c.stderr);
      assert.doesNotMatch(c.stderr, /could not be (shown|pulled)/);
      const cSplit = (await runRecord(rig, 'C', c)).find((e) => e['type'] === 'stage-pulled' && e['stage'] === 'split') as
        { files: number; partial?: { reads: string[] } } | undefined;
      assert.deepEqual(cSplit && [cSplit.files, cSplit.partial?.reads], [10, ['valid/**']]);
      assert.match(await rig.read('C/latest/tiny/report/index.html'), /<img src="data:image\//);
      for (const r of printed) assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), 'the secret was printed');
    } finally {
      await rig.cleanup();
    }
  },
);

test('a partial pull ignores a corrupt blob it does not need and refuses one it does', { timeout: 120_000 }, async () => {
  const rig = await Rig.create();
  const prefix = `sparse-e2e${++prefixN}`;
  const env = s3Env(prefix);
  try {
    await rig.write('p.yaml', PIPELINE);
    assert.equal((await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'A', '--until', 'evaluate'], env)).code, 0);
    assert.equal((await pipe(rig, ['push', 'p.yaml', '--cache-dir', 'A', '--stage', 'photos', 'split', 'finetune'], env)).code, 0);
    const { manifest } = await splitEntry(rig, 'A');
    const r = remote(prefix);
    const train = manifest.find((m) => m.path.startsWith('train/'))!;
    const valid = manifest.find((m) => m.path.startsWith('valid/'))!;
    const corrupt = async (m: ManifestEntry): Promise<void> => {
      const body = await r.store.getBuffer(blobPath(m.sha256));
      const i = body!.length >> 1;
      body![i] = body![i]! ^ 0xff; // same size, other bytes
      await r.store.putBuffer(blobPath(m.sha256), body!);
    };
    await corrupt(train);
    const ok = await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'B', '--only', 'evaluate', '--pull'], env);
    assert.equal(ok.code, 0, ok.stderr);

    await corrupt(valid);
    const bad = await pipe(rig, ['run', 'p.yaml', '--cache-dir', 'C', '--only', 'evaluate', '--pull'], env);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(`remote file split/${valid.path.replace(/[.]/g, '\\.')} .*is corrupt: sha256`));
    const cache = new Cache(rig.path('C'));
    for (const k of await cache.listKeys()) assert.notEqual((await cache.find(k))?.meta.stage, 'split', 'nothing of the split was committed');
    assert.deepEqual(await readdir(rig.path('C/tmp')), []);
  } finally {
    await rig.cleanup();
  }
});
