// The malformed corpus: every file in test/fixtures/malformed/ is a broken pipeline whose header
// comments say what `pipe validate` must report:
//   # expect: 7:12: stages.split.with.valid: must be integer     (a located problem)
//   # expect: --set stages.x.with.y=abc: stages.x.with.y: ...    (a problem of a flag)
//   # expect: params/broken.yaml:2:4: ...                        (a problem in another file)
//   # set: path=value / # param: name=value / # params-file: params/x.yaml   (options)
// Each expectation must start one rendered diagnostic, every diagnostic must be expected (so
// no noise, e.g. from oneOf branches), and only flag problems may lack a position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline, type LoadOptions } from '../runner/load.js';
import { formatDiagnostic } from '../runner/diagnostics.js';
import type { Diagnostic } from '../runner/pipeline.js';
import type { Stage } from '../runner/types.js';
import { registry } from '../stages/registry.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/malformed');

// Test-only stage types with typed ports (the real ones are being written in parallel; these
// tests must not depend on them).
const none = async (): Promise<void> => undefined;
const testStages: Stage<any>[] = [
  {
    name: 'test-split',
    version: 1,
    description: 'splits images into a dataset (test stage)',
    params: {
      type: 'object',
      additionalProperties: false,
      required: ['valid'],
      properties: {
        valid: { type: 'integer', minimum: 0, description: 'images held out' },
        label_from: { enum: ['filename', 'folder'], default: 'filename', description: 'where labels come from' },
        seed: { type: 'integer', default: 0, description: 'shuffle seed' },
        sample: {
          type: 'object',
          additionalProperties: false,
          description: 'a small sample',
          properties: { train: { type: 'integer', minimum: 1 }, valid: { type: 'integer', minimum: 1 } },
        },
      },
    },
    inputs: { images: { kind: 'files' } },
    output: 'dataset',
    run: none,
  },
  {
    name: 'test-train',
    version: 1,
    description: 'trains a model (test stage)',
    params: {
      type: 'object',
      additionalProperties: false,
      properties: {
        epochs: { type: 'integer', minimum: 1, default: 1 },
        weights: { enum: ['imagenet', 'none'], default: 'imagenet' },
      },
    },
    inputs: { dataset: { kind: 'dataset' } },
    output: 'model',
    run: none,
  },
  {
    name: 'test-evaluate',
    version: 1,
    description: 'evaluates a model (test stage)',
    params: { type: 'object', additionalProperties: false, properties: {} },
    inputs: { model: { kind: 'model' }, dataset: { kind: 'dataset' }, extra: { kind: 'files', required: false } },
    output: 'evaluation',
    run: none,
  },
  {
    name: 'test-host',
    version: 1,
    description: 'provides a host (test stage)',
    params: { type: 'object', additionalProperties: false, properties: { provider: { enum: ['local', 'ec2'], default: 'local' } } },
    inputs: {},
    output: 'host',
    run: none,
  },
];
const TEST_REGISTRY: ReadonlyMap<string, Stage<any>> = new Map([...registry, ...testStages.map((s): [string, Stage<any>] => [s.name, s])]);

interface Fixture {
  readonly file: string;
  readonly expect: readonly string[];
  readonly options: LoadOptions;
}

function header(text: string, key: string): string[] {
  const re = new RegExp(`^# ${key}: (.*)$`, 'gm');
  return [...text.matchAll(re)].map((m) => m[1]!.trimEnd());
}

async function fixtures(): Promise<Fixture[]> {
  const names = (await readdir(DIR)).filter((n) => n.endsWith('.yaml')).sort();
  return Promise.all(
    names.map(async (file) => {
      const text = await readFile(path.join(DIR, file), 'utf8');
      const set = header(text, 'set');
      const params = header(text, 'param');
      const paramsFile = header(text, 'params-file')[0];
      return {
        file,
        expect: header(text, 'expect'),
        options: {
          cwd: DIR,
          registry: TEST_REGISTRY,
          ...(set.length ? { set } : {}),
          ...(params.length ? { params } : {}),
          ...(paramsFile ? { paramsFile } : {}),
        },
      };
    }),
  );
}

/** `line:col: path: message` for the pipeline itself; other files and flags are named. */
function render(d: Diagnostic, pipelineFile: string): string {
  const where = d.pos ? `${d.file === pipelineFile ? '' : `${d.file}:`}${d.pos.line}:${d.pos.col}` : d.file;
  return `${where}: ${d.path ? `${d.path}: ` : ''}${d.message}`;
}

const isFlag = (d: Diagnostic): boolean => d.file.startsWith('--set ') || d.file.startsWith('-p ');

test('the malformed corpus has at least 45 pipelines, each with expectations', async () => {
  const all = await fixtures();
  assert.ok(all.length >= 45, `only ${all.length} fixtures`);
  for (const f of all) assert.ok(f.expect.length > 0, `${f.file}: no '# expect:' line`);
});

test('every malformed pipeline reports exactly its located problems', async () => {
  const failures: string[] = [];
  for (const f of await fixtures()) {
    const r = await loadPipeline(f.file, f.options);
    if (r.ok) {
      failures.push(`${f.file}: loaded without error`);
      continue;
    }
    const lines = r.errors.map((d) => render(d, f.file));
    const got = `\n      ${lines.join('\n      ')}`;
    for (const want of f.expect) if (!lines.some((l) => l.startsWith(want))) failures.push(`${f.file}: wanted "${want}"; got:${got}`);
    for (const line of lines) if (!f.expect.some((want) => line.startsWith(want))) failures.push(`${f.file}: unexpected "${line}"`);
    const source = await readFile(path.join(DIR, f.file), 'utf8');
    for (const d of r.errors) {
      if (!d.pos && !isFlag(d)) failures.push(`${f.file}: no position: ${render(d, f.file)}`);
      const text = formatDiagnostic(d, d.file === f.file ? source : undefined);
      if (d.pos && d.file === f.file && !text.includes('^')) failures.push(`${f.file}: no caret under ${render(d, f.file)}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('a zero-byte pipeline file is an empty pipeline, located at 1:1', async () => {
  const r = await loadPipeline('params/empty.yaml', { cwd: DIR, registry: TEST_REGISTRY });
  assert.ok(!r.ok);
  assert.deepEqual(
    r.errors.map((d) => render(d, 'params/empty.yaml')),
    ["1:1: empty pipeline: expected a mapping with at least 'stages:'"],
  );
});
