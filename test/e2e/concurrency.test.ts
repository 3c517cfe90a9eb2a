// Several `pipe run`s at once on one cache dir (--cache-dir): the same pipeline, and different
// pipelines that share a stage (same key). All must exit 0, each key must be computed exactly
// once (counter files appended by the commands), and the cache must verify clean. The heavy
// variant (8 runs, more rounds) is bench/torture.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { concurrentPipeline, concurrentRuns, type ConcurrentOutcome } from './faults.js';

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-conc-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function allOk(o: ConcurrentOutcome): void {
  o.results.forEach((r, i) => {
    assert.equal(r.timedOut, false, `run ${i} timed out:\n${r.stderr}`);
    assert.equal(r.code, 0, `run ${i} exited ${r.code}:\n${r.stderr}`);
  });
  assert.equal(o.verify.code, 0, o.verify.raw);
  assert.equal(o.verify.report?.corrupt, 0, o.verify.raw);
  assert.deepEqual(o.shape, []);
  assert.deepEqual(o.tmpLeft, []);
}

/** How many of the runs computed a stage vs. took it from the cache (from their output). */
function tally(o: ConcurrentOutcome, stage: string): { ran: number; cached: number } {
  let ran = 0;
  let cached = 0;
  for (const r of o.results) {
    if (new RegExp(`✓ ${stage} cached`).test(r.stderr)) cached++;
    else if (new RegExp(`✓ ${stage} \\d`).test(r.stderr)) ran++;
  }
  return { ran, cached };
}

for (const runs of [2, 4]) {
  test(`${runs} runs of the same pipeline at once: all exit 0, each stage computed once, verify clean`, { timeout: 120_000 }, async () => {
    await withDir(async (dir) => {
      const salt = `same${runs}`;
      await writeFile(path.join(dir, 'p.yaml'), concurrentPipeline('p', salt));
      const o = await concurrentRuns(dir, path.join(dir, 'shared-cache'), ['p.yaml'], runs, [`shared-${salt}`, `own-p-${salt}`, `last-p-${salt}`]);
      allOk(o);
      assert.deepEqual(o.counts, { [`shared-${salt}`]: 1, [`own-p-${salt}`]: 1, [`last-p-${salt}`]: 1 });
      for (const s of ['shared', 'own', 'last']) assert.deepEqual(tally(o, s), { ran: 1, cached: runs - 1 }, s);
      assert.equal(o.verify.report?.verified, 3);
      assert.equal(await readFile(path.join(dir, 'shared-cache/latest/p/last/out.txt'), 'utf8'), `300\np\n0 ${salt}\n`);
    });
  });

  test(`${runs} runs of different pipelines sharing a stage, one cache: shared key computed once, verify clean`, { timeout: 120_000 }, async () => {
    await withDir(async (dir) => {
      const salt = `diff${runs}`;
      const names = ['p1', 'p2'];
      for (const n of names) await writeFile(path.join(dir, `${n}.yaml`), concurrentPipeline(n, salt));
      const counters = [`shared-${salt}`, ...names.flatMap((n) => [`own-${n}-${salt}`, `last-${n}-${salt}`])];
      const o = await concurrentRuns(
        dir,
        path.join(dir, 'shared-cache'),
        names.map((n) => `${n}.yaml`),
        runs,
        counters,
      );
      allOk(o);
      // shared: one key for both pipelines; own/last: one key per pipeline.
      assert.deepEqual(o.counts, Object.fromEntries(counters.map((c) => [c, 1])));
      assert.deepEqual(tally(o, 'shared'), { ran: 1, cached: runs - 1 });
      assert.equal(o.verify.report?.verified, 5);
      for (const n of names) {
        assert.equal(await readFile(path.join(dir, `shared-cache/latest/${n}/last/out.txt`), 'utf8'), `300\n${n}\n0 ${salt}\n`);
      }
    });
  });
}
