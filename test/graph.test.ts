// The stage graph on plain data: order, cycles, selections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGraph, downstreamOf, selectStages, upstreamOf, type Graph } from '../runner/graph.js';
import type { StageSpec } from '../runner/pipeline.js';

function spec(id: string, deps: { inputs?: Record<string, string>; needs?: string[]; runsOn?: string } = {}): [string, StageSpec] {
  return [id, { id, uses: 'command', with: {}, inputs: deps.inputs ?? {}, needs: deps.needs ?? [], ...(deps.runsOn ? { runsOn: deps.runsOn } : {}) }];
}

function graph(...stages: [string, StageSpec][]): Graph {
  const g = buildGraph(new Map(stages));
  assert.ok(g.ok, JSON.stringify(!g.ok && g.errors));
  return g.value;
}

// file order: report, data, host, train, eval, other
const DAG = (): Graph =>
  graph(
    spec('report', { inputs: { e: 'eval' } }),
    spec('data'),
    spec('host'),
    spec('train', { inputs: { d: 'data' }, runsOn: 'host' }),
    spec('eval', { inputs: { m: 'train', d: 'data' } }),
    spec('other', { needs: ['data'] }),
  );

test('graph: topological order, ties broken by file order', () => {
  const g = DAG();
  assert.deepEqual(g.order, ['data', 'host', 'train', 'eval', 'report', 'other']);
  assert.deepEqual(g.deps.get('train'), ['data', 'host']);
  assert.deepEqual(g.deps.get('eval'), ['train', 'data']);
  assert.deepEqual(g.dependents.get('data'), ['train', 'eval', 'other'], 'dependents in file order');
  assert.deepEqual(g.dependents.get('report'), []);
  // Independent stages keep file order even when written "backwards".
  assert.deepEqual(graph(spec('c'), spec('b'), spec('a')).order, ['c', 'b', 'a']);
  assert.deepEqual(graph(spec('z', { needs: ['y'] }), spec('y'), spec('x')).order, ['y', 'z', 'x']);
});

test('graph: duplicate and unknown dependencies', () => {
  const g = graph(spec('a'), spec('b', { inputs: { x: 'a', y: 'a' }, needs: ['a', 'ghost'], runsOn: 'a' }));
  assert.deepEqual(g.deps.get('b'), ['a'], 'deduplicated; unknown ones left to the validator');
  assert.deepEqual(g.dependents.get('a'), ['b']);
  assert.deepEqual(g.order, ['a', 'b']);
});

test('graph: selections', () => {
  const g = DAG();
  assert.deepEqual(selectStages(g, {}), g.order);
  assert.deepEqual(selectStages(g, { only: ['eval', 'data'] }), ['data', 'eval'], '--only: exactly those, in order');
  assert.deepEqual(selectStages(g, { from: 'train' }), ['train', 'eval', 'report'], '--from: it and downstream');
  assert.deepEqual(selectStages(g, { until: 'eval' }), ['data', 'host', 'train', 'eval'], '--until: it and upstream');
  assert.deepEqual(selectStages(g, { from: 'train', until: 'eval' }), ['train', 'eval'], 'both: the intersection');
  assert.deepEqual(selectStages(g, { from: 'data', until: 'report' }), ['data', 'train', 'eval', 'report']);
  assert.deepEqual(selectStages(g, { from: 'other', until: 'report' }), [], 'disjoint: nothing');
  assert.deepEqual(selectStages(g, { only: ['report', 'host'], from: 'train' }), ['report'], '--only combined: intersected too');
  assert.deepEqual(selectStages(g, { only: ['nope'] }), []);
  assert.deepEqual(selectStages(g, { from: 'nope' }), []);
});

test('graph: upstream and downstream, transitive, in topological order', () => {
  const g = DAG();
  assert.deepEqual(upstreamOf(g, 'report'), ['data', 'host', 'train', 'eval']);
  assert.deepEqual(upstreamOf(g, 'eval'), ['data', 'host', 'train']);
  assert.deepEqual(upstreamOf(g, 'data'), []);
  assert.deepEqual(downstreamOf(g, 'host'), ['train', 'eval', 'report']);
  assert.deepEqual(downstreamOf(g, 'data'), ['train', 'eval', 'report', 'other']);
});

test('graph: a cycle is one diagnostic, printed from its first stage in file order, with every edge', () => {
  const stages = new Map([spec('a', { needs: ['c'] }), spec('b', { inputs: { x: 'a' } }), spec('c', { runsOn: 'b' }), spec('d', { needs: ['a'] })]);
  const positions: Record<string, { line: number; col: number }> = {
    'stages.b.inputs.x': { line: 5, col: 20 },
    'stages.c.runs_on': { line: 8, col: 14 },
    'stages.a.needs[0]': { line: 2, col: 13 },
  };
  const g = buildGraph(stages, { file: 'p.yaml', positionOf: (p) => positions[p] });
  assert.ok(!g.ok);
  assert.equal(g.errors.length, 1);
  const [d] = g.errors;
  assert.equal(d!.message, 'cycle: a -> b -> c -> a');
  assert.equal(d!.file, 'p.yaml');
  assert.equal(d!.path, 'stages.b.inputs.x');
  assert.deepEqual(d!.pos, { line: 5, col: 20 });
  assert.deepEqual(d!.related, [
    { path: 'stages.b.inputs.x', message: 'b depends on a', pos: { line: 5, col: 20 } },
    { path: 'stages.c.runs_on', message: 'c depends on b', pos: { line: 8, col: 14 } },
    { path: 'stages.a.needs[0]', message: 'a depends on c', pos: { line: 2, col: 13 } },
  ]);
});

test('graph: a self-loop, and two separate cycles, each reported', () => {
  const self = buildGraph(new Map([spec('a', { needs: ['a'] })]));
  assert.ok(!self.ok);
  assert.deepEqual(
    self.errors.map((e) => e.message),
    ['cycle: a -> a'],
  );
  const two = buildGraph(
    new Map([spec('x'), spec('p', { needs: ['q'] }), spec('q', { inputs: { i: 'p' } }), spec('r', { needs: ['x', 's'] }), spec('s', { needs: ['r'] })]),
  );
  assert.ok(!two.ok);
  assert.deepEqual(
    two.errors.map((e) => e.message),
    ['cycle: p -> q -> p', 'cycle: r -> s -> r'],
  );
  // Inside a bigger strongly connected part, one shortest cycle through its first stage.
  const knot = buildGraph(new Map([spec('a', { needs: ['d'] }), spec('b', { needs: ['a'] }), spec('c', { needs: ['b'] }), spec('d', { needs: ['c', 'a'] })]));
  assert.ok(!knot.ok);
  assert.deepEqual(
    knot.errors.map((e) => e.message),
    ['cycle: a -> d -> a'],
  );
});

test('graph: thousands of stages, no recursion limits', () => {
  const n = 5000;
  const chain = Array.from({ length: n }, (_, i) => spec(`s${i}`, i > 0 ? { needs: [`s${i - 1}`] } : {}));
  const t = Date.now();
  const g = graph(...chain);
  assert.equal(g.order.length, n);
  assert.equal(g.order[n - 1], `s${n - 1}`);
  assert.equal(upstreamOf(g, `s${n - 1}`).length, n - 1);
  const looped = buildGraph(new Map([...chain, spec('s0', { needs: [`s${n - 1}`] })]));
  assert.ok(!looped.ok);
  assert.equal(looped.errors.length, 1);
  assert.ok(Date.now() - t < 5000, 'fast enough');
});
