// The VGG16 weights download gets fetch-kaggle's downloader (issue 15 item 6): against a
// loopback server that drops the connection midway, stalls, or serves a truncated file, the
// download resumes with Range, abandons the stall, and never lets a cut-short .h5 into the
// cache's derived/ entries; every failure is one line naming the real cause.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Cache } from '../runner/cache.js';
import { StageError } from '../runner/types.js';
import { hdf5Problem } from '../stages/vision/hdf5-check.js';
import { cachedWeightsFile, fetchWeights } from '../stages/vision/fetch-weights.js';
import { readKerasH5 } from '../stages/vision/weights.js';
import { makeTestContext, type TestContext } from './helpers/stage-context.js';
import { writeTinyVggH5 } from './helpers/tiny-vgg.js';

let dir: string;
let weights: Buffer;
let md5: string;
let server: Server;
let base: string;
const seen: { path: string; range?: string; status: number; headers: IncomingHttpHeaders }[] = [];
const firstServed = new Set<string>();

/**
 * /ok/w.h5 serves the file with Range support; /drop/ sends half of its first answer, then
 * hangs up; /stall/ sends half of its first answer, then nothing; /truncated/ serves 60% of the
 * file as if it were all of it (a matching Content-Length); /flaky/ answers 503 first.
 */
function serve(): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const mode = url.pathname.split('/')[1] ?? '';
    const entry = { path: url.pathname, ...(req.headers.range ? { range: req.headers.range } : {}), status: 200, headers: req.headers };
    seen.push(entry);
    const first = !firstServed.has(url.pathname);
    firstServed.add(url.pathname);
    if (!url.pathname.endsWith('/w.h5')) {
      entry.status = 404;
      res.writeHead(404).end();
      return;
    }
    if (mode === 'flaky' && first) {
      entry.status = 503;
      res.writeHead(503).end();
      return;
    }
    const data = mode === 'truncated' ? weights.subarray(0, Math.floor(weights.length * 0.6)) : weights;
    const etag = `"${createHash('md5').update(data).digest('hex')}"`;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m && (!req.headers['if-range'] || req.headers['if-range'] === etag) ? Number(m[1]) : 0;
    const body = data.subarray(start);
    entry.status = start > 0 ? 206 : 200;
    res.writeHead(entry.status, {
      'Content-Length': body.length,
      'Accept-Ranges': 'bytes',
      ETag: etag,
      ...(start > 0 ? { 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    if (first && (mode === 'drop' || mode === 'stall')) {
      // After a pause long enough for the client to take the bytes already sent.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => {
        if (mode === 'drop') setTimeout(() => res.socket?.destroy(), 300);
      });
      return;
    }
    res.end(body);
  });
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-weights-dl-'));
  await writeTinyVggH5(path.join(dir, 'source.h5'), { seed: 4 });
  weights = await readFile(path.join(dir, 'source.h5'));
  md5 = createHash('md5').update(weights).digest('hex');
  server = serve();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

const quick = { stallTimeoutMs: 500, retries: 2, backoffMs: 10 };
/** A download that hangs fails the test instead of the suite. */
const net = { timeout: 30_000 };

async function withCtx(fn: (ctx: TestContext<unknown>) => Promise<void>): Promise<void> {
  const ctx = await makeTestContext<unknown>({});
  try {
    await fn(ctx);
  } finally {
    await ctx.cleanup();
  }
}

/** fetchWeights as a stage calls it: the test context's log, progress and signal, the quick timings. */
function fetchWith(ctx: TestContext<unknown>, o: { url: string; dest: string; md5?: string }): ReturnType<typeof fetchWeights> {
  return fetchWeights({ ...o, log: ctx.log, progress: ctx.progress, signal: ctx.signal, ...quick });
}

/** Some log line matches `re` (else the failure shows the whole log). */
function assertLogged(ctx: TestContext<unknown>, re: RegExp): void {
  assert.ok(
    ctx.logs.some((l) => re.test(l)),
    ctx.logs.join('\n'),
  );
}

