// A corpus of malformed pipelines, each with the located messages it must produce
// (`line:col: json.path: message`). Every problem in a file is reported at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../runner/load.js';
import { formatDiagnostic } from '../runner/diagnostics.js';
import { registry } from '../stages/registry.js';
import type { Stage } from '../runner/types.js';

interface Case {
  readonly name: string;
  readonly yaml: string;
  /** Substrings of `line:col: path: message` lines (without the file name). */
  readonly expect: readonly string[];
  readonly set?: string[];
  readonly params?: string[];
}

// Test-only stages with fixed ports (the built-in command and report stages accept any port).
const trainer: Stage = { name: 'trainer', version: 1, description: 'test', params: { type: 'object', additionalProperties: false, properties: {} }, inputs: { dataset: { kind: 'dataset' } }, output: 'model', run: async () => undefined };
const source: Stage = { name: 'source', version: 1, description: 'test', params: { type: 'object', additionalProperties: false, properties: {} }, inputs: {}, output: 'files', run: async () => undefined };
const REGISTRY = new Map([...registry, ['trainer', trainer], ['source', source]]);

const CMD = 'uses: command\n    with: { run: "true" }';

const CASES: readonly Case[] = [
  { name: 'empty file', yaml: '', expect: ['1:1: empty pipeline'] },
  { name: 'only a comment', yaml: '# nothing\n', expect: ['1:1: empty pipeline'] },
  { name: 'top level is a list', yaml: '- a\n- b\n', expect: ['1:1: the top level must be a mapping'] },
  { name: 'top level is a scalar', yaml: 'hello\n', expect: ['1:1: the top level must be a mapping'] },
  { name: 'syntax: bad indentation', yaml: 'stages:\n  a:\n    uses: command\n   with: {}\n', expect: ['4:1: YAML syntax error: All mapping items must start at the same column'] },
  { name: 'syntax: unclosed flow map', yaml: 'stages:\n  a: { uses: command\n', expect: ['YAML syntax error'] },
  { name: 'syntax: tab indentation', yaml: 'stages:\n\ta:\n\t\tuses: command\n', expect: ['2:1: YAML syntax error'] },
  { name: 'duplicate top-level key', yaml: `stages:\n  a:\n    ${CMD}\nstages:\n  b:\n    ${CMD}\n`, expect: ["5:1: stages: duplicate key 'stages'"] },
  { name: 'duplicate stage', yaml: `stages:\n  a:\n    ${CMD}\n  a:\n    ${CMD}\n`, expect: ["5:3: stages.a: duplicate key 'a'"] },
  { name: 'duplicate param key', yaml: 'stages:\n  a:\n    uses: command\n    with:\n      run: x\n      run: y\n', expect: ["6:7: stages.a.with.run: duplicate key 'run'"] },
  { name: 'missing stages', yaml: 'name: x\n', expect: ["1:1: stages: missing 'stages'"] },
  { name: 'stages is a list', yaml: 'stages:\n  - a\n', expect: ['2:3: stages: must be a mapping of stage name to stage'] },
  { name: 'stages empty', yaml: 'stages: {}\n', expect: ['1:9: stages: no stages'] },
  { name: 'unknown top-level key', yaml: `stage:\n  a: 1\nstages:\n  a:\n    ${CMD}\n`, expect: ["1:1: stage: unknown top-level key 'stage' (did you mean 'stages'?)"] },
  { name: 'bad pipeline name', yaml: `name: ../evil\nstages:\n  a:\n    ${CMD}\n`, expect: ['1:7: name: must be a name of letters'] },
  { name: 'params not a mapping', yaml: `params: [1, 2]\nstages:\n  a:\n    ${CMD}\n`, expect: ['1:9: params: must be a mapping'] },
  { name: 'cache unknown key', yaml: `cache: { remote: s3://b, where: x }\nstages:\n  a:\n    ${CMD}\n`, expect: ["1:26: cache.where: unknown key 'where'"] },
  { name: 'stage name escapes a directory', yaml: `stages:\n  ../up:\n    ${CMD}\n`, expect: ["2:3: stages.../up: invalid stage name '../up'"] },
  { name: 'stage name with a slash', yaml: `stages:\n  a/b:\n    ${CMD}\n`, expect: ["2:3: stages.a/b: invalid stage name"] },
  { name: 'stage is a scalar', yaml: 'stages:\n  a: command\n', expect: ['2:6: stages.a: a stage must be a mapping'] },
  { name: 'missing uses', yaml: 'stages:\n  a:\n    with: { run: x }\n', expect: ["3:5: stages.a: missing 'uses'"] },
  { name: 'unknown uses with suggestion', yaml: 'stages:\n  a:\n    uses: comand\n', expect: ["3:11: stages.a.uses: unknown stage 'comand' (did you mean 'command'?)"] },
  { name: 'uses not a string', yaml: 'stages:\n  a:\n    uses: [command]\n', expect: ['3:11: stages.a.uses: must be a stage name'] },
  { name: 'unknown stage key', yaml: 'stages:\n  a:\n    uses: command\n    whith: { run: x }\n', expect: ["4:5: stages.a.whith: unknown key 'whith' (did you mean 'with'?)", "3:5: stages.a.with: missing required parameter 'run'"] },
  { name: 'with not a mapping', yaml: 'stages:\n  a:\n    uses: command\n    with: [run]\n', expect: ['4:11: stages.a.with: must be a mapping of parameters'] },
  { name: 'missing required param', yaml: 'stages:\n  a:\n    uses: command\n    with: { env: {} }\n', expect: ["4:11: stages.a.with: missing required parameter 'run'"] },
  { name: 'unknown param', yaml: 'stages:\n  a:\n    uses: command\n    with:\n      run: x\n      nope: 1\n', expect: ["6:7: stages.a.with.nope: unknown parameter 'nope'"] },
  { name: 'wrong type (oneOf reduced)', yaml: 'stages:\n  a:\n    uses: command\n    with:\n      run: 12\n', expect: ['5:12: stages.a.with.run: must be a string or a list of strings'] },
  { name: 'wrong item type in a list', yaml: 'stages:\n  a:\n    uses: command\n    with:\n      run: x\n      deps: [a, 3]\n', expect: ['6:17: stages.a.with.deps[1]: must be a string'] },
  { name: 'enum', yaml: 'stages:\n  a:\n    uses: command\n    with:\n      run: x\n      kind: pictures\n', expect: ['6:13: stages.a.with.kind: must be one of: "host", "files"'] },
  { name: 'env value not a string', yaml: 'stages:\n  a:\n    uses: command\n    with:\n      run: x\n      env: { A: 1 }\n', expect: ['6:17: stages.a.with.env.A: must be a string'] },
  { name: 'range (report thumbnails)', yaml: `stages:\n  e:\n    uses: command\n    with: { run: x, kind: evaluation }\n  r:\n    uses: report\n    inputs: { evaluation: e }\n    with: { thumbnails: 5 }\n`, expect: ['8:25: stages.r.with.thumbnails: must be >= 32'] },
  { name: 'huge number', yaml: `stages:\n  e:\n    uses: command\n    with: { run: x, kind: evaluation }\n  r:\n    uses: report\n    inputs: { evaluation: e }\n    with: { thumbnails: 1e400 }\n`, expect: ['8:25: stages.r.with.thumbnails: must be'] },
  { name: 'input from a missing stage', yaml: `stages:\n  a:\n    uses: command\n    inputs: { src: nope }\n    with: { run: x }\n`, expect: ["4:20: stages.a.inputs.src: no stage named 'nope'"] },
  { name: 'input name suggestion', yaml: `stages:\n  data:\n    ${CMD}\n  a:\n    uses: command\n    inputs: { src: dta }\n    with: { run: x }\n`, expect: ["(did you mean 'data'?)"] },
  { name: 'input that is not a name', yaml: `stages:\n  a:\n    uses: command\n    inputs: { src: [x] }\n    with: { run: x }\n`, expect: ['4:20: stages.a.inputs.src: must be the name of an upstream stage'] },
  { name: 'inputs not a mapping', yaml: `stages:\n  a:\n    uses: command\n    inputs: [x]\n    with: { run: x }\n`, expect: ['4:13: stages.a.inputs: must be a mapping'] },
  { name: 'port the stage does not have', yaml: `stages:\n  d:\n    uses: command\n    with: { run: x, kind: dataset }\n  t:\n    uses: trainer\n    inputs: { dataset: d, pictures: d }\n`, expect: ["7:27: stages.t.inputs.pictures: stage 'trainer' has no input port 'pictures' (ports: dataset)"] },
  { name: 'port on a stage without ports', yaml: `stages:\n  d:\n    uses: command\n    with: { run: x }\n  t:\n    uses: source\n    inputs: { x: d }\n`, expect: ["7:15: stages.t.inputs.x: stage 'source' has no input port 'x' (it takes no inputs)"] },
  { name: 'kind mismatch', yaml: `stages:\n  e:\n    uses: command\n    with: { run: x, kind: model }\n  r:\n    uses: report\n    inputs: { evaluation: e }\n`, expect: ["7:27: stages.r.inputs.evaluation: port 'evaluation' takes a evaluation artifact, but 'e' (command) produces model"] },
  { name: 'missing required port', yaml: 'stages:\n  r:\n    uses: report\n', expect: ["3:5: stages.r: missing input 'evaluation'"] },
  { name: 'input is itself', yaml: 'stages:\n  a:\n    uses: command\n    inputs: { me: a }\n    with: { run: x }\n', expect: ['4:19: stages.a.inputs.me: a stage cannot take its own output as input'] },
  { name: 'needs a missing stage', yaml: `stages:\n  a:\n    ${CMD}\n    needs: [b]\n`, expect: ["5:13: stages.a.needs[0]: no stage named 'b'"] },
  { name: 'needs itself', yaml: `stages:\n  a:\n    ${CMD}\n    needs: [a]\n`, expect: ['5:13: stages.a.needs[0]: a stage cannot need itself'] },
  { name: 'needs not a list', yaml: `stages:\n  a:\n    ${CMD}\n    needs: b\n`, expect: ['5:12: stages.a.needs: must be a list of stage names'] },
  { name: 'runs_on a missing stage', yaml: `stages:\n  a:\n    ${CMD}\n    runs_on: gpu\n`, expect: ["5:14: stages.a.runs_on: no stage named 'gpu'"] },
  { name: 'runs_on a non-host', yaml: `stages:\n  h:\n    ${CMD}\n  a:\n    ${CMD}\n    runs_on: h\n`, expect: ["8:14: stages.a.runs_on: 'h' is not a host"] },
  { name: 'cycle of three', yaml: `stages:\n  a:\n    ${CMD}\n    needs: [c]\n  b:\n    ${CMD}\n    needs: [a]\n  c:\n    ${CMD}\n    needs: [b]\n`, expect: ['cycle: '] },
  { name: 'cycle through inputs', yaml: 'stages:\n  a:\n    uses: command\n    inputs: { x: b }\n    with: { run: x }\n  b:\n    uses: command\n    inputs: { y: a }\n    with: { run: x }\n', expect: ['cycle: a -> b -> a'] },
  { name: 'unresolved param', yaml: 'stages:\n  a:\n    uses: command\n    with: { run: "echo ${params.seed}" }\n', expect: ['4:18: stages.a.with.run: unresolved reference ${params.seed}: no pipeline param seed'] },
  { name: 'unresolved nested param', yaml: 'params: { model: { lr: 1 } }\nstages:\n  a:\n    uses: command\n    with: { run: "${params.model.momentum}" }\n', expect: ['5:18: stages.a.with.run: unresolved reference ${params.model.momentum}'] },
  { name: 'unknown reference namespace', yaml: 'stages:\n  a:\n    uses: command\n    with: { run: "${env.HOME}" }\n', expect: ['4:18: stages.a.with.run: unknown reference ${env.HOME}'] },
  { name: 'param keeps its type when whole', yaml: 'params: { n: 5 }\nstages:\n  a:\n    uses: command\n    with: { run: x, kind: "${params.n}" }\n', expect: ['5:27: stages.a.with.kind: must be one of'] },
  { name: 'alias bomb', yaml: 'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\nstages: {}\n', expect: ['1:1: YAML aliases expand too much'] },
  { name: 'unicode stage name', yaml: `stages:\n  données:\n    ${CMD}\n`, expect: ["2:3: stages.données: invalid stage name 'données'"] },
  { name: 'several problems at once', yaml: 'nam: x\nstages:\n  a:\n    uses: nope\n  b:\n    uses: command\n    with: { run: 1 }\n    needs: [zz]\n', expect: ["1:1: nam: unknown top-level key", "4:11: stages.a.uses: unknown stage 'nope'", '7:18: stages.b.with.run: must be', "8:13: stages.b.needs[0]: no stage named 'zz'"] },
  { name: '--set on a missing stage', yaml: `stages:\n  a:\n    ${CMD}\n`, set: ['stages.b.with.run=x'], expect: ['stages.b.with.run: no stage named b'] },
  { name: '--set with a bad value', yaml: `stages:\n  a:\n    ${CMD}\n`, set: ['stages.a.with.kind=pictures'], expect: ['stages.a.with.kind: must be one of'] },
  { name: '-p without a value', yaml: `stages:\n  a:\n    ${CMD}\n`, params: ['seed'], expect: ['-p seed: expected name=value'] },
];

