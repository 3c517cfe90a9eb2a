// Validation rules on a test-only registry: ports and kinds (outputs that depend on params),
// runs_on hosts, oneOf noise, no cascades, defaults, prototype safety, many stages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline, type LoadOptions } from '../runner/load.js';
import { diagnosticLine } from '../runner/diagnostics.js';
import { checkParams, validatorFor } from '../runner/validate-params.js';
import type { Pipeline, Result } from '../runner/pipeline.js';
import type { ArtifactKind, Stage } from '../runner/types.js';
import { registry } from '../stages/registry.js';

const none = async (): Promise<void> => undefined;
const stage = (s: Partial<Stage<any>> & Pick<Stage<any>, 'name' | 'output'>): Stage<any> => ({
  version: 1,
  description: `${s.name} (test stage)`,
  params: { type: 'object', additionalProperties: false, properties: {} },
  inputs: {},
  run: none,
  ...s,
});

const STAGES: Stage<any>[] = [
  stage({
    name: 'make',
    params: { type: 'object', additionalProperties: false, properties: { kind: { enum: ['dataset', 'model', 'files'], default: 'dataset' } } },
    output: (p: { kind: ArtifactKind }) => p.kind,
  }),
  stage({ name: 'train', inputs: { dataset: { kind: 'dataset' } }, output: 'model' }),
  stage({
    name: 'evaluate',
    inputs: { model: { kind: 'model' }, dataset: { kind: 'dataset' }, notes: { kind: 'files', required: false }, anything: { kind: 'any', required: false } },
    output: 'evaluation',
  }),
  stage({ name: 'machine', output: 'host' }),
  stage({
    name: 'broken-output',
    output: () => {
      throw new Error('cannot tell');
    },
  }),
  stage({
    name: 'shapes',
    params: {
      type: 'object',
      additionalProperties: false,
      properties: {
        size: {
          oneOf: [
            { type: 'integer', minimum: 1 },
            { type: 'object', additionalProperties: false, required: ['w', 'h'], properties: { w: { type: 'integer' }, h: { type: 'integer' } } },
          ],
        },
        mode: { anyOf: [{ enum: ['fast', 'slow'] }, { type: 'number' }] },
        tags: { type: 'array', items: { type: 'string' }, uniqueItems: true, default: [] },
        nested: { type: 'object', default: { deep: { list: [1] } } },
      },
    },
    output: 'files',
  }),
];
const REGISTRY = new Map([...registry, ...STAGES.map((s): [string, Stage<any>] => [s.name, s])]);

