// A failed gate is a verdict on a valid evaluation, not a failed stage: the evaluation is committed
// and cached, the report is made and says FAILED at the top, latest/ describes this run, and the
// run exits 1, again from the cache on a re-run that computes nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Cache } from '../../runner/cache.js';
import { Rig } from './rig.js';

const PIPELINE = (gate: string): string => `name: tiny
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
    with: { on: both, backend: wasm, gate: ${gate} }
  report:
    uses: report
    inputs: { evaluation: evaluate, model: finetune }
`;

const rigs: Rig[] = [];
after(async () => {
  for (const r of rigs) await r.cleanup();
});

/** The run id that `pipe run` printed. */
function runIdOf(stderr: string): string {
  const id = /pipe run \S+ \((\S+)\)/.exec(stderr)?.[1];
  assert.ok(id, `no run id in:\n${stderr}`);
  return id;
}

/** meta.json of the entry latest/tiny/<stage> points at. */
async function latestMeta(rig: Rig, stage: string): Promise<{ runId: string; verdict?: { passed: boolean; message: string } }> {
  const key = await new Cache(rig.path('.pipe')).latestKey('tiny', stage);
  assert.ok(key, `no latest/${stage}`);
  return JSON.parse(await readFile(rig.path('.pipe/cache', key, 'meta.json'), 'utf8'));
}

test(
  'a failed gate still reports: evaluation cached, report made with the verdict on top, latest/ of this run, exit 1, and again from the cache',
  { timeout: 240_000 },
  async () => {
    const rig = await Rig.create();
    rigs.push(rig);
    // No softmax reaches a log loss of 0: this gate always fails.
    await rig.write('p.yaml', PIPELINE('{ log_loss: 0 }'));
    const first = await rig.run(['run', 'p.yaml']);
    const out = first.stdout + first.stderr;
    assert.equal(first.code, 1, out);
    const runId = runIdOf(first.stderr);
    assert.match(out, /✗ gate failed: log_loss \d\.\d{4} is above the gate 0/);
    assert.match(out, /5 stages: 5 ran, 0 cached in [^\n]*; evaluate: gate failed: log_loss/, 'the summary says the gate failed');
    // The printed report is this run's view of the cached one (run id, timings: outside the cache).
    assert.match(out, new RegExp(`^report: \\.pipe/runs/${runId}/report/index\\.html$`, 'm'));
    const view = await rig.read(`.pipe/runs/${runId}/report/report.md`);
    assert.match(view.split('\n').slice(0, 6).join('\n'), /❌ \*\*FAILED — evaluate: gate failed/);
    assert.ok(view.includes(`run \`${runId}\``), 'the run view names its run');

    // Every stage of latest/ is this run's, the evaluation and the report included.
    for (const stage of ['photos', 'split', 'finetune', 'evaluate', 'report']) {
      assert.equal((await latestMeta(rig, stage)).runId, runId, `latest/${stage} is from this run`);
    }
    assert.equal((await latestMeta(rig, 'evaluate')).verdict?.passed, false);
    const gate = JSON.parse(await rig.read('.pipe/latest/tiny/evaluate/gate.json')) as { gate: unknown; passed: boolean; failures: string[] };
    assert.deepEqual(gate.gate, { log_loss: 0 });
    assert.equal(gate.passed, false);
    assert.ok((await rig.read('.pipe/latest/tiny/evaluate/submission.csv')).startsWith('id,label\n'), "the failing model's submission is there");

    const md = await rig.read('.pipe/latest/tiny/report/report.md');
    const firstLines = md.split('\n').slice(0, 6).join('\n');
    assert.match(firstLines, /❌ \*\*FAILED — evaluate: gate failed: log\\_loss \d\.\d{4} is above the gate 0\*\*/, md.slice(0, 400));
    const html = await rig.read('.pipe/latest/tiny/report/index.html');
    const banner = html.indexOf('class="verdict failed"');
    assert.ok(banner > 0 && banner < html.indexOf('id="results"'), 'the HTML report shows the verdict before the results');

    // The same gate again: everything from the cache, nothing computed, exit 1 again.
    const again = await rig.run(['run', 'p.yaml']);
    const out2 = again.stdout + again.stderr;
    assert.equal(again.code, 1, out2);
    assert.match(out2, /5 stages: 0 ran, 5 cached in [^\n]*; evaluate: gate failed/);
    const record = (await readFile(rig.path('.pipe/runs', `${runIdOf(again.stderr)}.jsonl`), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; status?: string });
    assert.equal(record.filter((e) => e.type === 'stage-start').length, 0, 'nothing ran');
    assert.equal(record.find((e) => e.type === 'run-end')?.status, 'failed');
    // The report came from the cache; its run view is this run's, the stages "cached from" the first.
    const againId = runIdOf(again.stderr);
    assert.match(out2, new RegExp(`^report: \\.pipe/runs/${againId}/report/index\\.html$`, 'm'));
    const againView = await rig.read(`.pipe/runs/${againId}/report/report.md`);
    assert.ok(againView.includes(`run \`${againId}\``), againView.slice(0, 300));
    assert.match(againView, new RegExp(`^\\| evaluate \\| evaluate \\| .* cached from run ${runId} \\|$`, 'm'));
    assert.match(againView, /^> ❌ \*\*FAILED/m);
    assert.match(await rig.read(`.pipe/runs/${againId}/report/index.html`), /<section id="runs">\n<h2>Earlier runs<\/h2>/);
    assert.equal(await rig.read('.pipe/latest/tiny/report/report.md'), md, 'the cached report is the same bytes');

    // A gate the model passes: evaluate re-runs (its key changed), and so does the report (gate.json changed).
    const passed = await rig.run(['run', 'p.yaml', '--set', 'stages.evaluate.with.gate.log_loss=100']);
    const out3 = passed.stdout + passed.stderr;
    assert.equal(passed.code, 0, out3);
    assert.match(out3, /5 stages: 2 ran, 3 cached in \S+\n/);
    const md3 = await rig.read('.pipe/latest/tiny/report/report.md');
    assert.match(md3.split('\n').slice(0, 6).join('\n'), /✅ \*\*evaluate: gate passed: log\\_loss \d\.\d{4} ≤ 100\*\*/);
    assert.doesNotMatch(md3, /FAILED/);
  },
);