test(`malformed corpus: ${CASES.length} pipelines, each with its located messages`, async () => {
  assert.ok(CASES.length >= 40);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-corpus-'));
  try {
    const failures: string[] = [];
    for (const [i, c] of CASES.entries()) {
      const file = path.join(dir, `case${i}.yaml`);
      await writeFile(file, c.yaml);
      const r = await loadPipeline(file, { cwd: dir, registry: REGISTRY, ...(c.set ? { set: c.set } : {}), ...(c.params ? { params: c.params } : {}) });
      if (r.ok) {
        failures.push(`${c.name}: loaded without error`);
        continue;
      }
      const lines = r.errors.map((d) => `${d.pos ? `${d.pos.line}:${d.pos.col}` : d.file}: ${d.path ? `${d.path}: ` : ''}${d.message}`);
      for (const want of c.expect) {
        if (!lines.some((l) => l.includes(want))) failures.push(`${c.name}: wanted "${want}", got:\n    ${lines.join('\n    ')}`);
      }
      for (const d of r.errors) {
        const fromFlag = d.file.startsWith('--set') || d.file.startsWith('-p');
        if (!d.pos && !fromFlag) failures.push(`${c.name}: diagnostic without a position: ${d.path}: ${d.message}`);
        const text = formatDiagnostic(d, c.yaml);
        if (/\n\s+at .*:\d+:\d+/.test(text)) failures.push(`${c.name}: stack trace in message`);
      }
    }
    assert.deepEqual(failures, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