async function validate(yaml: string, options: Partial<LoadOptions> = {}): Promise<{ r: Result<Pipeline>; lines: string[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-validate-'));
  try {
    await writeFile(path.join(dir, 'p.yaml'), yaml);
    const r = await loadPipeline('p.yaml', { cwd: dir, registry: REGISTRY, ...options });
    return { r, lines: r.ok ? [] : r.errors.map(diagnosticLine) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('kinds: an output that depends on params is judged with defaults applied', async () => {
  const ok = await validate('stages:\n  m: { uses: make }\n  t: { uses: train, inputs: { dataset: m } }\n');
  assert.deepEqual(ok.lines, []);
  const bad = await validate('stages:\n  m: { uses: make, with: { kind: model } }\n  t: { uses: train, inputs: { dataset: m } }\n');
  assert.deepEqual(bad.lines, ["p.yaml:3:40: stages.t.inputs.dataset: port 'dataset' takes a 'dataset' artifact, but 'm' (make) produces a 'model' artifact"]);
});

test("kinds: 'any' fits everything; optional ports may be left out; extra ports need extraInputs", async () => {
  const yaml = `stages:
  d: { uses: make }
  m: { uses: make, with: { kind: model } }
  c: { uses: command, with: { run: x, kind: files }, inputs: { whatever: m, other: d } }
  e: { uses: evaluate, inputs: { model: m, dataset: d, anything: c } }
`;
  assert.deepEqual((await validate(yaml)).lines, []);
  const extra = await validate(`${yaml}  f: { uses: evaluate, inputs: { model: m, dataset: d, note: c } }\n`);
  assert.deepEqual(extra.lines, [
    "p.yaml:6:56: stages.f.inputs.note: stage 'evaluate' has no input port 'note' (ports: model, dataset, notes, anything) (did you mean 'notes'?)",
  ]);
});

test('runs_on: a host passes; anything else, or an output that cannot be told, does not cascade', async () => {
  const { lines } = await validate(`stages:
  gpu: { uses: machine }
  d: { uses: make }
  ok: { uses: command, with: { run: x }, runs_on: gpu }
  bad: { uses: command, with: { run: x }, runs_on: d }
  typo: { uses: machin }
  on-typo: { uses: command, with: { run: x }, runs_on: typo }
  weird: { uses: broken-output }
  on-weird: { uses: command, with: { run: x }, runs_on: weird, inputs: { w: weird } }
`);
  assert.deepEqual(
    lines.map((l) => l.split(';')[0]),
    [
      "p.yaml:5:52: stages.bad.runs_on: 'd' is not a host (make produces a 'dataset' artifact): runs_on must name a provision stage",
      "p.yaml:6:17: stages.typo.uses: unknown stage 'machin' (did you mean 'machine'?)",
    ],
  );
  assert.match(lines[1]!, /; built-in stages: .*\bmachine, make\b/);
});

test('no cascades: an unknown stage type is one problem, not one per param or port', async () => {
  const { lines } = await validate(
    'stages:\n  a:\n    uses: nope\n    with: { x: 1, y: [2] }\n    inputs: { p: b }\n  b: { uses: make, with: { kind: pictures } }\n  c: { uses: train, inputs: { dataset: b } }\n',
  );
  assert.deepEqual(
    lines.map((l) => l.split(';')[0]),
    ["p.yaml:3:11: stages.a.uses: unknown stage 'nope'", 'p.yaml:6:34: stages.b.with.kind: must be one of: "dataset", "model", "files"'],
  );
});

test('oneOf/anyOf: the branch the value is meant for, or one summary', async () => {
  const cases: [unknown, string[]][] = [
    [{ size: 3 }, []],
    [{ size: { w: 1, h: 2 } }, []],
    [{ size: 0 }, ['size: must be >= 1']],
    [{ size: { w: 'x' } }, ["size: missing required parameter 'h'", 'size.w: must be integer']],
    [{ size: 'big' }, ['size: must be an integer or a mapping']],
    [{ size: 2.5 }, ['size: must be an integer or a mapping']],
    [{ mode: 'medium' }, ['mode: must be one of: "fast", "slow"']],
    [{ mode: true }, ['mode: must be one of "fast", "slow" or a number']],
    [{ mode: 0.5 }, []],
    [{ tags: ['a', 'a'] }, ['tags: must not contain duplicates (items 1 and 0 are equal)']],
    [{ tags: 'a' }, ['tags: must be a list']],
    [{ extra: 1 }, ["extra: unknown parameter 'extra'; known: size, mode, tags, nested"]],
  ];
  const shapes = REGISTRY.get('shapes')!;
  for (const [value, want] of cases) {
    const got = checkParams(shapes.params, value as Record<string, unknown>).problems.map((p) => `${p.path}: ${p.message}`);
    assert.deepEqual(got, want, JSON.stringify(value));
  }
});

test('params: validators are compiled once per schema; defaults are fresh copies', async () => {
  const shapes = REGISTRY.get('shapes')!;
  assert.equal(validatorFor(shapes.params), validatorFor(shapes.params));
  const a = checkParams(shapes.params, {}).params;
  const b = checkParams(shapes.params, {}).params;
  assert.deepEqual(a, { tags: [], nested: { deep: { list: [1] } } });
  (a.nested as { deep: { list: number[] } }).deep.list.push(2);
  (a.tags as string[]).push('x');
  assert.deepEqual(b, { tags: [], nested: { deep: { list: [1] } } });
  assert.deepEqual(checkParams(shapes.params, {}).params, { tags: [], nested: { deep: { list: [1] } } });
  const input = { size: 2 };
  checkParams(shapes.params, input);
  assert.deepEqual(input, { size: 2 }, 'the input is not modified');
});

test('prototype safety: __proto__ and friends are plain names, never prototypes', async () => {
  const { lines } = await validate(
    'stages:\n  constructor: { uses: command, with: { run: x } }\n  toString: { uses: command, with: { run: x, __proto__: { polluted: 1 } }, needs: [hasOwnProperty] }\n',
    { set: ['stages.valueOf.with.run=y', 'stages.constructor.with.env.__proto__=1'] },
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(
    lines.map((l) => l.split(';')[0]),
    [
      "--set stages.constructor.with.env.__proto__=1: stages.constructor.with.env.__proto__: invalid path 'stages.constructor.with.env.__proto__'",
      '--set stages.valueOf.with.run=y: stages.valueOf.with.run: no stage named valueOf',
      "p.yaml:3:46: stages.toString.with.__proto__: reserved key '__proto__'",
      "p.yaml:3:84: stages.toString.needs[0]: no stage named 'hasOwnProperty'",
    ],
  );
});

test('every problem of every stage, in file order; big pipelines stay fast', async () => {
  const n = 300;
  let yaml = 'params: { seed: 1 }\nstages:\n';
  for (let i = 0; i < n; i++)
    yaml += `  s${i}:\n    uses: command\n    with: { run: "echo \${params.seed} ${'x'.repeat(2000)}", kind: ${i % 50 === 49 ? 'nope' : 'files'} }\n${i > 0 ? `    needs: [s${i - 1}]\n` : ''}`;
  const t = Date.now();
  const { lines } = await validate(yaml);
  const ms = Date.now() - t;
  assert.equal(lines.length, n / 50);
  assert.deepEqual(
    lines.map((l) => Number(l.split(':')[1])),
    [...lines.map((l) => Number(l.split(':')[1]))].sort((a, b) => a - b),
  );
  assert.ok(ms < 3000, `${ms} ms for ${n} stages`);
});