function requestsFor(mode: string): typeof seen {
  return seen.filter((r) => r.path.startsWith(`/${mode}/`));
}

test('the superblock check: a complete file passes; a cut-short one or not-HDF5 is named in one line', async () => {
  const file = path.join(dir, 'check.h5');
  await writeFile(file, weights);
  assert.equal(await hdf5Problem(file), undefined);
  for (const keep of [weights.length - 1, Math.floor(weights.length / 2), 200]) {
    await copyFile(path.join(dir, 'source.h5'), file);
    await truncate(file, keep);
    assert.equal(await hdf5Problem(file), `truncated HDF5 file: ${keep} of ${weights.length} bytes`);
  }
  // Superblock versions 2 and 3 keep the end of file at another offset than 0 and 1.
  const v2 = Buffer.alloc(48);
  Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 2, 8, 8, 0]).copy(v2);
  v2.writeBigUInt64LE(0n, 12); // base address
  v2.writeBigUInt64LE(0xffffffffffffffffn, 20); // no superblock extension
  v2.writeBigUInt64LE(4096n, 28); // end of file
  await writeFile(file, Buffer.concat([v2, Buffer.alloc(4096 - v2.length)]));
  assert.equal(await hdf5Problem(file), undefined);
  await truncate(file, 4000);
  assert.equal(await hdf5Problem(file), 'truncated HDF5 file: 4000 of 4096 bytes');
  await writeFile(file, '<html>503 Service Unavailable</html>');
  assert.match((await hdf5Problem(file)) ?? '', /^not an HDF5 file/);
  // Loading a truncated file says so in one line instead of h5wasm's HDF5-DIAG pages.
  await truncate(file, 0);
  await writeFile(file, weights.subarray(0, Math.floor(weights.length * 0.7)));
  await assert.rejects(
    readKerasH5(file, () => undefined),
    (e: Error) => {
      assert.equal(e.name, 'WeightsError');
      assert.equal(e.message, `${file}: truncated HDF5 file: ${Math.floor(weights.length * 0.7)} of ${weights.length} bytes`);
      return true;
    },
  );
});

test('a connection dropped midway is resumed with Range, not restarted; the log names the cause', net, async () => {
  await withCtx(async (ctx) => {
    const got = await fetchWith(ctx, { url: `${base}/drop/w.h5`, dest: path.join(ctx.workDir, 'w.h5'), md5 });
    assert.equal(got.digest, md5);
    assert.equal(got.resumes, 1);
    const gets = requestsFor('drop');
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.range, undefined);
    assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.equal(gets[1]!.status, 206);
    assert.ok(gets[1]!.headers['if-range'], 'the resume is guarded by If-Range');
    assertLogged(ctx, /w\.h5: the connection was lost .*retrying \(resuming at \d+ bytes\)/);
    assert.ok(!ctx.logs.some((l) => /TypeError|terminated/.test(l)), ctx.logs.join('\n'));
    assert.deepEqual(await readFile(path.join(ctx.workDir, 'w.h5')), weights);
  });
});

test('a stalled server is abandoned after the stall timeout and the download resumes', net, async () => {
  await withCtx(async (ctx) => {
    const started = Date.now();
    const got = await fetchWith(ctx, { url: `${base}/stall/w.h5`, dest: path.join(ctx.workDir, 'w.h5'), md5 });
    assert.equal(got.digest, md5);
    assert.ok(Date.now() - started < 10_000);
    const gets = requestsFor('stall');
    assert.equal(gets.length, 2);
    assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
    assertLogged(ctx, /w\.h5: no data for 0\.5 s; retrying/);
  });
});

