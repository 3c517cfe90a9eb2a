// Fuzzing the YAML front end with fast-check: random mutations of valid pipelines (deleted and
// duplicated keys, wrong types, huge numbers, unicode, deep nesting, anchors and alias bombs,
// prototype names, random bytes, random --set/-p) go to loadPipeline in-process (fast, many
// cases) and, for a smaller sample, to the real binary's `validate`. Always: a result, never a
// throw; exit 0 or 2; no stack trace; bounded time; every diagnostic has a file and a position,
// or comes from a --set/-p flag. The case counts are printed. PIPE_FUZZ_RUNS / PIPE_FUZZ_CLI_RUNS
// raise them (bench/torture.ts does), PIPE_FUZZ_SEED replays a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadPipeline } from '../runner/load.js';
import { registry } from '../stages/registry.js';
import { formatDiagnostic } from '../runner/diagnostics.js';
import type { Diagnostic } from '../runner/pipeline.js';
import { runPipe, STACK_TRACE } from './e2e/faults.js';

const IN_PROCESS_RUNS = Number(process.env.PIPE_FUZZ_RUNS ?? 600);
const CLI_RUNS = Number(process.env.PIPE_FUZZ_CLI_RUNS ?? 16);
const SEED = process.env.PIPE_FUZZ_SEED !== undefined ? Number(process.env.PIPE_FUZZ_SEED) : (Date.now() ^ (process.pid << 10)) | 0;
/** Per case, in-process (generous: the machine is shared and noisy). */
const MAX_CASE_MS = 2_000;
/** Per case, for the binary, including Node's start-up. */
const MAX_CLI_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Valid pipelines.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const stageName = fc.constantFrom('prep', 'train', 'eval', 'report_1', 'data-2', 'x', 'split');
const paramName = fc.constantFrom('seed', 'size', 'name', 'lr', 'n');
const paramValue: fc.Arbitrary<Json> = fc.oneof(
  fc.integer({ min: -1000, max: 100000 }),
  fc.string({ maxLength: 12 }),
  fc.boolean(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const validPipeline: fc.Arbitrary<{ [k: string]: Json }> = fc
  .record({
    name: fc.option(fc.constantFrom('demo', 'dogs.cats', 'a_b-c'), { nil: undefined }),
    params: fc.dictionary(paramName, paramValue, { maxKeys: 4 }),
    stages: fc.uniqueArray(stageName, { minLength: 1, maxLength: 5 }),
    runs: fc.array(fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 })), {
      minLength: 5,
      maxLength: 5,
    }),
    links: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
    extras: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
  })
  .map(({ name, params, stages, runs, links, extras }) => {
    const out: { [k: string]: Json } = {};
    if (name) out.name = name;
    if (Object.keys(params).length > 0) out.params = params;
    const st: { [k: string]: Json } = {};
    const paramKeys = Object.keys(params);
    stages.forEach((id, i) => {
      let run: Json = runs[i]!;
      if (typeof run === 'string' && paramKeys.length > 0) run = `${run} \${params.${paramKeys[links[i]! % paramKeys.length]}}`;
      const s: { [k: string]: Json } = { uses: 'command', with: { run } };
      if (i > 0) {
        const up = stages[links[i]! % i]!;
        if (extras[i]) s.inputs = { src: up };
        else s.needs = [up];
      }
      if (extras[(i + 1) % 5]) (s.with as { [k: string]: Json }).env = { MODE: 'fast' };
      if (extras[(i + 2) % 5]) (s.with as { [k: string]: Json }).kind = 'dataset';
      st[id] = s;
    });
    out.stages = st;
    return out;
  });

// ---------------------------------------------------------------------------------------------
// Mutations of the document (before it is written out) and of its text (after).

const weird: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    null,
    true,
    false,
    0,
    -0,
    1e308,
    -1e308,
    2 ** 64,
    Number.MAX_SAFE_INTEGER + 2,
    1e-320,
    '',
    ' ',
    '~',
    'null',
    '0x1F',
    '1e999',
    '.nan',
    '.inf',
    'yes',
    'no',
    'on',
  ),
  fc.constantFrom<Json>(
    '../../etc/passwd',
    '/etc',
    '..',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '${params.nope}',
    '${}',
    '$${params.x}',
    '${params.__proto__}',
    '${params.constructor.name}',
  ),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom<Json>('é', '日本語', '🐶🐱', 'a\u0301', '\u202eevil', '\u200b', '\u0000', 'a\nb', 'x\ry', '\u001b[2J\u001b[31mred', '\ud800'),
  fc.double(),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map((b) => Number(b)),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxLength: 4 }) as fc.Arbitrary<Json>,
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxKeys: 3 }) as fc.Arbitrary<Json>,
);

const weirdKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'toString',
    'prototype',
    '..',
    '../x',
    '',
    ' ',
    'a.b',
    'a[0]',
    'stages',
    'uses',
    'with',
    'inputs',
    'needs',
    'runs_on',
    '<<',
    '$ref',
    'on',
    'yes',
    '1',
    '-1',
    'π',
    '🐶',
    'a\u0000b',
    'a\nb',
    'k'.repeat(300),
  ),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
);

type DocMutation =
  | { kind: 'delete'; at: number }
  | { kind: 'retype'; at: number; value: Json }
  | { kind: 'rename'; at: number; key: string }
  | { kind: 'add'; at: number; key: string; value: Json }
  | { kind: 'ref'; at: number; target: string };

const docMutation: fc.Arbitrary<DocMutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('retype' as const), at: fc.nat(), value: weird }),
  fc.record({ kind: fc.constant('rename' as const), at: fc.nat(), key: weirdKey }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), key: weirdKey, value: weird }),
  fc.record({ kind: fc.constant('ref' as const), at: fc.nat(), target: fc.oneof(stageName, weirdKey) }),
);

/** Every mapping in the document with the path to it, parents first. */
function mappings(doc: Json): { [k: string]: Json }[] {
  const out: { [k: string]: Json }[] = [];
  const walk = (v: Json): void => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      out.push(v);
      for (const c of Object.values(v)) walk(c);
    } else if (Array.isArray(v)) v.forEach(walk);
  };
  walk(doc);
  return out;
}

function define(m: { [k: string]: Json }, key: string, value: Json): void {
  // A plain own property even for "__proto__", as the YAML library makes it.
  Object.defineProperty(m, key, { value, enumerable: true, writable: true, configurable: true });
}

function applyDocMutation(doc: { [k: string]: Json }, m: DocMutation): void {
  const maps = mappings(doc);
  const target = maps[m.at % maps.length]!;
  const keys = Object.keys(target);
  const key = keys.length > 0 ? keys[m.at % keys.length]! : undefined;
  switch (m.kind) {
    case 'delete':
      if (key !== undefined) delete target[key];
      break;
    case 'retype':
      if (key !== undefined) define(target, key, m.value);
      break;
    case 'rename':
      if (key !== undefined) {
        const v = target[key]!;
        delete target[key];
        define(target, m.key, v);
      }
      break;
    case 'add':
      define(target, m.key, m.value);
      break;
    case 'ref': {
      // inputs/needs/runs_on at a stage that may be itself, missing, or form a cycle.
      const stages = doc.stages;
      if (!stages || typeof stages !== 'object' || Array.isArray(stages)) break;
      const ids = Object.keys(stages);
      if (ids.length === 0) break;
      const s = stages[ids[m.at % ids.length]!];
      if (!s || typeof s !== 'object' || Array.isArray(s)) break;
      const self = ids[m.at % ids.length]!;
      const to = m.at % 3 === 0 ? self : m.target;
      if (m.at % 4 === 0) define(s, 'needs', [to]);
      else if (m.at % 4 === 1) define(s, 'runs_on', to);
      else define(s, 'inputs', { src: to, [m.target]: self });
      break;
    }
    default: {
      const never: never = m;
      void never;
    }
  }
}

type TextMutation =
  | { kind: 'dupLine' | 'dropLine' | 'indent' | 'dedent' | 'tab' | 'truncate' | 'crlf' | 'bom' | 'docMarker'; at: number }
  | { kind: 'swap'; at: number; other: number }
  | { kind: 'bytes'; at: number; bytes: Uint8Array }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'nest'; at: number; depth: number; flow: 'seq' | 'map' | 'block' }
  | { kind: 'aliasBomb'; width: number; levels: number }
  | { kind: 'alias'; at: number; other: number }
  | { kind: 'huge'; at: number; size: number };

