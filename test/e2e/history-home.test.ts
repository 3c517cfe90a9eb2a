// `pipe runs`, `diff` and `gc` from the repository root find the cache of pipelines/*.yaml (it is
// beside the pipeline file, in pipelines/.pipe), and `pipe diff FILE` takes the pipeline file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rig } from './rig.js';

const PIPELINE = `name: hist
params:
  lr: 0.1
stages:
  train:
    uses: command
    with:
      run: 'printf "{\\"accuracy\\": %s}" "\${params.lr}" > "$PIPE_OUT/metrics.json"'
`;

test('runs, diff and gc from the repo root use pipelines/.pipe (and say so); diff takes a pipeline file', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('pipelines/p.yaml', PIPELINE);
    assert.equal((await rig.run(['run', 'pipelines/p.yaml'])).code, 0);
    const second = await rig.run(['run', 'pipelines/p.yaml', '-p', 'lr=0.5']);
    assert.equal(second.code, 0, second.stderr);

    const runs = await rig.run(['runs', '--json']);
    assert.equal(runs.code, 0, runs.stderr);
    assert.equal((JSON.parse(runs.stdout) as { runs: unknown[] }).runs.length, 2);
    assert.match(runs.stderr, /using pipelines\/\.pipe/);

    for (const args of [['diff'], ['diff', 'pipelines/p.yaml']]) {
      const d = await rig.run([...args, '--json']);
      assert.equal(d.code, 0, `${args.join(' ')}: ${d.stderr}`);
      const diff = JSON.parse(d.stdout) as { params: { path: string; a: unknown; b: unknown }[]; metrics: { name: string; a: number; b: number }[] };
      assert.deepEqual(diff.params, [{ path: 'params.lr', a: 0.1, b: 0.5 }], args.join(' '));
      assert.deepEqual(
        diff.metrics.map((m) => [m.name, m.a, m.b]),
        [['accuracy', 0.1, 0.5]],
      );
    }
    const tooMany = await rig.run(['diff', 'pipelines/p.yaml', 'a', 'b', 'c']);
    assert.equal(tooMany.code, 2);
    assert.match(tooMany.stderr, /at most two runs/);

    const gc = await rig.run(['gc', '--dry-run']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stderr, /using pipelines\/\.pipe/);

    // Two folders with caches: which one is not guessed; the message says how to choose.
    await rig.write('other/q.yaml', PIPELINE.replace('name: hist', 'name: other'));
    assert.equal((await rig.run(['run', 'other/q.yaml'])).code, 0);
    const ambiguous = await rig.run(['runs']);
    assert.equal(ambiguous.code, 2);
    assert.match(
      ambiguous.stderr,
      /several below it \((other\/\.pipe, pipelines\/\.pipe|pipelines\/\.pipe, other\/\.pipe)\): name a pipeline file .*`pipe runs pipelines\/demo\.yaml`.* or use --cache-dir/,
    );
  } finally {
    await rig.cleanup();
  }
});

test('with no cache anywhere, runs/diff/gc say how to name one (exit 2)', async () => {
  const rig = await Rig.create();
  try {
    for (const cmd of ['runs', 'diff', 'gc']) {
      const r = await rig.run([cmd]);
      assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `no pipe cache at \\S+\\.pipe: name a pipeline file \\(its cache is beside it: \`pipe ${cmd} pipelines/demo\\.yaml\`\\) or use --cache-dir DIR`,
        ),
      );
    }
  } finally {
    await rig.cleanup();
  }
});