test('HTTP 503 is retried; a 404 and an md5 mismatch are one line each', net, async () => {
  await withCtx(async (ctx) => {
    const got = await fetchWith(ctx, { url: `${base}/flaky/w.h5`, dest: path.join(ctx.workDir, 'w.h5'), md5 });
    assert.equal(got.digest, md5);
    assertLogged(ctx, /HTTP 503 .*retrying/);
    await assert.rejects(
      fetchWith(ctx, { url: `${base}/ok/missing.h5?sig=x`, dest: path.join(ctx.workDir, 'm.h5') }),
      (e: Error) => e instanceof StageError && e.message === `cannot download ${base}/ok/missing.h5: HTTP 404 Not Found from ${base}/ok/missing.h5`,
    );
    const dest = path.join(ctx.workDir, 'bad.h5');
    await assert.rejects(
      fetchWith(ctx, { url: `${base}/ok/w.h5`, dest, md5: '0'.repeat(32) }),
      (e: Error) =>
        e instanceof StageError &&
        e.message === `bad.h5: md5 mismatch: expected ${'0'.repeat(32)}, got ${md5} (${weights.length} bytes received; the file was deleted)`,
    );
    assert.ok(!existsSync(dest) && !existsSync(`${dest}.part`));
  });
});

test('a truncated .h5 without an md5 is refused before anything is marked complete in derived/', net, async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-weights-cache-'));
  try {
    const cache = new Cache(root);
    await cache.init();
    await withCtx(async (ctx) => {
      const stage = { ...ctx, derived: (name: string, key: unknown, build: (d: string) => Promise<void>) => cache.derived(name, key, build) };
      const url = `${base}/truncated/w.h5`;
      await assert.rejects(cachedWeightsFile(stage, url, undefined, quick), (e: Error) => {
        assert.ok(e instanceof StageError, String(e));
        assert.equal(
          e.message,
          `w.h5: truncated HDF5 file: ${Math.floor(weights.length * 0.6)} of ${weights.length} bytes (${Math.floor(weights.length * 0.6)} bytes received; the file was deleted)`,
        );
        return true;
      });
      assert.deepEqual(await readdir(cache.derivedRoot), [], 'a derived entry was left behind');
      assert.ok(!existsSync(path.join(ctx.workDir, 'weights', 'w.h5')) && !existsSync(path.join(ctx.workDir, 'weights', 'w.h5.part')));
      // The complete file from a good server is cached, and found there the next time.
      const good = await cachedWeightsFile(stage, `${base}/ok/w.h5`, md5, quick);
      assert.ok(good.startsWith(cache.derivedRoot));
      assert.deepEqual(await readFile(good), weights);
      assert.ok(existsSync(path.join(path.dirname(good), '.complete')));
      const before = seen.length;
      assert.equal(await cachedWeightsFile(stage, `${base}/ok/w.h5`, md5, quick), good);
      assert.equal(seen.length, before, 'downloaded again');
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('an interrupted download keeps its partial file in the work dir; the next run resumes it', net, async () => {
  await withCtx(async (ctx) => {
    const dest = path.join(ctx.workDir, 'weights', 'w.h5');
    await writeFile(path.join(dir, 'half'), weights.subarray(0, 1000));
    await mkdir(path.dirname(dest), { recursive: true });
    await copyFile(path.join(dir, 'half'), `${dest}.part`);
    const from = seen.length;
    const file = await cachedWeightsFile(ctx, `${base}/ok/w.h5`, md5, quick);
    assert.deepEqual(await readFile(file), weights);
    const gets = seen.slice(from);
    assert.equal(gets.length, 1);
    assert.equal(gets[0]!.range, 'bytes=1000-');
    assertLogged(ctx, /w\.h5: resuming at 1000 bytes/);
  });
});

test('a cut-short file left under the final name by an older pipe is not taken as downloaded', net, async () => {
  await withCtx(async (ctx) => {
    const dest = path.join(ctx.workDir, 'w.h5');
    await writeFile(dest, weights.subarray(0, 5000));
    const from = seen.length;
    const got = await fetchWith(ctx, { url: `${base}/ok/w.h5`, dest });
    assert.equal(got.requests, 1);
    assert.equal(seen.length, from + 1);
    assert.deepEqual(await readFile(dest), weights);
  });
});
