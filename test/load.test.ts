import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../runner/load.js';
import { formatDiagnostic } from '../runner/diagnostics.js';
import { buildGraph, selectStages, upstreamOf } from '../runner/graph.js';
import type { StageSpec } from '../runner/pipeline.js';

async function withFile<T>(text: string, fn: (file: string, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-load-'));
  try {
    const file = path.join(dir, 'p.yaml');
    await writeFile(file, text);
    return await fn(file, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PIPE = `params:
  seed: 7
  name: world
stages:
  a:
    uses: command
    with:
      run: "echo hello \${params.name} $\${HOME}"
      env: { SEED: "\${params.seed}" }
  b:
    uses: command
    inputs: { src: a }
    with:
      run: [echo, "\${params.seed}"]
`;

test('load: defaults applied, references substituted (typed when whole), positions kept', async () => {
  await withFile(PIPE, async (file, dir) => {
    const r = await loadPipeline(file, { cwd: dir });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    const p = r.value;
    assert.equal(p.name, 'p');
    assert.equal(p.displayPath, 'p.yaml');
    const a = p.stages.get('a')!;
    assert.equal(a.with.run, 'echo hello world ${HOME}');
    assert.deepEqual(a.with.env, { SEED: '7' }); // the schema wants a string there
    assert.deepEqual(a.with.deps, []);
    assert.equal(a.with.kind, 'files');
    assert.deepEqual(p.stages.get('b')!.with.run, ['echo', '7']);
    assert.deepEqual(p.positionOf('stages.b.inputs.src'), { line: 12, col: 20 });
    assert.deepEqual(p.positionOf('stages.b.with.nothing.here'), { line: 14, col: 7 });
  });
});

test('load: -p, --set (typed by the schema) and --params-file override before validation', async () => {
  await withFile(PIPE, async (file, dir) => {
    await writeFile(path.join(dir, 'over.yaml'), 'name: file\nextra: [1, 2]\n');
    const r = await loadPipeline(file, { cwd: dir, params: ['seed=8'], paramsFile: 'over.yaml', set: ['stages.a.with.run=007', 'stages.b.with.deps=[x.py]'] });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    assert.deepEqual(r.value.params, { seed: 8, name: 'file', extra: [1, 2] });
    assert.equal(r.value.stages.get('a')!.with.run, '007');
    assert.deepEqual(r.value.stages.get('a')!.with.env, { SEED: '8' });
    assert.deepEqual(r.value.stages.get('b')!.with.deps, ['x.py']);
  });
});

test('load: a broken params file is located in that file', async () => {
  await withFile(PIPE, async (file, dir) => {
    await writeFile(path.join(dir, 'over.yaml'), 'a: 1\na: 2\n');
    const r = await loadPipeline(file, { cwd: dir, paramsFile: 'over.yaml' });
    assert.ok(!r.ok);
    assert.equal(r.errors[0]!.file, 'over.yaml');
    assert.deepEqual(r.errors[0]!.pos, { line: 2, col: 1 });
  });
});

test('diagnostics: the offending line with a caret under the node', () => {
  const text = formatDiagnostic({ file: 'x.yaml', pos: { line: 2, col: 11 }, path: 'stages.a.with.valid', message: 'must be an integer' }, 'stages:\n  valid:  abc\n');
  assert.equal(text, 'x.yaml:2:11: stages.a.with.valid: must be an integer\n   2 |   valid:  abc\n     |           ^^^');
});

function spec(id: string, deps: { inputs?: Record<string, string>; needs?: string[]; runsOn?: string } = {}): [string, StageSpec] {
  return [id, { id, uses: 'command', with: {}, inputs: deps.inputs ?? {}, needs: deps.needs ?? [], ...(deps.runsOn ? { runsOn: deps.runsOn } : {}) }];
}

test('graph: topological order with file-order ties; selections', () => {
  // file order: report, data, host, train, eval, other
  const stages = new Map([
    spec('report', { inputs: { e: 'eval' } }),
    spec('data'),
    spec('host'),
    spec('train', { inputs: { d: 'data' }, runsOn: 'host' }),
    spec('eval', { inputs: { m: 'train', d: 'data' } }),
    spec('other', { needs: ['data'] }),
  ]);
  const g = buildGraph(stages);
  assert.ok(g.ok);
  assert.deepEqual(g.value.order, ['data', 'host', 'train', 'eval', 'report', 'other']);
  assert.deepEqual(upstreamOf(g.value, 'eval'), ['data', 'host', 'train']);
  assert.deepEqual(selectStages(g.value, {}), g.value.order);
  assert.deepEqual(selectStages(g.value, { only: ['eval', 'data'] }), ['data', 'eval']);
  assert.deepEqual(selectStages(g.value, { from: 'train' }), ['train', 'eval', 'report']);
  assert.deepEqual(selectStages(g.value, { until: 'eval' }), ['data', 'host', 'train', 'eval']);
  assert.deepEqual(selectStages(g.value, { from: 'train', until: 'eval' }), ['train', 'eval']);
});

test('graph: a cycle is reported once, printed in dependency order, with each edge', () => {
  const g = buildGraph(new Map([spec('a', { needs: ['c'] }), spec('b', { inputs: { x: 'a' } }), spec('c', { runsOn: 'b' })]));
  assert.ok(!g.ok);
  assert.equal(g.errors.length, 1);
  assert.match(g.errors[0]!.message, /^cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)$/);
  assert.deepEqual(g.errors[0]!.related!.map((r) => r.path).sort(), ['stages.a.needs[0]', 'stages.b.inputs.x', 'stages.c.runs_on']);
});
