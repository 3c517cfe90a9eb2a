// End to end: the real `pipe` binary on pipelines of command stages, in temp dirs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, readlink, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { Rig, collect, fakeStage } from './rig.js';

// a -> b -> d, a -> c -> d ; e independent
function diamond(opts: { aText?: string; aExtra?: string; bText?: string; cFail?: boolean } = {}): string {
  return `name: diamond
params:
  greeting: ${opts.bText ?? 'hello'}
stages:
  a:
    uses: command
    with:
      workdir: out
      run: '${fakeStage('a', opts.aText ?? 'A', opts.aExtra ?? '')}'
  b:
    uses: command
    inputs: { src: a }
    with:
      workdir: out
      run: 'echo run >> "$COUNTERS/b"; cat "$PIPE_IN_SRC/out.txt" > out.txt; echo \${params.greeting} >> out.txt'
  c:
    uses: command
    inputs: { src: a }
    with:
      workdir: out
      run: '${opts.cFail ? 'echo run >> "$COUNTERS/c"; echo "something broke" >&2; exit 3' : fakeStage('c', 'C')}'
  d:
    uses: command
    inputs: { left: b, right: c }
    with:
      workdir: out
      run: 'echo run >> "$COUNTERS/d"; cat "$PIPE_IN_LEFT/out.txt" "$PIPE_IN_RIGHT/out.txt" > out.txt'
  e:
    uses: command
    with:
      workdir: out
      run: '${fakeStage('e', 'E')}'
`;
}

async function counts(rig: Rig): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of ['a', 'b', 'c', 'd', 'e']) out[s] = await rig.count(s);
  return out;
}

test('second run with nothing changed runs nothing; a param change re-runs exactly what depends on it', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', diamond());
    const first = await rig.run(['run', 'p.yaml']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(await counts(rig), { a: 1, b: 1, c: 1, d: 1, e: 1 });
    assert.match(await rig.read('.pipe/latest/diamond/d/out.txt'), /^Ahello\nC$/);

    const second = await rig.run(['run', 'p.yaml']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(await counts(rig), { a: 1, b: 1, c: 1, d: 1, e: 1 });
    for (const s of ['a', 'b', 'c', 'd', 'e']) assert.match(second.stderr, new RegExp(`✓ ${s} cached`));

    // -p changes the pipeline param used only by b: b and d re-run, a, c, e stay cached.
    const third = await rig.run(['run', 'p.yaml', '-p', 'greeting=bonjour']);
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual(await counts(rig), { a: 1, b: 2, c: 1, d: 2, e: 1 });
    assert.match(await rig.read('.pipe/latest/diamond/d/out.txt'), /^Abonjour\nC$/);
  } finally {
    await rig.cleanup();
  }
});

test('early cut-off: an upstream re-run with byte-identical output keeps dependents cached', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', diamond());
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    // A different command line for `a` that writes the same bytes.
    await rig.write('p.yaml', diamond({ aExtra: 'true;' }));
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await counts(rig), { a: 2, b: 1, c: 1, d: 1, e: 1 });
    assert.match(r.stderr, /same output as before/);
    // A change of a's output re-runs everything below it.
    await rig.write('p.yaml', diamond({ aText: 'A2' }));
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    assert.deepEqual(await counts(rig), { a: 3, b: 2, c: 2, d: 2, e: 1 });
  } finally {
    await rig.cleanup();
  }
});

test('--dry-run explains; --only needs cached upstream; --from and --until select', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', diamond());
    const dry = await rig.run(['run', 'p.yaml', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, /run\s+a\s+new/);
    assert.match(dry.stderr, /waits\s+b/);
    assert.deepEqual(await counts(rig), { a: 0, b: 0, c: 0, d: 0, e: 0 });

    const missing = await rig.run(['run', 'p.yaml', '--only', 'b']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /✗ a not selected and not in the cache/);
    assert.equal(await rig.count('b'), 0);

    const until = await rig.run(['run', 'p.yaml', '--until', 'b']);
    assert.equal(until.code, 0, until.stderr);
    assert.deepEqual(await counts(rig), { a: 1, b: 1, c: 0, d: 0, e: 0 });

    const only = await rig.run(['run', 'p.yaml', '--only', 'b', '--force']);
    assert.equal(only.code, 0, only.stderr);
    assert.deepEqual(await counts(rig), { a: 1, b: 2, c: 0, d: 0, e: 0 });

    const from = await rig.run(['run', 'p.yaml', '--from', 'c']);
    assert.equal(from.code, 0, from.stderr);
    assert.deepEqual(await counts(rig), { a: 1, b: 2, c: 1, d: 1, e: 0 });

    await rig.write('p.yaml', diamond({ bText: 'salut' }));
    const why = await rig.run(['run', 'p.yaml', '--dry-run']);
    assert.match(why.stderr, /run\s+b\s+params changed: run/);
    assert.match(why.stderr, /run\s+e\s+new/);

    const bad = await rig.run(['run', 'p.yaml', '--only', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--only: no stage named nope/);
  } finally {
    await rig.cleanup();
  }
});

