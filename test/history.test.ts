// The run history on hand-written records: parsing, summaries, comparisons, diffs, sweeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pc from 'picocolors';
import {
  differingParams,
  findRun,
  flattenParams,
  formatDelta,
  formatNumber,
  headlineColumns,
  loadHistory,
  parseRecord,
  pipelinesIn,
  shortParam,
  summarize,
  type ArtifactReader,
  type RunSummary,
} from '../runner/history.js';
import { recentRuns } from '../runner/report-history.js';
import { describeCombination, expandGrid, parseSweep, parseSweeps, SweepError } from '../runner/sweep.js';
import { diffRuns, formatDiff, pickRuns } from '../runner/commands/diff.js';
import { runsTable } from '../runner/commands/runs.js';
import { childArgs, sweepTable } from '../runner/commands/sweep.js';

const plain = pc.createColors(false);
const K = (c: string): string => c.repeat(64);

interface RunSpec {
  id: string;
  time: string; // run-start time
  pipeline?: string;
  lr?: number;
  seed?: number;
  git?: { commit: string; dirty: boolean };
  /** evaluate's StageResult metrics when it ran */
  accuracy?: number;
  trainCached?: boolean;
  end?: 'ok' | 'failed' | 'interrupted' | null;
  extra?: Record<string, unknown>[];
}

/** A record of data -> train -> evaluate -> report, as runner/events.ts writes it. */
function record(s: RunSpec): string {
  const t = (ms: number): string => new Date(Date.parse(s.time) + ms).toISOString();
  const lr = s.lr ?? 0.001;
  const events: Record<string, unknown>[] = [
    {
      time: t(0),
      type: 'run-start',
      runId: s.id,
      pipeline: s.pipeline ?? 'dogscats',
      file: '../p.yaml',
      params: { seed: s.seed ?? 42, image_size: 224 },
      stages: {
        data: { uses: 'command', with: { run: 'get', env: {} } },
        train: { uses: 'finetune-vgg16', with: { learning_rate: lr, epochs: 3, trainable: ['fc2', 'predictions'], opt: { name: 'adam', beta: 0.9 } } },
        evaluate: { uses: 'evaluate', with: { gate: { accuracy: 0.5 } } },
        report: { uses: 'report', with: {} },
      },
      selected: ['data', 'train', 'evaluate', 'report'],
      argv: ['run', 'p.yaml'],
      ...(s.git ? { git: s.git } : {}),
      host: 'h',
      version: '0.1.0',
    },
    { time: t(10), type: 'stage-cached', stage: 'data', key: K('d'), contentHash: K('1'), durationMs: 5000 },
  ];
  if (s.trainCached) {
    events.push({ time: t(20), type: 'stage-cached', stage: 'train', key: K(lr === 0.01 ? 'b' : 'a'), contentHash: K('2'), durationMs: 9000 });
  } else {
    events.push({ time: t(20), type: 'stage-start', stage: 'train', key: K(lr === 0.01 ? 'b' : 'a'), reason: 'params changed: learning_rate' });
    events.push({
      time: t(900),
      type: 'stage-finish',
      stage: 'train',
      key: K(lr === 0.01 ? 'b' : 'a'),
      contentHash: K(lr === 0.01 ? '3' : '6'),
      durationMs: 880,
      metrics: { accuracy: 0.99, loss: 0.1 },
      reused: false,
    });
  }
  const acc = s.accuracy ?? 0.9;
  events.push({ time: t(1000), type: 'stage-start', stage: 'evaluate', key: K('e'), reason: 'input changed: model' });
  events.push({
    time: t(1500),
    type: 'stage-finish',
    stage: 'evaluate',
    key: K('e'),
    contentHash: K('4'),
    durationMs: 500,
    metrics: { accuracy: acc, log_loss: 0.3 },
    reused: false,
  });
  events.push({ time: t(1600), type: 'stage-start', stage: 'report', key: K('f'), reason: 'input changed: evaluation' });
  events.push({
    time: t(1700),
    type: 'stage-finish',
    stage: 'report',
    key: K('f'),
    contentHash: K('5'),
    durationMs: 100,
    metrics: { accuracy: acc, log_loss: 0.3 },
    reused: false,
  });
  events.push(...(s.extra ?? []));
  if (s.end !== null) events.push({ time: t(1800), type: 'run-end', status: s.end ?? 'ok', durationMs: 1800 });
  return events.map((e) => JSON.stringify(e)).join('\n') + '\n';
}

