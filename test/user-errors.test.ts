// Issue 15 item 9: what a user can fix is a located message and exit 2, never "internal error":
// a missing `images` path, a path that is a file, a missing weights file (validate, status and
// run all say so before anything runs), an unwritable cache dir, and a reader that closes the
// pipe early (`pipe runs | head -1`) ends quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { Rig, collect, PIPE_BIN } from './e2e/rig.js';

const IMAGES = (p: string): string => `name: u\nstages:\n  photos:\n    uses: images\n    with: { path: ${p} }\n`;

function assertUserError(r: { code: number | null; stderr: string }, what: string, message: RegExp): void {
  assert.equal(r.code, 2, `${what}: ${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.doesNotMatch(r.stderr, /internal error|This is a bug|\n\s+at /, what);
}

test('a missing images path, or one that is a file, is located and exit 2 in validate, status and run', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('missing.yaml', IMAGES('photoz'));
    await rig.write('file.yaml', IMAGES('notes.txt'));
    await rig.write('notes.txt', 'not photos\n');
    for (const cmd of ['validate', 'status', 'run']) {
      assertUserError(
        await rig.run([cmd, 'missing.yaml']),
        `${cmd} missing`,
        /^missing\.yaml:5:19: stages\.photos\.with\.path: photoz does not exist \(resolved against the pipeline folder: .*photoz\)$/m,
      );
      assertUserError(
        await rig.run([cmd, 'file.yaml']),
        `${cmd} file`,
        /^file\.yaml:5:19: stages\.photos\.with\.path: notes\.txt is neither a folder nor a \.zip\/\.tar archive$/m,
      );
    }
    // A path set from the command line is named against its flag.
    await mkdir(rig.path('pics/cat'), { recursive: true });
    await writeFile(rig.path('pics/cat/1.jpg'), 'x');
    assertUserError(
      await rig.run(['validate', 'missing.yaml', '--set', 'stages.photos.with.path=pix']),
      '--set',
      /^--set stages\.photos\.with\.path=pix: stages\.photos\.with\.path: pix does not exist/m,
    );
    const ok = await rig.run(['validate', 'missing.yaml', '--set', 'stages.photos.with.path=pics']);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await rig.cleanup();
  }
});

test('a local weights file that is not there is located by validate', async () => {
  const rig = await Rig.create();
  try {
    await mkdir(rig.path('pics/cat'), { recursive: true });
    await rig.write(
      'p.yaml',
      `stages:\n  photos:\n    uses: images\n    with: { path: pics }\n  split:\n    uses: split\n    inputs: { images: photos }\n    with: { label_from: folder, valid: 1 }\n  train:\n    uses: finetune-vgg16\n    inputs: { dataset: split }\n    with: { weights: models/vgg.h5 }\n`,
    );
    assertUserError(await rig.run(['validate', 'p.yaml']), 'weights', /^p\.yaml:12:22: stages\.train\.with\.weights: models\/vgg\.h5 does not exist/m);
  } finally {
    await rig.cleanup();
  }
});

test('an unwritable cache dir is one clear line and exit 2, before anything runs', { timeout: 60_000 }, async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', 'stages:\n  a:\n    uses: command\n    with: { run: "echo x >> $COUNTERS/a" }\n');
    // Under /proc nothing can be created (and Node's recursive mkdir would spin there forever).
    if (process.platform === 'linux') {
      const child = rig.spawn(['run', 'p.yaml', '--cache-dir', '/proc/pipe-test/cache']);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const proc = await collect(child).finally(() => clearTimeout(timer));
      assert.equal(proc.signal, null, 'it hung: killed after 15 s');
      assertUserError(proc, '/proc', /^--cache-dir: cannot write the cache \/proc\/pipe-test\/cache: cannot be created there/m);
    }
    // A folder without write permission: as root, run as nobody, who may only read it.
    await mkdir(rig.path('ro/cache'), { recursive: true });
    await chmod(rig.dir, 0o755);
    await chmod(rig.path('p.yaml'), 0o644);
    await chmod(rig.path('ro'), 0o555);
    await chmod(rig.path('ro/cache'), 0o555);
    await mkdir(rig.path('counters'), { recursive: true });
    await chmod(rig.path('counters'), 0o777);
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const child = spawn(process.execPath, [PIPE_BIN, 'run', 'p.yaml', '--cache-dir', 'ro/cache'], {
      cwd: rig.dir,
      env: { ...process.env, NO_COLOR: '1', COUNTERS: rig.path('counters'), HOME: rig.dir },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...asNobody,
    });
    assertUserError(
      await collect(child),
      'read-only',
      /^--cache-dir: cannot write the cache .*ro\/cache: permission denied( \(.*\))?\n  hint: choose a writable folder with --cache-dir or PIPE_CACHE_DIR$/m,
    );
    assert.equal(await rig.count('a'), 0, 'nothing ran');
  } finally {
    await chmod(rig.path('ro'), 0o755).catch(() => undefined);
    await chmod(rig.path('ro/cache'), 0o755).catch(() => undefined);
    await rig.cleanup();
  }
});

test('pipe runs into a pipe its reader already closed (pipe runs | head -1) ends quietly', { timeout: 60_000 }, async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', 'stages:\n  a:\n    uses: command\n    with: { run: "echo x" }\n');
    for (let i = 0; i < 2; i++) assert.equal((await rig.run(['run', 'p.yaml', '--force'])).code, 0);
    const child = spawn(process.execPath, [PIPE_BIN, 'runs'], { cwd: rig.dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before pipe writes its first line
    const r = await collect(child);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'no EPIPE stack trace');
  } finally {
    await rig.cleanup();
  }
});