test('a failure skips its dependents, prints the log tail and exits 1; --keep-going runs the rest', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', diamond({ cFail: true }));
    const r = await rig.run(['run', 'p.yaml', '-j', '1', '--keep-going']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /✗ c command failed \(exit code 3\)/);
    assert.match(r.stderr, /\| something broke/);
    assert.match(r.stderr, /full log: .*c\.log/);
    assert.match(r.stderr, /- d skipped: upstream c failed/);
    assert.equal(await rig.count('e'), 1);
    assert.equal(await rig.count('b'), 1);
    assert.equal(await rig.count('d'), 0);
    // No artifact of the failed stage, no temp dirs left.
    assert.deepEqual(await readdir(rig.path('.pipe/tmp')), []);
    const status = await rig.run(['status', 'p.yaml', '--json']);
    const rows = JSON.parse(status.stdout).stages as { stage: string; state: string }[];
    assert.deepEqual(Object.fromEntries(rows.map((s) => [s.stage, s.state])), { a: 'cached', b: 'cached', c: 'never-run', d: 'blocked', e: 'cached' });
  } finally {
    await rig.cleanup();
  }
});

test('run record, latest links, verify detects corruption, gc removes unreferenced entries', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', diamond());
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const [record] = await rig.runRecords();
    const types = record!.map((e) => `${e.type}${e.stage ? `:${e.stage}` : ''}`);
    assert.equal(types[0], 'run-start');
    assert.equal(types.at(-1), 'run-end');
    assert.ok(types.includes('stage-finish:d'));
    const start = record![0] as { params: Record<string, unknown> };
    assert.deepEqual(start.params, { greeting: 'hello' });
    const link = await readlink(rig.path('.pipe/latest/diamond/a'));
    assert.match(link, /cache\/[0-9a-f]{64}\/data$/);

    const ok = await rig.run(['verify', 'p.yaml']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /5 artifacts verified, 0 corrupt/);
    await appendFile(rig.path('.pipe/latest/diamond/b/out.txt'), 'tampered');
    const bad = await rig.run(['verify', 'p.yaml']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /CORRUPT b/);
    assert.match(bad.stdout, /out\.txt: size/);

    // Change e: its old entry is no longer referenced by latest, gc removes exactly that one.
    await writeFile(rig.path('p.yaml'), diamond().replace("'E'", "'E2'").replace('"E"', '"E2"'));
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const before = (await readdir(rig.path('.pipe/cache'))).length;
    const gc = await rig.run(['gc', 'p.yaml']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.equal((await readdir(rig.path('.pipe/cache'))).length, before - 1);
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    assert.equal(await rig.count('e'), 2);
  } finally {
    await rig.cleanup();
  }
});

test('Ctrl-C: running stages are aborted, exit 130, no temp dirs, nothing half-written cached', async () => {
  const rig = await Rig.create();
  try {
    await rig.write(
      'p.yaml',
      `stages:
  slow:
    uses: command
    with:
      workdir: out
      run: 'echo started; for i in 1 2 3 4 5 6 7 8 9 10; do echo $i >> partial.txt; sleep 0.5; done'
`,
    );
    const child = rig.spawn(['run', 'p.yaml']);
    const done = collect(child);
    // Wait until the stage is really running (its first output line).
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        if (d.toString().includes('started')) resolve();
      });
    });
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(await readdir(rig.path('.pipe/tmp')), []);
    assert.deepEqual(await readdir(rig.path('.pipe/cache')), []);
    const [record] = await rig.runRecords();
    assert.equal((record!.at(-1) as { status: string }).status, 'interrupted');
  } finally {
    await rig.cleanup();
  }
});

