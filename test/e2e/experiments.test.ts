// End to end: run history, `pipe runs`, `pipe diff` and sweeps, on pipelines of command stages
// that write metrics.json, through the real binary in temp dirs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { Rig, type RunResult } from './rig.js';

// prep -> train -> score. prep does not depend on the params, so sweeps share it.
const PIPELINE = `name: exp
params:
  lr: 0.1
  seed: 1
stages:
  prep:
    uses: command
    with:
      workdir: out
      run: 'echo run >> "$COUNTERS/prep"; echo data > data.txt'
  train:
    uses: command
    inputs: { data: prep }
    with:
      workdir: out
      run: 'echo run >> "$COUNTERS/train"; test "\${params.lr}" != 0.5 || exit 3; printf "{\\"accuracy\\": %s, \\"seed_used\\": %s, \\"note\\": \\"x\\"}" "\${params.lr}" "\${params.seed}" > metrics.json'
  score:
    uses: command
    inputs: { model: train }
    with:
      workdir: out
      run: 'echo run >> "$COUNTERS/score"; sed s/accuracy/score/ "$PIPE_IN_MODEL/metrics.json" > metrics.json'
`;

async function pipe(rig: Rig, args: string[]): Promise<RunResult> {
  return rig.run(args);
}

type Event = Record<string, unknown>;

function start(record: Event[]): Event {
  const s = record.find((e) => e['type'] === 'run-start');
  assert.ok(s, 'record has run-start');
  return s;
}

function paramsOf(record: Event[]): Record<string, unknown> {
  return start(record)['params'] as Record<string, unknown>;
}

function stageEvent(record: Event[], stage: string): string | undefined {
  return record.find((e) => e['stage'] === stage && (e['type'] === 'stage-finish' || e['type'] === 'stage-cached' || e['type'] === 'stage-failed'))?.[
    'type'
  ] as string | undefined;
}

/** Run records oldest first by start time (ids only sort by the second). */
async function records(rig: Rig): Promise<Event[][]> {
  return (await rig.runRecords()).sort((x, y) => String(start(x)['time']).localeCompare(String(start(y)['time'])));
}

async function runCount(rig: Rig): Promise<number> {
  return (await readdir(rig.path('.pipe/runs')).catch(() => [] as string[])).length;
}

interface RunsJson {
  runs: {
    id: string;
    params: Record<string, unknown>;
    metrics: Record<string, Record<string, number>>;
    counts: Record<string, number>;
    status: string;
    reasons: Record<string, string>;
  }[];
  differing: string[];
  metrics: { stage: string; name: string; label: string }[];
}