const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      'dupLine' as const,
      'dropLine' as const,
      'indent' as const,
      'dedent' as const,
      'tab' as const,
      'truncate' as const,
      'crlf' as const,
      'bom' as const,
      'docMarker' as const,
    ),
    at: fc.nat(),
  }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('bytes' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.constantFrom(
      '!!binary aGk=',
      '!!set { a }',
      '!!omap [ a: 1 ]',
      '!custom x',
      '!!timestamp 2001-12-14',
      '!!str',
      '? [a, b]\n: 1',
      '? { a: 1 }\n: 2',
      '&a',
      '*a',
      '*nope',
      '<<: *a',
      '"unterminated',
      "'",
      '{',
      ']',
      '%YAML 1.1\n---',
      '%TAG ! tag:x,2000:\n---',
      '#',
      '|',
      '>-',
      '- ',
      ': ',
      'x: y: z',
      '\u0000',
      '\uFEFF',
      '\u2028',
      '\r',
    ),
  }),
  fc.record({
    kind: fc.constant('nest' as const),
    at: fc.nat(),
    depth: fc.oneof(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 500, max: 5000 })),
    flow: fc.constantFrom('seq' as const, 'map' as const, 'block' as const),
  }),
  fc.record({ kind: fc.constant('aliasBomb' as const), width: fc.integer({ min: 2, max: 12 }), levels: fc.integer({ min: 2, max: 9 }) }),
  fc.record({ kind: fc.constant('alias' as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('huge' as const), at: fc.nat(), size: fc.integer({ min: 10_000, max: 300_000 }) }),
);

function applyTextMutation(text: string, m: TextMutation): string {
  const lines = text.split('\n');
  const i = 'at' in m ? m.at % Math.max(1, lines.length) : 0;
  const line = lines[i] ?? '';
  const valueAt = (l: string): number => {
    const c = l.indexOf(': ');
    return c >= 0 ? c + 2 : l.length;
  };
  switch (m.kind) {
    case 'dupLine':
      lines.splice(i, 0, line);
      return lines.join('\n');
    case 'dropLine':
      lines.splice(i, 1);
      return lines.join('\n');
    case 'indent':
      lines[i] = `  ${line}`;
      return lines.join('\n');
    case 'dedent':
      lines[i] = line.replace(/^ {1,2}/, '');
      return lines.join('\n');
    case 'tab':
      lines[i] = line.replace(/^ {2}/, '\t');
      return lines.join('\n');
    case 'truncate':
      return text.slice(0, m.at % (text.length + 1));
    case 'crlf':
      return text.replace(/\n/g, '\r\n');
    case 'bom':
      return `\uFEFF${text}`;
    case 'docMarker':
      lines.splice(i, 0, m.at % 2 ? '---' : '...');
      return lines.join('\n');
    case 'swap': {
      const j = m.other % Math.max(1, lines.length);
      [lines[i], lines[j]] = [lines[j] ?? '', line];
      return lines.join('\n');
    }
    case 'bytes': {
      const pos = m.at % (text.length + 1);
      return text.slice(0, pos) + Buffer.from(m.bytes).toString('latin1') + text.slice(pos);
    }
    case 'insert': {
      const pos = m.at % (text.length + 1);
      return text.slice(0, pos) + m.text + text.slice(pos);
    }
    case 'nest': {
      const v = valueAt(line);
      let nested: string;
      if (m.flow === 'seq') nested = '['.repeat(m.depth) + ']'.repeat(m.depth);
      else if (m.flow === 'map') nested = '{a: '.repeat(m.depth) + '1' + '}'.repeat(m.depth);
      else {
        const indent = line.length - line.trimStart().length;
        nested = `\n${Array.from({ length: Math.min(m.depth, 400) }, (_, k) => `${' '.repeat(indent + 2 + k)}k${k}:`).join('\n')} 1`;
      }
      lines[i] = line.slice(0, v) + nested;
      return lines.join('\n');
    }
    case 'aliasBomb': {
      const rows = [`l0: &l0 [${Array(m.width).fill('"lol"').join(', ')}]`];
      for (let k = 1; k <= m.levels; k++)
        rows.push(
          `l${k}: &l${k} [${Array(m.width)
            .fill(`*l${k - 1}`)
            .join(', ')}]`,
        );
      // At the top (unknown keys) or under a stage's `with` (an unknown param).
      return m.width % 2 ? `${rows.join('\n')}\n${text}` : text.replace(/(\n {4}with:\n)/, `$1${rows.map((r) => `      ${r}`).join('\n')}\n`);
    }
    case 'alias': {
      const j = m.other % Math.max(1, lines.length);
      const v = valueAt(line);
      lines[i] = `${line.slice(0, v)}&anc ${line.slice(v)}`;
      const w = lines[j] ?? '';
      const vw = valueAt(w);
      lines[j] = `${w.slice(0, vw)}*anc`;
      return lines.join('\n');
    }
    case 'huge': {
      const v = valueAt(line);
      lines[i] = `${line.slice(0, v)}${m.at % 2 ? '9'.repeat(m.size) : `"${'é'.repeat(m.size)}"`}`;
      return lines.join('\n');
    }
    default: {
      const never: never = m;
      return never;
    }
  }
}