async function summary(s: RunSpec, artifacts?: ArtifactReader): Promise<RunSummary> {
  const r = await summarize(parseRecord(s.id, record(s)), artifacts);
  assert.ok(r);
  return r;
}

async function tempCache(records: RunSpec[]): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-history-'));
  await mkdir(path.join(root, 'runs'), { recursive: true });
  for (const r of records) await writeFile(path.join(root, 'runs', `${r.id}.jsonl`), record(r));
  return root;
}

test('parseRecord keeps whole JSON objects and drops a line cut by a crash', () => {
  const r = parseRecord('x', '{"type":"run-start"}\n{"type":"stage-start","sta\n[1]\n\n{"no":"type"}\n');
  assert.equal(r.events.length, 1);
});

test('summarize: counts, status, duration, reasons, flattened params and per-stage metrics', async () => {
  const s = await summary({ id: 'r1', time: '2026-11-28T10:00:00.000Z', git: { commit: 'abcdef1234', dirty: true } });
  assert.equal(s.id, 'r1');
  assert.equal(s.pipeline, 'dogscats');
  assert.equal(s.status, 'ok');
  assert.equal(s.durationMs, 1800);
  assert.deepEqual(s.counts, { ran: 3, cached: 1, failed: 0, skipped: 0 });
  assert.deepEqual(s.git, { commit: 'abcdef1234', dirty: true });
  assert.deepEqual(s.stageOrder, ['data', 'train', 'evaluate', 'report']);
  assert.equal(s.reasons['train'], 'params changed: learning_rate');
  assert.equal(s.reasons['data'], undefined);
  assert.equal(s.stages['data']?.status, 'cached');
  assert.equal(s.stages['train']?.status, 'ran');
  assert.equal(s.stages['train']?.reason, 'params changed: learning_rate');
  assert.equal(s.params['params.seed'], 42);
  assert.equal(s.params['stages.train.with.learning_rate'], 0.001);
  assert.equal(s.params['stages.train.with.opt.name'], 'adam');
  assert.deepEqual(s.params['stages.train.with.trainable'], ['fc2', 'predictions']);
  assert.equal(s.params['stages.evaluate.with.gate.accuracy'], 0.5);
  assert.ok(!('stages.data.with.env' in s.params), 'empty objects are not params');
  assert.deepEqual(s.metrics['evaluate'], { accuracy: 0.9, log_loss: 0.3 });
  assert.deepEqual(s.metrics['train'], { accuracy: 0.99, loss: 0.1 });
  assert.equal(s.metrics['data'], undefined);
});

test('a cached stage keeps its metrics (from meta.json); metrics.json numbers fill in, StageResult wins', async () => {
  const reads: string[] = [];
  const artifacts: ArtifactReader = {
    metaMetrics: async (key) => (reads.push(`meta ${key[0]}`), key === K('a') ? { accuracy: 0.97, loss: 0.2 } : undefined),
    fileMetrics: async (key): Promise<Record<string, number> | undefined> => (
      reads.push(`file ${key[0]}`),
      key === K('d') ? { rows: 100, bytes: 2.5 } : key === K('e') ? { accuracy: 0.1, count: 50 } : undefined
    ),
  };
  const s = await summary({ id: 'r1', time: '2026-11-28T10:00:00.000Z', trainCached: true }, artifacts);
  assert.deepEqual(s.metrics['train'], { accuracy: 0.97, loss: 0.2 });
  assert.deepEqual(s.headline['train'], { accuracy: 0.97, loss: 0.2 });
  // a command stage: only metrics.json
  assert.deepEqual(s.metrics['data'], { rows: 100, bytes: 2.5 });
  assert.deepEqual(s.headline['data'], { rows: 100, bytes: 2.5 });
  // evaluate: StageResult over metrics.json; headline only the StageResult
  assert.deepEqual(s.metrics['evaluate'], { accuracy: 0.9, count: 50, log_loss: 0.3 });
  assert.deepEqual(s.headline['evaluate'], { accuracy: 0.9, log_loss: 0.3 });
  assert.ok(reads.includes('meta a'));
  assert.ok(!reads.includes('meta e'), 'a stage that ran has its metrics in the event');
});