test('pipe runs: newest first, only the params that differ, metrics from metrics.json (cached stages too), cache counts', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    for (const args of [
      ['run', 'p.yaml'],
      ['run', 'p.yaml', '-p', 'lr=0.01'],
      ['run', 'p.yaml', '-p', 'lr=0.01'],
    ]) {
      const r = await pipe(rig, args);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.deepEqual([await rig.count('prep'), await rig.count('train'), await rig.count('score')], [1, 2, 2]);

    const json = await pipe(rig, ['runs', 'p.yaml', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const data = JSON.parse(json.stdout) as RunsJson;
    const recs = await records(rig);
    assert.equal(data.runs.length, 3);
    const ids = recs.map((r) => start(r)['runId'] as string);
    assert.deepEqual(
      data.runs.map((r) => r.id),
      [...ids].reverse(),
      'newest first',
    );
    const [newest, middle, oldest] = data.runs;
    assert.deepEqual(newest!.counts, { ran: 0, cached: 3, failed: 0, skipped: 0 });
    assert.deepEqual(middle!.counts, { ran: 2, cached: 1, failed: 0, skipped: 0 });
    // An all-cached run still has its metrics: they come from the cached artifacts.
    assert.deepEqual(newest!.metrics['train'], { accuracy: 0.01, seed_used: 1 });
    assert.deepEqual(newest!.metrics['score'], { score: 0.01, seed_used: 1 });
    assert.deepEqual(oldest!.metrics['train'], { accuracy: 0.1, seed_used: 1 });
    assert.equal(oldest!.params['params.lr'], 0.1);
    assert.equal(newest!.params['params.lr'], 0.01);
    assert.match(middle!.reasons['train'] ?? '', /params changed/);
    // The command line interpolates ${params.lr}: its change is lr's, not a second param.
    assert.deepEqual(data.differing, ['params.lr']);
    assert.ok(newest!.status === 'ok');

    const table = await pipe(rig, ['runs', 'p.yaml']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 4, table.stdout);
    assert.match(lines[0]!, /^run\s+date\s+commit\s+lr\s+score\s+seed_used\s+accuracy\s+status\s+time\s+ran\s+cached$/);
    assert.doesNotMatch(lines[0]!, /\bseed\b/, 'seed did not change: not shown');
    assert.match(lines[1]!, new RegExp(`^${ids[2]}\\s.*\\s0\\.01\\s.*\\s0\\.01\\s+1\\s+0\\.01\\s+ok\\s.*\\s0\\s+3$`));
    assert.match(lines[3]!, new RegExp(`^${ids[0]}\\s.*\\s0\\.1\\s.*ok\\s.*\\s3\\s+0$`));

    const limited = await pipe(rig, ['runs', 'p.yaml', '--limit', '1']);
    assert.equal(limited.stdout.trimEnd().split('\n').length, 2);
    // Without a file: the history in ./.pipe.
    const here = await pipe(rig, ['runs', '--json']);
    assert.equal((JSON.parse(here.stdout) as RunsJson).runs.length, 3);
    assert.equal((await pipe(rig, ['runs', 'p.yaml', '--limit', '0'])).code, 2);
  } finally {
    await rig.cleanup();
  }
});

test('pipe diff: one changed param, metrics side by side with deltas, which stages re-ran and why', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    assert.equal((await pipe(rig, ['run', 'p.yaml'])).code, 0);
    assert.equal((await pipe(rig, ['run', 'p.yaml', '-p', 'lr=0.01'])).code, 0);
    const [a, b] = (await records(rig)).map((r) => start(r)['runId'] as string);

    const text = await pipe(rig, ['diff']);
    assert.equal(text.code, 0, text.stderr);
    const out = text.stdout;
    assert.match(out, new RegExp(`A\\s+${a}\\s`));
    assert.match(out, new RegExp(`B\\s+${b}\\s`));
    assert.match(out, /params \(1 changed\)/);
    assert.match(out, /\n\s+lr\s+0\.1\s+0\.01\n/);
    assert.match(out, /train\.accuracy\s+0\.1\s+0\.01\s+-0\.09 \(-90\.0%\)/);
    assert.match(out, /train\.seed_used\s+1\s+1\s+=/);
    assert.match(out, /stages \(2 re-ran in B\)/);
    assert.match(out, /prep\s+ran\s+cached\s+same\s*\n/);
    assert.match(out, /train\s+ran\s+ran\s+changed\s+params changed/);

    const json = await pipe(rig, ['diff', '--file', 'p.yaml', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const d = JSON.parse(json.stdout) as {
      a: { id: string };
      b: { id: string };
      params: { path: string; a: unknown; b: unknown }[];
      metrics: { stage: string; name: string; a: number; b: number; delta: number }[];
      stages: { stage: string; b?: { status: string }; artifact: string; why: string }[];
    };
    assert.equal(d.a.id, a);
    assert.equal(d.b.id, b);
    assert.deepEqual(
      d.params.find((p) => p.path === 'params.lr'),
      { path: 'params.lr', a: 0.1, b: 0.01 },
    );
    assert.ok(Math.abs((d.metrics.find((m) => m.stage === 'score' && m.name === 'score')?.delta ?? 0) + 0.09) < 1e-9);
    const stage = (id: string) => d.stages.find((s) => s.stage === id);
    assert.equal(stage('prep')?.b?.status, 'cached');
    assert.equal(stage('prep')?.artifact, 'same');
    assert.equal(stage('train')?.b?.status, 'ran');
    assert.match(stage('train')?.why ?? '', /params changed/);
    assert.match(stage('score')?.why ?? '', /input changed|changed/);

    // Explicit runs, by unique prefix, in either order.
    const reversed = JSON.parse((await pipe(rig, ['diff', b!, a!.slice(0, a!.length - 1), '--json'])).stdout) as typeof d;
    assert.equal(reversed.a.id, b);
    assert.deepEqual(
      reversed.params.find((p) => p.path === 'params.lr'),
      { path: 'params.lr', a: 0.01, b: 0.1 },
    );
    const missing = await pipe(rig, ['diff', 'nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no run nope/);
  } finally {
    await rig.cleanup();
  }
});

test('a 3x2 sweep: six ordinary runs in the history, the upstream stage runs once, then the comparison', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    const r = await pipe(rig, ['run', 'p.yaml', '--sweep', 'params.lr=0.1,0.01,0.001', '--sweep', 'params.seed=1,2']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([await rig.count('prep'), await rig.count('train'), await rig.count('score')], [1, 6, 6]);

    const all = await records(rig);
    assert.equal(all.length, 6);
    const combos = all.map((rec) => `${paramsOf(rec)['lr']}/${paramsOf(rec)['seed']}`).sort();
    assert.deepEqual(combos, ['0.001/1', '0.001/2', '0.01/1', '0.01/2', '0.1/1', '0.1/2']);
    for (const rec of all) {
      assert.equal(rec.at(-1)?.['type'], 'run-end');
      assert.equal(rec.at(-1)?.['status'], 'ok');
      assert.equal(stageEvent(rec, 'train'), 'stage-finish');
    }
    assert.equal(all.filter((rec) => stageEvent(rec, 'prep') === 'stage-finish').length, 1);
    assert.equal(all.filter((rec) => stageEvent(rec, 'prep') === 'stage-cached').length, 5);

    // The comparison table on stdout: one row per combination, in grid order, with its metrics.
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^#\s+lr\s+seed\s+run\s+score\s+seed_used\s+accuracy\s+status/);
    assert.equal(lines.length, 7, r.stdout);
    assert.match(lines[1]!, /^1\s+0\.1\s+1\s+\S+\s+0\.1\s+1\s+0\.1\s+ok/);
    assert.match(lines[6]!, /^6\s+0\.001\s+2\s+\S+\s+0\.001\s+2\s+0\.001\s+ok/);

    // Every combination is an ordinary run: `pipe runs` shows them with what differed.
    const runs = JSON.parse((await pipe(rig, ['runs', '--json'])).stdout) as RunsJson;
    assert.equal(runs.runs.length, 6);
    assert.deepEqual(
      runs.differing.filter((p) => p.startsWith('params.')),
      ['params.lr', 'params.seed'],
    );

    // latest/ is as before the sweep (empty here); each combination's artifacts are linked under sweeps/.
    assert.ok(!existsSync(rig.path('.pipe/latest/exp/score')), 'latest/ does not point at the last combination');
    const [sweepId, ...others] = await readdir(rig.path('.pipe/sweeps'));
    assert.deepEqual(others, []);
    assert.match(r.stderr, /each combination's artifacts are in \S*sweeps\/\S+\/<n>-<values>\/<stage>; latest\/ is as it was/);
    const combos6 = (await readdir(rig.path('.pipe/sweeps', sweepId!))).sort();
    assert.deepEqual(combos6, ['1-lr=0.1_seed=1', '2-lr=0.1_seed=2', '3-lr=0.01_seed=1', '4-lr=0.01_seed=2', '5-lr=0.001_seed=1', '6-lr=0.001_seed=2']);
    assert.match(await rig.read(`.pipe/sweeps/${sweepId}/6-lr=0.001_seed=2/score/metrics.json`), /"score": 0\.001, "seed_used": 2/);
    assert.equal(await rig.read(`.pipe/sweeps/${sweepId}/6-lr=0.001_seed=2/prep/data.txt`), 'data\n');

    // The file's own values (combination 1) are cached; a later sweep leaves latest/ on them.
    assert.equal((await pipe(rig, ['run', 'p.yaml'])).code, 0);
    assert.match(await rig.read('.pipe/latest/exp/score/metrics.json'), /"score": 0\.1,/);
    assert.equal((await pipe(rig, ['run', 'p.yaml', '--sweep', 'params.lr=0.01,0.001'])).code, 0);
    assert.match(await rig.read('.pipe/latest/exp/score/metrics.json'), /"score": 0\.1,/);
    // gc keeps what latest/ and the sweeps/ folders link; deleting a sweep's folder releases its entries.
    assert.match((await pipe(rig, ['gc', 'p.yaml'])).stdout, /removed 0 entries/);
    await rm(rig.path('.pipe/sweeps'), { recursive: true });
    assert.match((await pipe(rig, ['gc', 'p.yaml'])).stdout, /removed 10 entries/);
  } finally {
    await rig.cleanup();
  }
});

test('--sweep-parallel 2: runs at once share the upstream stage; a failed combination makes the sweep exit 1', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    const r = await pipe(rig, ['run', 'p.yaml', '--sweep', 'params.lr=0.1,0.5,0.01,0.001', '--sweep-parallel', '2']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(await rig.count('prep'), 1, 'the upstream stage is computed once, under its key lock');
    assert.equal(await rig.count('train'), 4);
    assert.equal(await rig.count('score'), 3);

    const all = await records(rig);
    assert.equal(all.length, 4);
    const byLr = new Map(all.map((rec) => [paramsOf(rec)['lr'], rec]));
    assert.equal(byLr.get(0.5)?.at(-1)?.['status'], 'failed');
    for (const lr of [0.1, 0.01, 0.001]) assert.equal(byLr.get(lr)?.at(-1)?.['status'], 'ok');
    for (const rec of all) {
      const argv = start(rec)['argv'] as string[];
      assert.ok(argv.includes('--set'), 'each combination ran as its own `pipe run` process');
    }

    // Each child's output is printed as one block, not interleaved with another's.
    for (const lr of ['0.1', '0.5', '0.01', '0.001']) assert.match(r.stderr, new RegExp(`── \\[\\d/4\\] lr=${lr.replace('.', '\\.')}: `));
    const blocks = r.stderr.split(/^── /m).slice(1);
    assert.equal(blocks.length, 4);
    for (const block of blocks) assert.equal((block.match(/pipe run exp/g) ?? []).length, 1);

    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 5, r.stdout);
    assert.match(lines[2]!, /^2\s+0\.5\s.*failed/);
    assert.match(lines[1]!, /^1\s+0\.1\s.*ok/);
    assert.match(r.stderr, /sweep: 4 combinations: 3 ok, 1 failed/);
  } finally {
    await rig.cleanup();
  }
});

test('a sweep checks every combination before running any: bad paths and values exit 2 with no run', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    const noStage = await pipe(rig, ['run', 'p.yaml', '--sweep', 'stages.nope.with.x=1,2']);
    assert.equal(noStage.code, 2);
    assert.match(noStage.stderr, /sweep combination 1 \(stages\.nope\.with\.x=1\)/);
    assert.match(noStage.stderr, /no stage named nope/);
    const badKind = await pipe(rig, ['run', 'p.yaml', '--sweep', 'params.lr=0.1,0.2', '--sweep', 'stages.train.with.kind=files,nonsense']);
    assert.equal(badKind.code, 2);
    assert.match(badKind.stderr, /sweep combination 2 /);
    const malformed = await pipe(rig, ['run', 'p.yaml', '--sweep', 'params.lr']);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /expected path=value1,value2/);
    assert.equal(await runCount(rig), 0);
    assert.equal(await rig.count('prep'), 0);
  } finally {
    await rig.cleanup();
  }
});