const overridePath = fc.oneof(
  fc.constantFrom(
    'stages.prep.with.run',
    'stages.train.with.env.X',
    'stages.eval.needs',
    'params.seed',
    'name',
    'stages',
    'params',
    'stages.x.with',
    'stages.prep.inputs.src',
    'stages.__proto__.with.run',
    'params.constructor',
    'a..b',
    '.',
    '',
    'stages.prep.with.run.deeper',
  ),
  fc.string({ maxLength: 20 }),
);
const overrideValue = fc.oneof(
  fc.constantFrom('1', '[a, b]', '{a: 1}', '', '*a', '&a x', '!!binary aGk=', '!bad x', '[[[[', '1e999', '~', '${params.nope}', 'é', '\u001b[2J'),
  fc.string({ maxLength: 20 }),
);
interface OverrideArg {
  flag: '--set' | '-p';
  path: string;
  value: string;
  noEq: boolean;
}
const overrides: fc.Arbitrary<OverrideArg[]> = fc.array(
  fc.record({ flag: fc.constantFrom('--set' as const, '-p' as const), path: overridePath, value: overrideValue, noEq: fc.boolean() }),
  { minLength: 1, maxLength: 3 },
);

interface FuzzCase {
  readonly text: string;
  readonly set: string[];
  readonly params: string[];
}

const fuzzCase: fc.Arbitrary<FuzzCase> = fc
  .record({
    doc: validPipeline,
    // Weighted so that some cases stay valid and most break in one or two places.
    docMutations: fc.oneof(
      { arbitrary: fc.constant([] as DocMutation[]), weight: 2 },
      { arbitrary: fc.array(docMutation, { minLength: 1, maxLength: 3 }), weight: 3 },
    ),
    textMutations: fc.oneof(
      { arbitrary: fc.constant([] as TextMutation[]), weight: 3 },
      { arbitrary: fc.array(textMutation, { minLength: 1, maxLength: 2 }), weight: 2 },
    ),
    overrides: fc.oneof({ arbitrary: fc.constant([] as OverrideArg[]), weight: 4 }, { arbitrary: overrides, weight: 1 }),
    raw: fc.oneof({ arbitrary: fc.constant(undefined), weight: 19 }, { arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 1 }),
  })
  .map(({ doc, docMutations, textMutations, overrides: ov, raw }) => {
    let text: string;
    if (raw) text = Buffer.from(raw).toString('latin1');
    else {
      for (const m of docMutations) applyDocMutation(doc, m);
      try {
        text = stringify(doc, { aliasDuplicateObjects: false });
      } catch {
        text = JSON.stringify(doc);
      }
      for (const m of textMutations) text = applyTextMutation(text, m);
    }
    const set: string[] = [];
    const params: string[] = [];
    for (const o of ov) {
      const arg = o.noEq ? o.path : `${o.path}=${o.value}`;
      (o.flag === '--set' ? set : params).push(arg);
    }
    return { text, set, params };
  });

// ---------------------------------------------------------------------------------------------
// The properties.

