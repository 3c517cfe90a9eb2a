// Paths that try to leave the cache dir, pipelines that point at themselves, a cache dir that is
// a file: clean, located errors (exit 2), no stack trace, nothing written outside the run's dirs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile, mkdir, rm, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPipe, verifyAll, listDir, STACK_TRACE } from './faults.js';

interface Box {
  /** The pipeline's dir, inside `outer`: anything written to `outer` escaped. */
  readonly dir: string;
  readonly outer: string;
}

async function withBox(body: (b: Box) => Promise<void>): Promise<void> {
  const outer = await mkdtemp(path.join(os.tmpdir(), 'pipe-paths-'));
  const dir = path.join(outer, 'project');
  await mkdir(path.join(dir, 'counters'), { recursive: true });
  try {
    await body({ dir, outer });
  } finally {
    await rm(outer, { recursive: true, force: true });
  }
}

function clean(r: { stderr: string; stdout: string }): void {
  const out = r.stderr + r.stdout;
  assert.doesNotMatch(out, STACK_TRACE, `stack trace:\n${out}`);
  assert.doesNotMatch(out, /internal error/, out);
}

/** Nothing but the project dir in `outer`, nothing but the pipeline, counters and .pipe in it. */
async function nothingEscaped(b: Box): Promise<void> {
  assert.deepEqual(await readdir(b.outer), ['project']);
  const inside = (await readdir(b.dir)).filter((n) => !['counters', '.pipe'].includes(n) && !n.endsWith('.yaml'));
  assert.deepEqual(inside, []);
}

const cmd = (run: string): string => `{ uses: command, with: { workdir: out, run: '${run}' } }`;

test('stage and pipeline names that try to climb out of the cache dir are refused, located', async () => {
  await withBox(async (b) => {
    const cases: [string, RegExp][] = [
      [`stages:\n  ../../escape: ${cmd('echo x > o.txt')}\n`, /p\.yaml:2:3: stages\.\.\.\/\.\.\/escape: invalid stage name/],
      [`stages:\n  "a/../../b": ${cmd('echo x > o.txt')}\n`, /p\.yaml:2:3: .*invalid stage name/],
      [`stages:\n  "..": ${cmd('echo x > o.txt')}\n`, /p\.yaml:2:3: .*invalid stage name/],
      [`stages:\n  "/etc": ${cmd('echo x > o.txt')}\n`, /p\.yaml:2:3: .*invalid stage name/],
      [`name: ../../evil\nstages:\n  a: ${cmd('echo x > o.txt')}\n`, /p\.yaml:1:7: name: must be a name/],
      [`name: ..\nstages:\n  a: ${cmd('echo x > o.txt')}\n`, /p\.yaml:1:7: name: must be a name/],
      [`name: "a/b"\nstages:\n  a: ${cmd('echo x > o.txt')}\n`, /p\.yaml:1:7: name: must be a name/],
    ];
    for (const [i, [yaml, expected]] of cases.entries()) {
      await writeFile(path.join(b.dir, 'p.yaml'), yaml);
      // `run` goes through the same front end: checked for the first stage and pipeline case.
      for (const command of i === 0 || i === 4 ? ['validate', 'run'] : ['validate']) {
        const r = await runPipe(b.dir, [command, 'p.yaml']);
        assert.equal(r.code, 2, `${command} of:\n${yaml}\n${r.stderr}`);
        assert.match(r.stderr, expected);
        clean(r);
      }
    }
    await nothingEscaped(b);
    assert.deepEqual(await listDir(path.join(b.dir, '.pipe/cache')), []);
  });
});

