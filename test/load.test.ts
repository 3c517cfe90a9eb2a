// The front end's loader: positions, defaults, `${params.x}` typing, -p / --set /
// --params-file, and how diagnostics are printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline, type LoadOptions } from '../runner/load.js';
import { formatDiagnostic, diagnosticLine } from '../runner/diagnostics.js';
import { interpolate } from '../runner/interpolate.js';
import { parseOverride, typedValue } from '../runner/overrides.js';
import type { Diagnostic, Pipeline, Result } from '../runner/pipeline.js';
import type { Stage } from '../runner/types.js';
import { registry } from '../stages/registry.js';

const VALID = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/valid');

const counter: Stage<any> = {
  name: 'test-count',
  version: 1,
  description: 'test stage with typed params',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      n: { type: 'integer', default: 1 },
      sizes: { type: 'array', items: { type: 'integer' } },
      sample: { type: 'object', properties: { train: { type: 'integer' } }, additionalProperties: false },
      label: { type: 'string' },
      on: { type: 'boolean', default: false },
    },
  },
  inputs: {},
  output: 'files',
  run: async () => undefined,
};
const REGISTRY = new Map([...registry, [counter.name, counter]]);

async function withDir<T>(files: Record<string, string>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-load-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function load(dir: string, file: string, options: Partial<LoadOptions> = {}): Promise<Result<Pipeline>> {
  return loadPipeline(file, { cwd: dir, registry: REGISTRY, ...options });
}

function lines(r: Result<Pipeline>): string[] {
  return r.ok ? [] : r.errors.map(diagnosticLine);
}

test('load: the six-stage fixture, with defaults, references and positions', async () => {
  const r = await loadPipeline('six-stages.yaml', { cwd: VALID, registry });
  assert.ok(r.ok, lines(r).join('\n'));
  const p = r.value;
  assert.equal(p.name, 'six-stages');
  assert.equal(p.displayPath, 'six-stages.yaml');
  assert.equal(p.file, path.join(VALID, 'six-stages.yaml'));
  assert.equal(p.dir, VALID);
  assert.deepEqual(p.cache, { dir: '.pipe' });
  assert.deepEqual([...p.stages.keys()], ['data', 'split', 'features', 'train', 'evaluate', 'report']);
  assert.deepEqual(p.params, { seed: 42, image_size: 224, sample: { train: 200, valid: 50 }, tag: '007' });

  const data = p.stages.get('data')!;
  assert.deepEqual(data.with, { run: 'echo fetching > data.txt', deps: ['scripts/*.sh'], env: {}, kind: 'files', workdir: 'pipeline' }); // defaults filled in
  const split = p.stages.get('split')!;
  assert.deepEqual(split.with.run, ['sh', '-c', 'echo split seed=42 size=224 > split.txt']); // embedded: stringified
  assert.deepEqual(split.with.env, { SEED: '42', TAG: '007' }); // whole, but the schema wants a string
  assert.deepEqual(split.inputs, { images: 'data' });
  assert.equal(p.stages.get('train')!.with.run, 'echo train --samples 200 > model.txt; echo ${HOME} is literal');
  const report = p.stages.get('report')!;
  assert.deepEqual(report.with, { title: 'Six stages (007)', thumbnails: 64, max_per_view: 8 });
  assert.deepEqual(report.needs, ['data']);
  assert.deepEqual(report.inputs, { evaluation: 'evaluate', model: 'train', dataset: 'split' });

  assert.deepEqual(p.positionOf('stages'), { line: 13, col: 3 });
  assert.deepEqual(p.positionOf('stages.split.inputs.images'), { line: 21, col: 23 });
  assert.deepEqual(p.positionOf('stages.split.with.run[2]'), { line: 23, col: 21 });
  assert.deepEqual(p.positionOf('stages.report.needs[0]'), { line: 43, col: 13 });
  assert.deepEqual(p.positionOf('stages.data.with.kind'), { line: 17, col: 7 }, 'a default: its nearest ancestor, the with mapping');
  assert.deepEqual(p.positionOf('nothing.at.all'), { line: 3, col: 1 }, 'at worst, the document');
  assert.match(p.source, /^# yaml-language-server/);
});

test('load: a whole ${params.x} keeps its type (numbers, lists, mappings); embedded ones are text', async () => {
  const yaml = `params:
  n: 5
  sizes: [1, 2]
  sample: { train: 3 }
  on: true
stages:
  a:
    uses: test-count
    with: { n: "\${params.n}", sizes: "\${params.sizes}", sample: "\${params.sample}", label: "n=\${params.n} \${params.sizes} $\${x}", on: "\${params.on}" }
  b:
    uses: test-count
    with: { label: "\${params.n}", sample: { train: "\${params.sample.train}" } }
`;
  await withDir({ 'p.yaml': yaml }, async (dir) => {
    const r = await load(dir, 'p.yaml');
    assert.ok(r.ok, lines(r).join('\n'));
    assert.deepEqual(r.value.stages.get('a')!.with, { n: 5, sizes: [1, 2], sample: { train: 3 }, label: 'n=5 [1,2] ${x}', on: true });
    assert.deepEqual(r.value.stages.get('b')!.with, { label: '5', sample: { train: 3 }, n: 1, on: false });
    // A reference is a copy: the stage's params do not alias the pipeline's.
    assert.notEqual(r.value.stages.get('a')!.with.sample, r.value.params.sample);
  });
});

test('load: the name defaults to the file name, which must then be a valid name', async () => {
  const body = 'stages:\n  a:\n    uses: command\n    with: { run: "true" }\n';
  await withDir({ 'my-pipe.v2.yml': body, 'bad name.yaml': body }, async (dir) => {
    const ok = await load(dir, 'my-pipe.v2.yml');
    assert.ok(ok.ok);
    assert.equal(ok.value.name, 'my-pipe.v2');
    const bad = await load(dir, 'bad name.yaml');
    assert.deepEqual(
      lines(bad).map((l) => l.slice(0, 65)),
      ["bad name.yaml:1:1: name: the file name 'bad name' cannot serve as"],
    );
  });
});

const PIPE = `params:
  seed: 7
  name: world
  model: { lr: 0.1, layers: 2 }
stages:
  a:
    uses: command
    with:
      run: "echo hello \${params.name}"
      env: { SEED: "\${params.seed}" }
  b:
    uses: test-count
    needs: [a]
    with: { n: "\${params.seed}", label: "\${params.seed}" }
`;

test('load: precedence is file < --params-file < -p < --set; values typed by their target', async () => {
  await withDir({ 'p.yaml': PIPE, 'over.yaml': 'name: file\nmodel: { lr: 0.5 }\n' }, async (dir) => {
    const r = await load(dir, 'p.yaml', {
      paramsFile: 'over.yaml',
      params: ['seed=008', 'name=flag'],
      set: ['params.name=set', 'stages.a.with.run=007', 'stages.a.with.deps=[x.py, "y z.py"]', 'stages.b.with.sizes=[1, 2]'],
    });
    assert.ok(r.ok, lines(r).join('\n'));
    assert.deepEqual(r.value.params, { seed: 8, name: 'set', model: { lr: 0.5, layers: 2 } });
    const a = r.value.stages.get('a')!;
    assert.equal(a.with.run, '007', 'the schema wants a string: the text as typed');
    assert.deepEqual(a.with.deps, ['x.py', 'y z.py']);
    assert.deepEqual(a.with.env, { SEED: '008' }, 'a -p value referenced where a string is wanted keeps its text');
    const b = r.value.stages.get('b')!;
    assert.equal(b.with.n, 8);
    assert.equal(b.with.label, '008');
    assert.deepEqual(b.with.sizes, [1, 2]);
  });
});

test('load: problems from flags are reported against the flag, without a position', async () => {
  await withDir({ 'p.yaml': PIPE }, async (dir) => {
    const r = await load(dir, 'p.yaml', { set: ['stages.b.with.n=abc', 'stages.nope.with.x=1', 'stages.a.with.run.deep=1', 'novalue'], params: ['=1'] });
    assert.ok(!r.ok);
    const flagged = r.errors.map((d) => ({ file: d.file, pos: d.pos, path: d.path, message: d.message.split(';')[0] }));
    assert.deepEqual(flagged, [
      { file: '-p =1', pos: undefined, path: '', message: 'expected name=value' },
      { file: '--set novalue', pos: undefined, path: '', message: 'expected path=value (e.g. stages.split.with.valid=500)' },
      { file: '--set stages.nope.with.x=1', pos: undefined, path: 'stages.nope.with.x', message: 'no stage named nope' },
      {
        file: '--set stages.a.with.run.deep=1',
        pos: undefined,
        path: 'stages.a.with.run.deep',
        message: "cannot set a key inside 'run': it is the value 'echo hello ${params.name}', not a mapping",
      },
      { file: '--set stages.b.with.n=abc', pos: undefined, path: 'stages.b.with.n', message: 'must be integer' },
    ]);
    assert.equal(formatDiagnostic(r.errors[4]!, undefined), '--set stages.b.with.n=abc: stages.b.with.n: must be integer');
  });
});

test('load: the params file is located in itself; its values are named where they do not fit', async () => {
  await withDir({ 'p.yaml': PIPE, 'dup.yaml': 'seed: 1\nseed: 2\n', 'bad.yaml': 'seed: [1\n', 'type.yaml': '# comment\nseed: "x"\n' }, async (dir) => {
    const dup = await load(dir, 'p.yaml', { paramsFile: 'dup.yaml' });
    assert.deepEqual(lines(dup), ["dup.yaml:2:1: seed: duplicate key 'seed'"]);
    assert.ok(!dup.ok && dup.errors[0]!.related?.[0]?.pos?.line === 1, 'the first definition is related');
    const bad = await load(dir, 'p.yaml', { paramsFile: 'bad.yaml' });
    assert.ok(!bad.ok && bad.errors.every((d) => d.file === 'bad.yaml' && d.pos), lines(bad).join('\n'));
    const type = await load(dir, 'p.yaml', { paramsFile: 'type.yaml' });
    assert.deepEqual(lines(type), ['p.yaml:14:16: stages.b.with.n: must be integer (value of ${params.seed}, from type.yaml:2:7)']);
    const missing = await load(dir, 'p.yaml', { paramsFile: 'nope.yaml' });
    assert.deepEqual(lines(missing), ['nope.yaml: no such file']);
  });
});

test('load: unreadable, empty, BOM-prefixed and oversized files', async () => {
  await withDir(
    {
      'empty.yaml': '',
      'bom.yaml': '\ufeffstages:\n  a:\n    uses: command\n    with: { run: x }\n',
      'huge.yaml': `x: "${'a'.repeat(5 * 1024 * 1024)}"\n`,
      'sub/keep': '',
    },
    async (dir) => {
      assert.deepEqual(lines(await load(dir, 'missing.yaml')), ['missing.yaml: no such file']);
      assert.deepEqual(lines(await load(dir, 'sub')), ['sub: is a directory, not a YAML file']);
      assert.deepEqual(lines(await load(dir, 'empty.yaml')), ["empty.yaml:1:1: empty pipeline: expected a mapping with at least 'stages:'"]);
      const bom = await load(dir, 'bom.yaml');
      assert.ok(bom.ok, lines(bom).join('\n'));
      assert.deepEqual(bom.value.positionOf('stages.a.uses'), { line: 3, col: 11 });
      assert.match(lines(await load(dir, 'huge.yaml'))[0]!, /^huge\.yaml: file is too large/);
    },
  );
});

test('load: a path outside cwd is shown absolute; inside, relative', async () => {
  await withDir({ 'x/p.yaml': 'stages:\n  a: { uses: nope }\n' }, async (dir) => {
    const inside = await load(dir, 'x/p.yaml');
    assert.ok(!inside.ok);
    assert.equal(inside.errors[0]!.file, path.join('x', 'p.yaml'));
    const outside = await load(path.join(dir, 'x'), path.join(dir, 'x/p.yaml'), { cwd: os.tmpdir() === dir ? '/' : path.join(dir, 'elsewhere') });
    assert.ok(!outside.ok);
    assert.equal(outside.errors[0]!.file, path.join(dir, 'x/p.yaml'));
  });
});

test('interpolate: whole, embedded, escaped, nested and unresolved references', () => {
  const params = { n: 3, list: [1, 2], m: { k: 'v' }, s: 'text' };
  const r = interpolate(
    { a: '${params.n}', b: 'x${params.n}y', c: '$${params.n}', d: ['${ params.m.k }'], e: '${params.list}', f: 'L=${params.list} M=${params.m}' },
    params,
    'w',
  );
  assert.deepEqual(r.value, { a: 3, b: 'x3y', c: '${params.n}', d: ['v'], e: [1, 2], f: 'L=[1,2] M={"k":"v"}' });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(
    r.references.map((x) => [x.path, x.param, x.whole]),
    [
      ['w.a', 'n', true],
      ['w.b', 'n', false],
      ['w.d[0]', 'm.k', true],
      ['w.e', 'list', true],
      ['w.f', 'list', false],
      ['w.f', 'm', false],
    ],
  );
  const bad = interpolate({ a: '${params.zz}', b: '${params.m.zz}', c: '${env.X}', d: 'a ${params', e: '${params.s.x}' }, params, 'w');
  assert.deepEqual(
    bad.problems.map((p) => `${p.path}: ${p.message.split(' (')[0]}`),
    [
      'w.a: unresolved reference ${params.zz}: no pipeline param zz',
      'w.b: unresolved reference ${params.m.zz}: no pipeline param m.zz',
      'w.c: unknown reference ${env.X}: only ${params.<name>} is supported',
      'w.d: unterminated ${',
      'w.e: unresolved reference ${params.s.x}: no pipeline param s.x',
    ],
  );
  // The prototype is no param.
  assert.equal(interpolate('${params.constructor}', {}, 'w').problems.length, 1);
});

test('overrides: parsing flags and typing their values', () => {
  assert.deepEqual(parseOverride('stages.a.with.x=1=2', '--set'), { path: ['stages', 'a', 'with', 'x'], raw: '1=2', flag: '--set stages.a.with.x=1=2' });
  assert.deepEqual(parseOverride('seed=7', '-p'), { path: ['params', 'seed'], raw: '7', flag: '-p seed=7' });
  assert.equal((parseOverride('a..b=1', '--set') as Diagnostic).message, "invalid path 'a..b'");
  assert.equal((parseOverride('__proto__.x=1', '--set') as Diagnostic).message, "invalid path '__proto__.x'");
  assert.equal(typedValue('500', { type: 'integer' }), 500);
  assert.equal(typedValue('007', { type: 'string' }), '007');
  assert.equal(typedValue('true', { enum: ['true', 'false'] }), 'true');
  assert.equal(typedValue('true', undefined), true);
  assert.deepEqual(typedValue('[a, 1]', { type: 'array' }), ['a', 1]);
  assert.deepEqual(typedValue('{a: 1}', undefined), { a: 1 });
  assert.equal(typedValue('[unclosed', undefined), '[unclosed');
  assert.equal(typedValue('"open', undefined), '"open');
  assert.equal(typedValue('', { type: 'string' }), '');
});

test('diagnostics: the offending line with a caret under the node, and related places', () => {
  const source = 'stages:\n  split:\n    with:\n      valid: abc\n';
  const d: Diagnostic = { file: 'x.yaml', pos: { line: 4, col: 14 }, path: 'stages.split.with.valid', message: 'must be integer' };
  assert.equal(formatDiagnostic(d, source), 'x.yaml:4:14: stages.split.with.valid: must be integer\n   4 |       valid: abc\n     |              ^^^');
  assert.equal(formatDiagnostic(d), 'x.yaml:4:14: stages.split.with.valid: must be integer');
  // Tabs count as one column and are shown as one space, so the caret stays under the node.
  assert.equal(formatDiagnostic({ file: 'x', pos: { line: 1, col: 3 }, path: '', message: 'm' }, '\t\tkey: 1\n'), 'x:1:3: m\n   1 |   key: 1\n     |   ^^^');
  // Wide characters take two columns.
  assert.equal(formatDiagnostic({ file: 'x', pos: { line: 1, col: 5 }, path: 'p', message: 'm' }, 'é猫: bad\n').split('\n')[2], '     |      ^^^');
  // A quoted scalar and a reference are underlined whole.
  assert.match(formatDiagnostic({ file: 'x', pos: { line: 1, col: 6 }, path: '', message: 'm' }, 'run: "a b c"\n'), /\n {5}\| {6}\^{7}$/);
  assert.match(formatDiagnostic({ file: 'x', pos: { line: 1, col: 11 }, path: '', message: 'm' }, 'run: echo ${params.x} y\n'), /\n {5}\| {11}\^{11}$/);
  const cycle: Diagnostic = {
    file: 'p.yaml',
    pos: { line: 2, col: 10 },
    path: 'stages.b.needs[0]',
    message: 'cycle: a -> b -> a',
    related: [
      { pos: { line: 2, col: 10 }, path: 'stages.b.needs[0]', message: 'b depends on a' },
      { pos: { line: 1, col: 10 }, path: 'stages.a.needs[0]', message: 'a depends on b' },
    ],
  };
  assert.equal(
    formatDiagnostic(cycle, 'a: {needs: [b]}\nb: {needs: [a]}\n'),
    [
      'p.yaml:2:10: stages.b.needs[0]: cycle: a -> b -> a',
      '   2 | b: {needs: [a]}',
      '     |          ^',
      '  note: p.yaml:2:10: stages.b.needs[0]: b depends on a',
      '  note: p.yaml:1:10: stages.a.needs[0]: a depends on b',
      '     1 | a: {needs: [b]}',
      '       |          ^',
    ].join('\n'),
  );
  // Control characters from the file never reach the terminal raw; the caret still lines up.
  const evil = formatDiagnostic({ file: 'x', pos: { line: 1, col: 12 }, path: 'stages.\u001b[2J', message: "unknown key 'a\rb'" }, 'k: "\u001b[31m" bad\n');
  assert.equal(evil, `x:1:12: stages.\\x1b[2J: unknown key 'a\\rb'\n   1 | k: "\\x1b[31m" bad\n     | ${' '.repeat(14)}^^^`);
  assert.doesNotMatch(evil, /[\u0000-\u0009\u000b-\u001f]/);
  const colored = formatDiagnostic(d, source, true);
  assert.match(colored, /\u001b\[1mx\.yaml:4:14\u001b\[22m/);
  assert.match(colored, /\u001b\[31m {13}\^\^\^\u001b\[39m/);
  // A very long line is clipped around the column, the caret still under the node.
  const long = `${'x'.repeat(500)} bad ${'y'.repeat(500)}`;
  const [, shown, caret] = formatDiagnostic({ file: 'x', pos: { line: 1, col: 502 }, path: '', message: 'm' }, long).split('\n');
  assert.ok(shown!.length < 200);
  assert.equal(shown!.indexOf('bad'), caret!.indexOf('^'));
});

test('load: every valid fixture loads without a problem', async () => {
  const { readdir } = await import('node:fs/promises');
  const names = (await readdir(VALID)).filter((n) => n.endsWith('.yaml'));
  assert.ok(names.length >= 3);
  for (const name of names) {
    const r = await loadPipeline(name, { cwd: VALID, registry });
    assert.ok(r.ok, `${name}: ${lines(r).join('\n')}`);
  }
  const anchors = await loadPipeline('anchors.yaml', { cwd: VALID, registry });
  assert.ok(anchors.ok);
  assert.deepEqual(anchors.value.stages.get('b')!.with, { run: ['echo', 'b'], env: { LANG: 'C' }, deps: [], kind: 'files', workdir: 'pipeline' });
  assert.deepEqual(anchors.value.stages.get('c')!.with, { run: 'true', env: { LANG: 'C' }, deps: [], kind: 'files', workdir: 'pipeline' });
});