test('a record without run-end is incomplete, timed to its last event; failed and skipped stages count', async () => {
  const s = await summary({
    id: 'r2',
    time: '2026-11-28T10:00:00.000Z',
    end: null,
    extra: [
      { time: '2026-11-28T10:00:02.500Z', type: 'stage-failed', stage: 'x', error: 'command failed (exit code 3)', durationMs: 10 },
      { time: '2026-11-28T10:00:02.600Z', type: 'stage-skipped', stage: 'y', reason: 'upstream x failed' },
    ],
  });
  assert.equal(s.status, 'incomplete');
  assert.equal(s.durationMs, 2600);
  assert.deepEqual(s.counts, { ran: 3, cached: 1, failed: 1, skipped: 1 });
  assert.equal(s.stages['x']?.error, 'command failed (exit code 3)');
  assert.equal(s.stages['y']?.reason, 'upstream x failed');
  assert.equal(await summarize(parseRecord('z', '{"type":"stage-start","stage":"a"}\n')), undefined);
});

test('loadHistory: newest first by start time (ids of one second do not sort by time), filter, limit, artifact metrics', async () => {
  const root = await tempCache([
    { id: '20261128-100000-zzzz', time: '2026-11-28T10:00:00.100Z', lr: 0.1 },
    { id: '20261128-100000-aaaa', time: '2026-11-28T10:00:00.900Z', lr: 0.01, trainCached: true },
    { id: '20261128-090000-mmmm', time: '2026-11-28T09:00:00.000Z', pipeline: 'other' },
  ]);
  try {
    await mkdir(path.join(root, 'cache', K('b'), 'data'), { recursive: true });
    await writeFile(path.join(root, 'cache', K('b'), 'meta.json'), JSON.stringify({ key: K('b'), metrics: { accuracy: 0.5, note: 'x' } }));
    await mkdir(path.join(root, 'cache', K('e'), 'data'), { recursive: true });
    await writeFile(path.join(root, 'cache', K('e'), 'data', 'metrics.json'), JSON.stringify({ count: 7, confusion: [[1, 2]], on: 'valid', nan: null }));
    await writeFile(path.join(root, 'runs', 'garbage.jsonl'), 'not json\n');
    await writeFile(path.join(root, 'runs', 'notes.txt'), 'ignored');

    const all = await loadHistory(root);
    assert.deepEqual(
      all.map((r) => r.id),
      ['20261128-100000-aaaa', '20261128-100000-zzzz', '20261128-090000-mmmm'],
    );
    const dogs = await loadHistory(root, { pipeline: 'dogscats', limit: 1 });
    assert.deepEqual(
      dogs.map((r) => r.id),
      ['20261128-100000-aaaa'],
    );
    assert.deepEqual(dogs[0]!.metrics['train'], { accuracy: 0.5 });
    assert.deepEqual(dogs[0]!.metrics['evaluate'], { count: 7, accuracy: 0.9, log_loss: 0.3 });
    assert.deepEqual(await pipelinesIn(root), ['dogscats', 'other']);
    assert.deepEqual(await loadHistory(path.join(root, 'nope')), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('differingParams lists only what changed (absent counts), in stable order', async () => {
  const a = await summary({ id: 'a', time: '2026-11-28T10:00:00.000Z', lr: 0.1 });
  const b = await summary({ id: 'b', time: '2026-11-28T10:01:00.000Z', lr: 0.01 });
  const c = await summary({ id: 'c', time: '2026-11-28T10:02:00.000Z', lr: 0.1, seed: 7 });
  assert.deepEqual(differingParams([a]), []);
  assert.deepEqual(differingParams([a, b]), ['stages.train.with.learning_rate']);
  assert.deepEqual(differingParams([c, b, a]), ['params.seed', 'stages.train.with.learning_rate']);
  const d = { ...a, params: { ...a.params, 'stages.train.with.extra': true } };
  assert.deepEqual(differingParams([a, d]), ['stages.train.with.extra']);
});

test('headlineColumns: downstream first, a re-exported equal metric shown once, ambiguous names qualified, capped', async () => {
  const a = await summary({ id: 'a', time: '2026-11-28T10:00:00.000Z', accuracy: 0.9 });
  const b = await summary({ id: 'b', time: '2026-11-28T10:01:00.000Z', accuracy: 0.95 });
  const cols = headlineColumns([b, a]);
  // report re-exports evaluate's numbers: one of each; train's accuracy differs: qualified labels.
  assert.deepEqual(
    cols.map((c) => [c.stage, c.name, c.label]),
    [
      ['report', 'accuracy', 'report.accuracy'],
      ['report', 'log_loss', 'log_loss'],
      ['train', 'accuracy', 'train.accuracy'],
      ['train', 'loss', 'loss'],
    ],
  );
  assert.equal(headlineColumns([b, a], 2).length, 2);
  assert.deepEqual(headlineColumns([]), []);
});

test('findRun by id or unique prefix', async () => {
  const a = await summary({ id: '20261128-100000-aaaa', time: '2026-11-28T10:00:00.000Z' });
  const b = await summary({ id: '20261128-100000-abbb', time: '2026-11-28T10:00:00.000Z' });
  assert.equal(findRun([a, b], '20261128-100000-aaaa').id, a.id);
  assert.equal(findRun([a, b], '20261128-100000-ab').id, b.id);
  assert.throws(() => findRun([a, b], '20261128-100000-a'), /ambiguous/);
  assert.throws(() => findRun([a, b], 'x'), /no run x/);
});

test('diffRuns: the changed param, metrics with deltas, which stages re-ran and why', async () => {
  const a = await summary({ id: 'a', time: '2026-11-28T10:00:00.000Z', lr: 0.001, accuracy: 0.9, git: { commit: '1111111aaaa', dirty: false } });
  const b = await summary({ id: 'b', time: '2026-11-28T10:01:00.000Z', lr: 0.01, accuracy: 0.93, git: { commit: '1111111aaaa', dirty: false } });
  const d = diffRuns(a, b);
  assert.equal(d.codeChanged, false);
  assert.deepEqual(d.params, [{ path: 'stages.train.with.learning_rate', a: 0.001, b: 0.01 }]);
  const acc = d.metrics.find((m) => m.stage === 'evaluate' && m.name === 'accuracy');
  assert.equal(acc?.a, 0.9);
  assert.equal(acc?.b, 0.93);
  assert.ok(Math.abs((acc?.delta ?? 0) - 0.03) < 1e-12);
  const byStage = Object.fromEntries(d.stages.map((s) => [s.stage, s]));
  assert.equal(byStage['data']?.artifact, 'same');
  assert.equal(byStage['data']?.why, '');
  assert.equal(byStage['train']?.artifact, 'changed');
  assert.equal(byStage['train']?.why, 'params changed: learning_rate');
  assert.equal(byStage['evaluate']?.artifact, 'same');
  const text = formatDiff(d, plain).join('\n');
  assert.match(text, /train\.learning_rate\s+0\.001\s+0\.01/);
  assert.match(text, /evaluate\.accuracy\s+0\.9\s+0\.93\s+\+0\.03 \(\+3\.3%\)/);
  assert.match(text, /stages \(3 re-ran in B\)/);
  assert.doesNotMatch(text, /code:/);
  const e = diffRuns(a, { ...b, git: { commit: '2222222bbbb', dirty: true } });
  assert.equal(e.codeChanged, true);
  assert.match(formatDiff(e, plain).join('\n'), /code: 1111111 -> 2222222\*/);
});

test('pickRuns: defaults to the last two runs of the pipeline; one ref is compared with the newest', async () => {
  const r1 = await summary({ id: 'r1', time: '2026-11-28T10:00:00.000Z' });
  const r2 = await summary({ id: 'r2', time: '2026-11-28T10:01:00.000Z' });
  const o = await summary({ id: 'o1', time: '2026-11-28T10:02:00.000Z', pipeline: 'other' });
  const runs = [o, r2, r1];
  assert.deepEqual(
    pickRuns(runs, undefined, undefined, 'dogscats').map((r) => r.id),
    ['r1', 'r2'],
  );
  assert.deepEqual(
    pickRuns(runs, 'r1', undefined, undefined).map((r) => r.id),
    ['r1', 'r2'],
  );
  assert.deepEqual(
    pickRuns(runs, 'r2', undefined, undefined).map((r) => r.id),
    ['r1', 'r2'],
  );
  assert.deepEqual(
    pickRuns(runs, 'r2', 'o1', undefined).map((r) => r.id),
    ['r2', 'o1'],
  );
  assert.throws(() => pickRuns(runs, undefined, undefined, 'other'), /needs two runs of other; there is one/);
  assert.throws(() => pickRuns(runs, 'o1', undefined, undefined), /only run of other/);
});

test('runsTable shows only differing params, headline metrics, cache counts and the dirty mark', async () => {
  const a = await summary({ id: 'r1', time: '2026-11-28T10:00:00.000Z', lr: 0.1, git: { commit: 'abcdef0123', dirty: false } });
  const b = await summary({ id: 'r2', time: '2026-11-28T10:01:00.000Z', lr: 0.01, trainCached: true, git: { commit: 'abcdef0123', dirty: true } });
  const lines = runsTable([b, a], plain);
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^run\s+date\s+commit\s+train\.learning_rate\s+report\.accuracy\s+log_loss\s+train\.accuracy\s+loss\s+status\s+time\s+ran\s+cached$/);
  assert.match(lines[1]!, /^r2\s.*abcdef0\*\s+0\.01\s/);
  assert.match(lines[2]!, /^r1\s.*abcdef0\s+0\.1\s/);
  assert.match(lines[1]!, /ok\s+1\.8s\s+2\s+2$/);
  assert.doesNotMatch(lines[0]!, /seed|epochs/);
});

test('recentRuns: the last runs of one pipeline, the current one marked even past the limit', async () => {
  const root = await tempCache([
    { id: 'r1', time: '2026-11-28T10:00:00.000Z', lr: 0.1, accuracy: 0.8 },
    { id: 'r2', time: '2026-11-28T10:01:00.000Z', lr: 0.01, accuracy: 0.85 },
    { id: 'r3', time: '2026-11-28T10:02:00.000Z', lr: 0.001, accuracy: 0.9, end: null },
    { id: 'x1', time: '2026-11-28T10:03:00.000Z', pipeline: 'other' },
  ]);
  try {
    const recent = await recentRuns(root, 'dogscats', 2, 'r3');
    assert.deepEqual(
      recent.runs.map((r) => [r.id, r.current, r.status]),
      [
        ['r3', true, 'incomplete'],
        ['r2', false, 'ok'],
      ],
    );
    assert.deepEqual(recent.params, [{ path: 'stages.train.with.learning_rate', label: 'train.learning_rate' }]);
    assert.deepEqual(recent.runs[0]!.params, { 'stages.train.with.learning_rate': 0.001 });
    assert.equal(recent.metrics[0]?.label, 'report.accuracy');
    assert.equal(recent.runs[1]!.metrics['report.accuracy'], 0.85);
    const none = await recentRuns(root, 'nothing', 5);
    assert.deepEqual(none, { runs: [], params: [], metrics: [] });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('parseSweep: YAML scalars, quoting, what goes on to --set, and located errors', () => {
  const a = parseSweep('stages.finetune.with.learning_rate=0.01,0.001, 1e-4');
  assert.equal(a.path, 'stages.finetune.with.learning_rate');
  assert.deepEqual(
    a.values.map((v) => v.value),
    [0.01, 0.001, 1e-4],
  );
  assert.deepEqual(
    a.values.map((v) => v.text),
    ['0.01', '0.001', '1e-4'],
  );
  const b = parseSweep('stages.x.with.name="a,b",plain,\'007\',true,[1, 2]');
  assert.deepEqual(
    b.values.map((v) => v.value),
    ['a,b', 'plain', '007', true, [1, 2]],
  );
  assert.deepEqual(
    b.values.map((v) => v.text),
    ['a,b', 'plain', '"007"', 'true', '[1, 2]'],
  );
  assert.throws(() => parseSweep('stages.x.with.y'), SweepError);
  assert.throws(() => parseSweep('=1,2'), /expected path=value1,value2/);
  assert.throws(() => parseSweep('a..b=1'), /not a dotted path/);
  assert.throws(() => parseSweep('a.b='), /no values/);
  assert.throws(() => parseSweep('a.b=1,,2'), /--sweep a\.b=1,,2/);
  assert.throws(() => parseSweep('a.b=1,2,1.0'), /listed twice/);
  assert.throws(() => parseSweep('a.b=[1'), /YAML list/);
  assert.throws(() => parseSweeps(['a.b=1', 'a.b=2']), /swept twice/);
  assert.throws(() => parseSweeps([]), /at least one/);
});

test('expandGrid: a 3x2 grid, the first flag varying slowest, each combination a list of --set', () => {
  const grid = expandGrid(parseSweeps(['stages.finetune.with.learning_rate=0.01,0.001,0.0001', 'params.seed=1,2']));
  assert.equal(grid.length, 6);
  assert.deepEqual(
    grid.map((c) => c.index),
    [1, 2, 3, 4, 5, 6],
  );
  assert.deepEqual(grid[0]!.set, ['stages.finetune.with.learning_rate=0.01', 'params.seed=1']);
  assert.deepEqual(grid[1]!.set, ['stages.finetune.with.learning_rate=0.01', 'params.seed=2']);
  assert.deepEqual(grid[5]!.set, ['stages.finetune.with.learning_rate=0.0001', 'params.seed=2']);
  assert.equal(describeCombination(grid[2]!, shortParam), 'finetune.learning_rate=0.001 seed=1');
});

test("childArgs: the combination after the user's --set, the other run flags, a share of the cores", () => {
  const [c] = expandGrid(parseSweeps(['params.lr=0.1']));
  const args = childArgs('p.yaml', { set: ['stages.a.with.b=1'], param: ['seed=3'], cacheDir: 'cc', force: true, only: ['x', 'y'], jobs: '2' }, c!, 2);
  assert.deepEqual(args, [
    'run',
    'p.yaml',
    '--set',
    'stages.a.with.b=1',
    '--set',
    'params.lr=0.1',
    '--param',
    'seed=3',
    '--cache-dir',
    'cc',
    '--force',
    '--jobs',
    '2',
    '--only',
    'x',
    'y',
  ]);
  assert.ok(childArgs('p.yaml', {}, c!, 1000).includes('1'));
});

test('sweepTable: one row per combination, a failed one without a record included', async () => {
  const grid = expandGrid(parseSweeps(['stages.train.with.learning_rate=0.1,0.01']));
  const a = await summary({ id: 'r1', time: '2026-11-28T10:00:00.000Z', lr: 0.1 });
  const lines = sweepTable(
    [
      { combination: grid[0]!, exitCode: 0, runId: 'r1' },
      { combination: grid[1]!, exitCode: 2, error: 'bad' },
    ],
    new Map([['r1', a]]),
    plain,
  );
  assert.match(lines[0]!, /^#\s+train\.learning_rate\s+run\s+report\.accuracy/);
  assert.match(lines[1]!, /^1\s+0\.1\s+r1\s+0\.9\s/);
  assert.match(lines[2]!, /^2\s+0\.01\s+-\s+-\s.*failed/);
});

test('number formatting', () => {
  assert.equal(formatNumber(3), '3');
  assert.equal(formatNumber(0.912345), '0.9123');
  assert.equal(formatNumber(12345.678), '12345.7');
  assert.equal(formatNumber(undefined), '-');
  assert.equal(formatDelta(0.5, 0.5), '=');
  assert.equal(formatDelta(0.5, 0.4), '-0.1 (-20.0%)');
  assert.equal(formatDelta(0, 2), '+2');
  assert.equal(formatDelta(undefined, 2), '');
  assert.deepEqual(flattenParams({ a: { b: 1 } }, { s: { uses: 'x', with: { c: [1] } } }), { 'params.a.b': 1, 'stages.s.with.c': [1] });
  // Stage params holding a ${params.x} are the param's: not listed again (an interpolated command
  // line, an array element, a whole value).
  assert.deepEqual(
    flattenParams(
      { epochs: 3 },
      {
        t: {
          uses: 'command',
          with: { run: 'train --epochs 3', list: [1, 3], epochs: 3, lr: 0.1 },
          from_params: ['stages.t.with.run', 'stages.t.with.list[1]', 'stages.t.with.epochs'],
        },
      },
    ),
    { 'params.epochs': 3, 'stages.t.with.lr': 0.1 },
  );
});