test('independent stages run concurrently with -j 2; two runs at once compute each stage once', async () => {
  const rig = await Rig.create();
  try {
    const slow = (n: string): string => `echo run >> "$COUNTERS/${n}"; sleep 1; echo ${n} > out.txt`;
    await rig.write(
      'p.yaml',
      `stages:\n  x:\n    uses: command\n    with: { workdir: out, run: '${slow('x')}' }\n  y:\n    uses: command\n    with: { workdir: out, run: '${slow('y')}' }\n`,
    );
    const [r1, r2] = await Promise.all([rig.run(['run', 'p.yaml', '-j', '2']), rig.run(['run', 'p.yaml', '-j', '2'])]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(await rig.count('x'), 1);
    assert.equal(await rig.count('y'), 1);
    // In the run that computed them, both started before either finished.
    const records = await rig.runRecords();
    const computing = records.find((r) => r.some((e) => e.type === 'stage-finish'))!;
    const idx = (t: string, s: string): number => computing.findIndex((e) => e.type === t && e.stage === s);
    const starts = [idx('stage-start', 'x'), idx('stage-start', 'y')];
    const finishes = [idx('stage-finish', 'x'), idx('stage-finish', 'y')].filter((i) => i >= 0);
    if (starts.every((i) => i >= 0) && finishes.length === 2) assert.ok(Math.max(...starts) < Math.min(...finishes));
    const verify = await rig.run(['verify', 'p.yaml', '--all']);
    assert.match(verify.stdout, /2 artifacts verified, 0 corrupt/);
  } finally {
    await rig.cleanup();
  }
});

test('command stage: PIPE_PARAMS, env, deps files in the key, log.txt in the artifact', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('train.py', 'print(1)\n');
    await rig.write(
      'p.yaml',
      `stages:
  t:
    uses: command
    with:
      workdir: out
      run: ['sh', '-c', 'echo run >> "$COUNTERS/t"; echo "$PIPE_PARAMS" > params.json; echo "mode=$MODE"']
      deps: ['*.py']
      env: { MODE: fast }
`,
    );
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    assert.match(await rig.read('.pipe/latest/p/t/log.txt'), /mode=fast/);
    assert.equal(JSON.parse(await rig.read('.pipe/latest/p/t/params.json')).env.MODE, 'fast');
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    assert.equal(await rig.count('t'), 1);
    await rig.write('train.py', 'print(2)\n');
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(await rig.count('t'), 2, r.stderr);
    assert.match(r.stderr, /running \(dependency files changed\)/);
  } finally {
    await rig.cleanup();
  }
});

test('invalid pipeline: located error, exit 2, no stack trace', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('bad.yaml', 'stages:\n  a:\n    uses: command\n    with:\n      run: 12\n      nope: true\n');
    const r = await rig.run(['run', 'bad.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:\d+:\d+: stages\.a\.with/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    const v = await rig.run(['validate', 'bad.yaml']);
    assert.equal(v.code, 2);
    const help = await rig.run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /run \[options\] <file>/);
  } finally {
    await rig.cleanup();
  }
});

test('the stage log lands in .pipe/logs and meta.json records how the artifact was made', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', `stages:\n  s:\n    uses: command\n    with: { workdir: out, run: 'echo hi; echo out > o.txt' }\n`);
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const link = await readlink(rig.path('.pipe/latest/p/s'));
    const entry = path.dirname(path.resolve(rig.path('.pipe/latest/p'), link));
    const meta = JSON.parse(await readFile(path.join(entry, 'meta.json'), 'utf8'));
    assert.equal(meta.uses, 'command');
    assert.equal(meta.kind, 'files');
    assert.equal(meta.key, path.basename(entry));
    const manifest = JSON.parse(await readFile(path.join(entry, 'manifest.json'), 'utf8')) as { path: string }[];
    assert.deepEqual(
      manifest.map((m) => m.path),
      ['log.txt', 'o.txt'],
    );
    const logs = await readdir(rig.path('.pipe/logs'));
    assert.equal(logs.length, 1);
    assert.match(await rig.read(`.pipe/logs/${logs[0]}/s.log`), /info hi/);
  } finally {
    await rig.cleanup();
  }
});
