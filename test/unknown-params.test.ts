// Issue 15 item 8: a name the pipeline does not declare is an error, never accepted silently.
// `-p`, `--set params.*`, a `--params-file` key and `--sweep params.*` each name the flag or
// file they came from, suggest the closest declared param, and exit 2 before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { loadPipeline } from '../runner/load.js';
import { registry } from '../stages/registry.js';
import { diagnosticLine } from '../runner/diagnostics.js';
import { unknownParam } from '../runner/overrides.js';
import { Rig } from './e2e/rig.js';

const PIPELINE = `name: u
params:
  seed: 42
  model: { lr: 0.1, layers: 2 }
  opts: ~
stages:
  a:
    uses: command
    with: { run: "echo \${params.seed} >> $COUNTERS/a" }
`;

test('unknownParam: declared names pass, others say what is declared and the closest one', () => {
  const declared = { seed: 1, model: { lr: 0.1 }, opts: null };
  assert.equal(unknownParam(declared, ['seed']), undefined);
  assert.equal(unknownParam(declared, ['model', 'lr']), undefined);
  assert.equal(unknownParam(declared, ['opts', 'anything']), undefined, 'below a declared null, keys may be added');
  assert.equal(unknownParam(declared, ['seeds']), "the pipeline declares no param 'seeds' (did you mean 'seed'?); params: seed, model, opts");
  assert.equal(unknownParam(declared, ['model', 'lrr']), "params.model has no key 'lrr' (did you mean 'lr'?); keys: lr");
  assert.equal(unknownParam(undefined, ['seed']), "the pipeline declares no param 'seed'; declare it under `params:` first");
});

test('load: -p, --set params.* and --params-file may only change declared params, each located', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    await rig.write('over.yaml', 'seed: 1\nmodel:\n  lr: 0.5\n  dropout: 0.2\nsede: 3\n');
    const r = await loadPipeline('p.yaml', {
      cwd: rig.dir,
      registry,
      params: ['nosuch=1', 'seed=7', 'model.layer=3'],
      set: ['params.sed=2', 'params.opts.x=1'],
      paramsFile: 'over.yaml',
    });
    assert.ok(!r.ok);
    assert.deepEqual(r.errors.map(diagnosticLine), [
      "-p nosuch=1: params.nosuch: the pipeline declares no param 'nosuch'; params: seed, model, opts",
      "-p model.layer=3: params.model.layer: params.model has no key 'layer' (did you mean 'layers'?); keys: lr, layers",
      "--set params.sed=2: params.sed: the pipeline declares no param 'sed' (did you mean 'seed'?); params: seed, model, opts",
      "over.yaml:4:3: params.model.dropout: params.model has no key 'dropout'; keys: lr, layers",
      "over.yaml:5:1: params.sede: the pipeline declares no param 'sede' (did you mean 'seed'?); params: seed, model, opts",
    ]);
    const ok = await loadPipeline('p.yaml', { cwd: rig.dir, registry, params: ['seed=7', 'model.lr=0.2'], set: ['params.opts.x=1'] });
    assert.ok(ok.ok, ok.ok ? '' : ok.errors.map(diagnosticLine).join('\n'));
    assert.deepEqual(ok.value.params, { seed: 7, model: { lr: 0.2, layers: 2 }, opts: { x: 1 } });
  } finally {
    await rig.cleanup();
  }
});

test('the CLI: -p, --params-file and --sweep with an undeclared param exit 2 with did-you-mean, and run nothing', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    await rig.write('over.yaml', 'sed: 3\n');
    const cases: [string[], RegExp][] = [
      [['run', 'p.yaml', '-p', 'sed=1'], /^-p sed=1: params\.sed: the pipeline declares no param 'sed' \(did you mean 'seed'\?\)/m],
      [['run', 'p.yaml', '--params-file', 'over.yaml'], /^over\.yaml:1:1: params\.sed: the pipeline declares no param 'sed' \(did you mean 'seed'\?\)/m],
      [['run', 'p.yaml', '--sweep', 'params.sede=1,2'], /^--sweep params\.sede=1,2: the pipeline declares no param 'sede' \(did you mean 'seed'\?\)/m],
      [['validate', 'p.yaml', '-p', 'nosuch=1'], /^-p nosuch=1: params\.nosuch: the pipeline declares no param 'nosuch'/m],
      [['status', 'p.yaml', '--set', 'params.model.lrr=1'], /params\.model has no key 'lrr' \(did you mean 'lr'\?\)/],
    ];
    for (const [args, message] of cases) {
      const r = await rig.run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    assert.equal(await rig.count('a'), 0, 'nothing ran');
    assert.deepEqual(await readdir(rig.path('.pipe')).catch(() => []), [], 'no run record either');
    const good = await rig.run(['run', 'p.yaml', '-p', 'seed=7']);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(await rig.count('a'), 1);
  } finally {
    await rig.cleanup();
  }
});

test('pipelines/dogscats.yaml suggests a GPU run that names a real setting', async () => {
  const { readFile } = await import('node:fs/promises');
  const { REPO } = await import('./e2e/rig.js');
  const text = await readFile(`${REPO}/pipelines/dogscats.yaml`, 'utf8');
  assert.doesNotMatch(text, /-p provider=/, 'provider is not a param of dogscats: -p provider=ec2 is refused');
  assert.match(text, /--set stages\.host\.with\.provider=ec2/);
});
