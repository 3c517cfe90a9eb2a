// Disk full: the cache on a small tmpfs (the tests run as root; skipped where `mount` is refused),
// a stage that writes more than fits. The run must fail with exit 1 and a one-line "no space left"
// message on the stage's line, no stack trace; the cache must stay valid (verify clean, nothing
// half-written under cache/, no temp dirs) and usable by the next run.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPipe, verifyAll, entryShapeProblems, listDir, STACK_TRACE } from './faults.js';

interface Mounted {
  readonly dir: string;
  readonly cache: string;
  unmount(): Promise<void>;
}

/** A tmpfs of `options` at <tempdir>/cache, or the reason it could not be mounted. */
async function mountTmpfs(options: string): Promise<Mounted | string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-diskfull-'));
  const cache = path.join(dir, 'cache');
  await mkdir(cache);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', cache], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    const err = e as { stderr?: Buffer; message: string };
    return `cannot mount a tmpfs here (${(err.stderr?.toString() || err.message).trim()}); run as root with CAP_SYS_ADMIN to test a full disk`;
  }
  return {
    dir,
    cache,
    async unmount() {
      try {
        execFileSync('umount', [cache], { stdio: 'ignore' });
      } catch {
        // something still holds it (a stray process): detach it so the dir can go
        try {
          execFileSync('umount', ['-l', cache], { stdio: 'ignore' });
        } catch {
          // leave it; rm below fails loudly enough
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function withTmpfs(t: TestContext, options: string, body: (m: Mounted) => Promise<void>): Promise<void> {
  const m = await mountTmpfs(options);
  if (typeof m === 'string') {
    t.skip(m);
    return;
  }
  try {
    await body(m);
  } finally {
    await m.unmount();
  }
}

const PIPELINE = (fillCommand: string): string => `name: full
params:
  bytes: 20000000
stages:
  small:
    uses: command
    with: { workdir: out, run: 'echo small > s.txt' }
  fill:
    uses: command
    inputs: { s: small }
    with: { workdir: out, run: 'echo filling; ${fillCommand}' }
`;

async function checkCleanFailure(m: Mounted, file: string, r: { code: number | null; stderr: string; stdout: string }): Promise<void> {
  const out = r.stderr + r.stdout;
  assert.equal(r.code, 1, out);
  assert.doesNotMatch(out, STACK_TRACE, 'a stack trace was printed');
  assert.doesNotMatch(out, /internal error|Unhandled 'error' event|node:events/i, out);
  // The stage's own failure line says why, in words a user can act on.
  const failLine = out.split('\n').find((l) => /✗ fill /.test(l));
  assert.ok(failLine, `no failure line for the stage 'fill':\n${out}`);
  assert.match(failLine, /no space left/i, `the failure line does not say the disk is full: ${failLine}`);
  // The cache is valid: what was committed verifies, nothing of fill is there, no temp dirs.
  const v = await verifyAll(path.dirname(file), path.basename(file), ['--cache-dir', m.cache]);
  assert.equal(v.code, 0, v.raw);
  assert.equal(v.report?.corrupt, 0, v.raw);
  assert.equal(v.report?.verified, 1, `only 'small' should be cached: ${v.raw}`);
  assert.deepEqual(await entryShapeProblems(m.cache), []);
  assert.deepEqual(await listDir(path.join(m.cache, 'tmp')), [], 'the failed stage left its temp dir on the full disk');
}

test('disk full while a stage writes one large file: exit 1, "no space left" naming the stage, cache valid', { timeout: 60_000 }, async (t) => {
  await withTmpfs(t, 'size=8m', async (m) => {
    const file = path.join(m.dir, 'p.yaml');
    await writeFile(file, PIPELINE('head -c ${params.bytes} /dev/zero > big.bin'));
    const r = await runPipe(m.dir, ['run', 'p.yaml', '--cache-dir', m.cache]);
    await checkCleanFailure(m, file, r);
    // The space is back: the same pipeline with a file that fits runs and commits.
    const ok = await runPipe(m.dir, ['run', 'p.yaml', '--cache-dir', m.cache, '-p', 'bytes=1000000']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /✓ small cached/);
    const v = await verifyAll(m.dir, 'p.yaml', ['--cache-dir', m.cache]);
    assert.deepEqual([v.code, v.report?.verified, v.report?.corrupt], [0, 2, 0], v.raw);
  });
});

test('disk full by inodes (many small files): exit 1, "no space left" naming the stage, cache valid', { timeout: 60_000 }, async (t) => {
  await withTmpfs(t, 'size=64m,nr_inodes=400', async (m) => {
    const file = path.join(m.dir, 'p.yaml');
    await writeFile(file, PIPELINE('i=0; while [ $i -lt 2000 ]; do echo $i > f$i.txt || exit 1; i=$((i+1)); done'));
    const r = await runPipe(m.dir, ['run', 'p.yaml', '--cache-dir', m.cache]);
    await checkCleanFailure(m, file, r);
  });
});

test('disk full, and the program says nothing about it: the filesystem is asked, "no space left"', { timeout: 60_000 }, async (t) => {
  await withTmpfs(t, 'size=8m', async (m) => {
    const file = path.join(m.dir, 'p.yaml');
    // Its error message goes nowhere; it just exits 3.
    await writeFile(file, PIPELINE('head -c ${params.bytes} /dev/zero > big.bin 2>/dev/null || exit 3'));
    const r = await runPipe(m.dir, ['run', 'p.yaml', '--cache-dir', m.cache]);
    assert.match(r.stderr + r.stdout, /command failed \(exit code 3\): no space left on device/);
    await checkCleanFailure(m, file, r);
  });
});

test('disk full: the run record and the stage log may not be writable either, and that is not a crash', { timeout: 60_000 }, async (t) => {
  // The stage fills the disk with a file that it keeps (exit 0): the runner's own writes (log,
  // manifest, meta, run record) then hit ENOSPC. The commit must fail cleanly, not crash.
  await withTmpfs(t, 'size=8m', async (m) => {
    const file = path.join(m.dir, 'p.yaml');
    await writeFile(
      file,
      PIPELINE(
        'head -c ${params.bytes} /dev/zero > big.bin; i=0; while [ $i -lt 3000 ]; do echo "line $i of output after the disk is full"; i=$((i+1)); done; true',
      ),
    );
    const r = await runPipe(m.dir, ['run', 'p.yaml', '--cache-dir', m.cache]);
    await checkCleanFailure(m, file, r);
    assert.deepEqual((await readdir(path.join(m.cache, 'cache'))).length, 1);
  });
});
