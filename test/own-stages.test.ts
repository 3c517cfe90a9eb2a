// The runner knows no stage types: a pipeline loaded with a registry of stages defined here
// (none of the built-ins) validates, runs, caches and plans with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { loadPipeline } from '../runner/load.js';
import { buildGraph } from '../runner/graph.js';
import { Cache } from '../runner/cache.js';
import { EventBus } from '../runner/events.js';
import { Output } from '../runner/output.js';
import { execute } from '../runner/execute.js';
import { planStages } from '../runner/plan.js';
import type { Stage } from '../runner/types.js';

let runs = 0;
const emit: Stage<{ n: number }> = {
  name: 'emit',
  version: 1,
  description: 'Writes a number.',
  params: { type: 'object', additionalProperties: false, properties: { n: { type: 'integer', description: 'the number' } }, required: ['n'] },
  inputs: {},
  output: 'files',
  async run(ctx) {
    runs++;
    await writeFile(path.join(ctx.outDir, 'n.txt'), String(ctx.params.n));
  },
};
const twice: Stage<Record<string, never>> = {
  name: 'twice',
  version: 1,
  description: 'Doubles the number of its input.',
  params: { type: 'object', additionalProperties: false, properties: {} },
  inputs: { number: { kind: 'files' } },
  output: 'files',
  async run(ctx) {
    runs++;
    const n = Number(await readFile(path.join(ctx.inputs.number!.dir, 'n.txt'), 'utf8'));
    await writeFile(path.join(ctx.outDir, 'n.txt'), String(2 * n));
    return { metrics: { n: 2 * n } };
  },
};
const REGISTRY = new Map<string, Stage<any>>([emit, twice].map((s) => [s.name, s]));

test('a pipeline of stages defined outside stages/ runs, caches and plans with no built-in stage', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-own-stages-'));
  try {
    await writeFile(path.join(dir, 'p.yaml'), 'name: own\nstages:\n  a: { uses: emit, with: { n: 21 } }\n  b: { uses: twice, inputs: { number: a } }\n');
    const unknown = await loadPipeline('p.yaml', { cwd: dir, registry: new Map([[emit.name, emit]]) });
    assert.ok(!unknown.ok && unknown.errors.some((d) => /twice/.test(d.message)), 'a type the registry lacks is a located error');
    const builtin = await loadPipeline('p.yaml', { cwd: dir, registry: REGISTRY });
    assert.ok(builtin.ok);
    const pipeline = builtin.value;
    assert.equal(pipeline.stageImpls.get('b'), twice, 'the pipeline carries the Stage objects its registry gave');
    const graph = buildGraph(pipeline.stages);
    assert.ok(graph.ok);
    const cache = new Cache(path.join(dir, '.pipe'));
    await cache.init();
    const run = async () => {
      const output = new Output({ stream: new PassThrough() as unknown as NodeJS.WriteStream, live: false, color: false });
      const needed = graph.value.order;
      return execute(pipeline, graph.value, cache, new EventBus(), output, {
        runId: `r${runs}`,
        jobs: 2,
        selected: new Set(needed),
        needed,
        force: false,
        keepGoing: false,
        signal: new AbortController().signal,
      });
    };
    const first = await run();
    assert.equal(first.failed, false, JSON.stringify([...first.outcomes]));
    assert.equal(runs, 2);
    const b = first.outcomes.get('b');
    assert.ok(b?.status === 'ran');
    assert.equal(await readFile(path.join(b.artifact.dir, 'n.txt'), 'utf8'), '42');
    const plan = await planStages(pipeline, graph.value, cache, graph.value.order);
    assert.deepEqual(
      plan.map((p) => [p.stage, p.state]),
      [
        ['a', 'cached'],
        ['b', 'cached'],
      ],
    );
    const second = await run();
    assert.equal(runs, 2, 'the second run is all cache hits');
    assert.equal(second.outcomes.get('b')?.status, 'cached');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