function checkDiagnostics(errors: readonly Diagnostic[], source: string, file: string): void {
  assert.ok(errors.length > 0, 'not ok, but no diagnostics');
  const lines = source.split(/\r\n|\n|\r/).length;
  for (const d of errors) {
    assert.equal(typeof d.message, 'string');
    assert.ok(d.message.length > 0, `empty message: ${JSON.stringify(d)}`);
    assert.equal(typeof d.file, 'string');
    const fromFlag = d.file.startsWith('--set ') || d.file.startsWith('-p ');
    if (!fromFlag) {
      assert.equal(d.file, file, `diagnostic names another file: ${JSON.stringify(d)}`);
      assert.ok(d.pos, `diagnostic without a position: ${JSON.stringify(d)}`);
      assert.ok(Number.isInteger(d.pos.line) && d.pos.line >= 1 && d.pos.line <= lines + 1, `line out of range: ${JSON.stringify(d)}`);
      assert.ok(Number.isInteger(d.pos.col) && d.pos.col >= 1, `column out of range: ${JSON.stringify(d)}`);
    }
    for (const r of d.related ?? []) assert.equal(typeof r.message, 'string');
    // Formatting never throws either.
    const shown = formatDiagnostic(d, fromFlag ? undefined : source, false);
    assert.equal(typeof shown, 'string');
  }
}

test(`fuzz: loadPipeline on mutated pipelines never throws, answers in bounded time, locates every problem`, { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-fuzz-'));
  const file = path.join(dir, 'p.yaml');
  let cases = 0;
  let valid = 0;
  let invalid = 0;
  let slowest = 0;
  let diagnostics = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fuzzCase, async (c) => {
        await writeFile(file, c.text, 'latin1');
        cases++;
        const started = performance.now();
        let result;
        try {
          result = await loadPipeline('p.yaml', { cwd: dir, registry, set: c.set, params: c.params });
        } catch (e) {
          assert.fail(`loadPipeline threw: ${(e as Error)?.stack ?? String(e)}`);
        }
        const ms = performance.now() - started;
        slowest = Math.max(slowest, ms);
        assert.ok(ms < MAX_CASE_MS, `took ${ms.toFixed(0)} ms`);
        if (result.ok) {
          valid++;
          assert.ok(result.value.stages.size > 0);
        } else {
          invalid++;
          diagnostics += result.errors.length;
          if (process.env.PIPE_FUZZ_VERBOSE)
            console.log(`--- ${JSON.stringify(c)}\n${result.errors.map((e) => `${e.file}:${e.pos?.line}:${e.pos?.col}: ${e.path}: ${e.message}`).join('\n')}`);
          // What the front end read: the file as UTF-8 (written as latin1 bytes above).
          checkDiagnostics(result.errors, Buffer.from(c.text, 'latin1').toString('utf8'), 'p.yaml');
        }
      }),
      { numRuns: IN_PROCESS_RUNS, seed: SEED, endOnFailure: false },
    );
  } finally {
    console.log(
      `fuzz (in-process): ${cases} cases run (seed ${SEED}; ${valid} valid, ${invalid} invalid, ${diagnostics} diagnostics; slowest ${slowest.toFixed(0)} ms)`,
    );
    await rm(dir, { recursive: true, force: true });
  }
});

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const HEADER = /^(p\.yaml(:\d+:\d+)?|--set .*|-p .*): /;
const ALLOWED_LINE = [HEADER, /^ {3,}\d+ \| /, /^ {3,}\| /, /^ {2}note: /, /^ {5,}\d+ \| /, /^ {5,}\| /, /^\d+ problems? in \d+ files?$/];