test('--set, -p and --only cannot name a path outside the pipeline either', async () => {
  await withBox(async (b) => {
    await writeFile(path.join(b.dir, 'p.yaml'), `stages:\n  a: ${cmd('echo x > o.txt')}\n`);
    const cases: [string[], RegExp][] = [
      [['--set', 'stages.../../x.with.run=1'], /--set stages\.\.\.\/\.\.\/x\.with\.run=1: .*invalid path/],
      [['--set', 'stages.a/../b.with.run=1'], /--set stages\.a\/\.\.\/b\.with\.run=1: .*(no stage named a\/\.\.\/b|invalid path)/],
      [['--set', 'name=../../evil'], /name: must be a name/],
      [['--only', '../a'], /--only: no stage named \.\.\/a/],
      [['--from', '../../a'], /--from: no stage named/],
    ];
    for (const [args, expected] of cases) {
      const r = await runPipe(b.dir, ['run', 'p.yaml', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, expected);
      clean(r);
    }
    await nothingEscaped(b);
  });
});

test('a stage whose inputs, needs or runs_on point at itself, or a cycle: located errors, nothing runs', async () => {
  await withBox(async (b) => {
    const count = (n: string): string => `echo run >> \\"$COUNTERS/${n}\\"; echo x > o.txt`;
    const cases: [string, RegExp[]][] = [
      [
        `stages:\n  a:\n    uses: command\n    inputs: { src: a }\n    with: { workdir: out, run: "${count('a')}" }\n`,
        [/p\.yaml:4:20: stages\.a\.inputs\.src: a stage cannot take its own output as input/],
      ],
      [
        `stages:\n  a:\n    uses: command\n    needs: [a]\n    with: { workdir: out, run: "${count('a')}" }\n`,
        [/p\.yaml:4:13: stages\.a\.needs\[0\]: a stage cannot need itself/],
      ],
      [
        `stages:\n  a:\n    uses: command\n    runs_on: a\n    with: { workdir: out, run: "${count('a')}" }\n`,
        [/p\.yaml:4:14: stages\.a\.runs_on: a stage cannot run on itself/],
      ],
      [
        `stages:\n  a:\n    uses: command\n    inputs: { src: c }\n    with: { workdir: out, run: "${count('a')}" }\n  b:\n    uses: command\n    inputs: { src: a }\n    with: { workdir: out, run: "${count('b')}" }\n  c:\n    uses: command\n    inputs: { src: b }\n    with: { workdir: out, run: "${count('c')}" }\n`,
        [
          /p\.yaml:\d+:\d+: stages\.\w\.inputs\.src: cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/,
          /note: p\.yaml:\d+:\d+: stages\.\w\.inputs\.src: \w depends on \w/,
        ],
      ],
    ];
    for (const [i, [yaml, expected]] of cases.entries()) {
      await writeFile(path.join(b.dir, 'p.yaml'), yaml);
      for (const command of i === cases.length - 1 ? ['validate', 'run', 'status', 'graph'] : ['validate']) {
        const r = await runPipe(b.dir, [command, 'p.yaml']);
        assert.equal(r.code, 2, `${command}:\n${yaml}\n${r.stderr}${r.stdout}`);
        for (const e of expected) assert.match(r.stderr, e, `${command}:\n${yaml}`);
        clean(r);
      }
    }
    assert.deepEqual(await listDir(path.join(b.dir, 'counters')), []);
  });
});

// BUG (reported): `run --cache-dir <a file>` dies with "internal error: ENOTDIR ... mkdir", and
// `status`/`verify` quietly report an empty cache (exit 0). Expected: exit 2 and a message that
// names the setting and the path.
test('a cache dir that is a file (flag, env, or cache.dir): exit 2 with a clear message, for every command', async () => {
  await withBox(async (b) => {
    await writeFile(path.join(b.dir, 'p.yaml'), `stages:\n  a: ${cmd('echo run >> $COUNTERS/a; echo x > o.txt')}\n`);
    await writeFile(path.join(b.dir, 'afile'), 'not a directory\n');
    const settings: { args: string[]; env: Record<string, string>; yaml?: string; origin: RegExp }[] = [
      { args: ['--cache-dir', 'afile'], env: {}, origin: /--cache-dir/ },
      { args: ['--cache-dir', 'afile/sub'], env: {}, origin: /--cache-dir/ },
      { args: [], env: { PIPE_CACHE_DIR: path.join(b.dir, 'afile') }, origin: /PIPE_CACHE_DIR/ },
      {
        args: [],
        env: {},
        yaml: `cache: { dir: afile }\nstages:\n  a: ${cmd('echo run >> $COUNTERS/a; echo x > o.txt')}\n`,
        origin: /p\.yaml:1:\d+: cache\.dir/,
      },
    ];
    for (const [i, s] of settings.entries()) {
      if (s.yaml) await writeFile(path.join(b.dir, 'p.yaml'), s.yaml);
      // Every command for the flag; `run` (the one that creates the cache) for the others.
      for (const command of i === 0 ? [['run'], ['status'], ['verify'], ['verify', '--all']] : [['run']]) {
        const r = await runPipe(b.dir, [command[0]!, 'p.yaml', ...command.slice(1), ...s.args], s.env);
        const what = `${command.join(' ')} ${s.args.join(' ')} ${JSON.stringify(s.env)}`;
        clean(r);
        assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}${r.stdout}`);
        assert.match(r.stderr, /not a directory/i, what);
        assert.match(r.stderr, /afile/, what);
        assert.match(r.stderr, s.origin, what);
      }
    }
    // gc takes the dir without a pipeline: a clean refusal too.
    const gc = await runPipe(b.dir, ['gc', '--cache-dir', 'afile']);
    clean(gc);
    assert.equal(gc.code, 2, gc.stderr);
    assert.match(gc.stderr, /afile/);
    assert.equal(await readFile(path.join(b.dir, 'afile'), 'utf8'), 'not a directory\n');
    assert.deepEqual(await listDir(path.join(b.dir, 'counters')), []);
  });
});

test("what a stage writes outside its output dir is not part of it, and can't damage the commit", async () => {
  await withBox(async (b) => {
    // The stage scribbles over the files the runner writes next to data/ (manifest, meta).
    await writeFile(
      path.join(b.dir, 'p.yaml'),
      `stages:\n  a: ${cmd('echo garbage > ../manifest.json; echo garbage > ../meta.json; mkdir -p ../data2; echo x > o.txt')}\n`,
    );
    const r = await runPipe(b.dir, ['run', 'p.yaml']);
    assert.equal(r.code, 0, r.stderr);
    clean(r);
    const v = await verifyAll(b.dir, 'p.yaml');
    assert.deepEqual([v.code, v.report?.verified, v.report?.corrupt], [0, 1, 0], v.raw);
    assert.equal(await readFile(path.join(b.dir, '.pipe/latest/p/a/o.txt'), 'utf8'), 'x\n');
    const again = await runPipe(b.dir, ['run', 'p.yaml']);
    assert.match(again.stderr, /✓ a cached/);
  });
});

test('symbolic links in a stage output (to /etc/passwd, to ..) are refused with a message, nothing cached', async () => {
  await withBox(async (b) => {
    for (const link of ['ln -s /etc/passwd leak', 'ln -s .. up', 'mkdir d; ln -s ../../../../.. d/root']) {
      await writeFile(path.join(b.dir, 'p.yaml'), `stages:\n  a: ${cmd(`echo x > o.txt; ${link}`)}\n`);
      const r = await runPipe(b.dir, ['run', 'p.yaml']);
      assert.equal(r.code, 1, r.stderr);
      clean(r);
      assert.match(r.stderr, /✗ a .*symbolic link/, r.stderr);
      assert.deepEqual(await listDir(path.join(b.dir, '.pipe/cache')), []);
      assert.deepEqual(await listDir(path.join(b.dir, '.pipe/tmp')), []);
    }
  });
});