test(
  `fuzz: the binary's validate exits 0 or 2, never prints a stack trace or a warning, every line is a located diagnostic`,
  { timeout: 600_000 },
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-fuzz-cli-'));
    let cases = 0;
    let slowest = 0;
    const codes: Record<string, number> = {};
    try {
      const samples = fc.sample(fuzzCase, { numRuns: CLI_RUNS, seed: SEED ^ 0x5eed });
      // Two at a time: Node's start-up dominates.
      for (let i = 0; i < samples.length; i += 2) {
        await Promise.all(
          samples.slice(i, i + 2).map(async (c, k) => {
            const sub = path.join(dir, String(i + k));
            await mkdir(sub);
            await writeFile(path.join(sub, 'p.yaml'), c.text, 'latin1');
            const args = ['validate', 'p.yaml', ...c.set.flatMap((s) => ['--set', s]), ...c.params.flatMap((p) => ['-p', p])];
            const r = await runPipe(sub, args, {}, MAX_CLI_MS);
            cases++;
            slowest = Math.max(slowest, r.ms);
            codes[String(r.code)] = (codes[String(r.code)] ?? 0) + 1;
            const what = `case ${i + k} (seed ${SEED}), args ${JSON.stringify(args.slice(2))}, file:\n${c.text.slice(0, 2000)}\n--- stderr:\n${r.stderr.slice(0, 4000)}`;
            assert.equal(r.timedOut, false, `timed out: ${what}`);
            assert.ok(r.code === 0 || r.code === 2, `exit ${r.code}: ${what}`);
            assert.doesNotMatch(r.stderr + r.stdout, STACK_TRACE, `stack trace: ${what}`);
            assert.doesNotMatch(r.stderr + r.stdout, /internal error|\(node:\d+\)|Warning:/, `internal error or runtime warning: ${what}`);
            // NO_COLOR is set: no escape sequence or carriage return may reach the terminal.
            assert.doesNotMatch(r.stderr + r.stdout, CONTROL, `raw control characters printed: ${what}`);
            if (r.code === 2) {
              const lines = r.stderr.split('\n').filter((l) => l !== '');
              for (const l of lines)
                assert.ok(
                  ALLOWED_LINE.some((re) => re.test(l)),
                  `a line that is not part of a located diagnostic: ${JSON.stringify(l)}\n${what}`,
                );
              const headers = lines.filter((l) => HEADER.test(l)).length;
              const summary = /^(\d+) problems? in 1 file$/m.exec(r.stderr);
              assert.ok(summary, `no summary line: ${what}`);
              assert.equal(headers, Number(summary[1]), `${summary[1]} problems announced, ${headers} diagnostics printed: ${what}`);
              for (const l of lines.filter((x) => /^p\.yaml/.test(x))) assert.match(l, /^p\.yaml:\d+:\d+: /, `diagnostic without a position: ${what}`);
            } else {
              assert.match(r.stdout, /1 pipeline valid/);
            }
          }),
        );
      }
    } finally {
      console.log(`fuzz (binary validate): ${cases} cases run (seed ${SEED}; exit codes ${JSON.stringify(codes)}; slowest ${slowest} ms)`);
      await rm(dir, { recursive: true, force: true });
    }
  },
);

// Port and param names that are also Object.prototype properties must be looked up as own
// properties (`stage.inputs[port]` once said "port 'constructor' takes a undefined artifact").
test('port, param and stage names that are Object.prototype properties are plain names (no prototype lookups)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-fuzz-proto-'));
  try {
    await writeFile(
      path.join(dir, 'p.yaml'),
      `params: { constructor: 1 }\nstages:\n  a:\n    uses: command\n    with: { workdir: out, run: 'echo x > o.txt' }\n  toString:\n    uses: command\n    inputs: { constructor: a, toString: a, valueOf: a }\n    with: { workdir: out, run: 'cat "$PIPE_IN_CONSTRUCTOR/o.txt" > o.txt' }\n`,
    );
    const r = await loadPipeline('p.yaml', { cwd: dir, registry });
    assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
    assert.deepEqual(Object.keys(r.value.stages.get('toString')!.inputs).sort(), ['constructor', 'toString', 'valueOf']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// BUG (reported): names and values from the YAML go into messages unescaped, so a key holding an
// escape sequence (ESC [2J clears the screen; a CR rewrites the line) reaches the user's terminal
// raw: \`pipe validate\` of an untrusted file can forge or hide its output.
test('diagnostics show control characters from the YAML escaped, not raw (no terminal escapes)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-fuzz-ctl-'));
  try {
    await writeFile(
      path.join(dir, 'p.yaml'),
      'stages:\n  a:\n    uses: command\n    with: { run: x, "\\e[2J\\e[31mall good": 1 }\n  "b\\rc":\n    uses: nope\n  c:\n    uses: command\n    with: { run: x }\n    # raw bytes too: \u001b]0;title\u0007\n    needs: ["\u001b[1A"]\n',
    );
    const r = await runPipe(dir, ['validate', 'p.yaml']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /unknown parameter/);
    assert.doesNotMatch(r.stderr + r.stdout, CONTROL, JSON.stringify(r.stderr));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
