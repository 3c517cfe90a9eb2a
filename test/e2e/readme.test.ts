// What README.md shows works as written. Every ```yaml block is validated by `pipe validate` (a
// stage fragment goes into a pipeline, with stand-ins for the stages it names but does not
// define); the "Any program as a stage" example is run. Every `npx pipe` command of the ```sh
// blocks is run in a copy of pipelines/: `pipe run` as --dry-run (the real runs take minutes or
// the internet), runs/diff/gc after two quick runs of the demo's first stages, and those that need AWS skipped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { registry } from '../../stages/registry.js';
import { collect, PIPE_BIN, REPO, Rig } from './rig.js';

interface Block {
  readonly lang: string;
  readonly text: string;
  /** The heading the block sits under. */
  readonly section: string;
}

async function readmeBlocks(): Promise<Block[]> {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const blocks: Block[] = [];
  let section = '';
  let open: { lang: string; lines: string[] } | undefined;
  for (const line of readme.split('\n')) {
    if (open) {
      if (line.startsWith('```')) {
        blocks.push({ lang: open.lang, text: `${open.lines.join('\n')}\n`, section });
        open = undefined;
      } else open.lines.push(line);
    } else if (line.startsWith('```')) open = { lang: line.slice(3).trim(), lines: [] };
    else if (line.startsWith('#')) section = line.replace(/^#+\s*/, '');
  }
  return blocks;
}

type StageDoc = { uses?: string; inputs?: Record<string, string>; needs?: string[]; runs_on?: string; with?: Record<string, unknown> };

/**
 * A runnable pipeline from a YAML block: a fragment (indented stages) goes under `stages:`, and
 * each stage it names without defining becomes a stand-in command stage of the kind its port
 * takes (a `provision` for runs_on).
 */
function completePipeline(text: string): string {
  const fragment = /^\s/.test(text);
  const yaml = fragment ? `name: readme\nstages:\n${text}` : text;
  const doc = parse(yaml) as { stages: Record<string, StageDoc> };
  const stubs: string[] = [];
  const defined = new Set(Object.keys(doc.stages));
  const add = (name: string, body: string): void => {
    if (defined.has(name)) return;
    defined.add(name);
    stubs.push(`  ${name}: ${body}`);
  };
  for (const s of Object.values(doc.stages)) {
    const stage = registry.get(s.uses ?? '');
    for (const [port, up] of Object.entries(s.inputs ?? {})) {
      const kind = stage?.inputs[port]?.kind ?? stage?.extraInputs?.kind ?? 'any';
      add(up, `{ uses: command, with: { run: "true", kind: ${kind === 'any' ? 'files' : kind} } }`);
    }
    for (const up of s.needs ?? []) add(up, '{ uses: command, with: { run: "true" } }');
    if (s.runs_on) add(s.runs_on, '{ uses: provision }');
  }
  return `${yaml}${stubs.length ? `${stubs.join('\n')}\n` : ''}`;
}

let rig: Rig;
let blocks: Block[];
before(async () => {
  rig = await Rig.create();
  blocks = await readmeBlocks();
});
after(async () => rig.cleanup());

test('every YAML snippet of the README validates', async () => {
  const yamlBlocks = blocks.filter((b) => b.lang === 'yaml');
  assert.ok(yamlBlocks.length >= 3, `found ${yamlBlocks.length} yaml blocks`);
  for (const [i, b] of yamlBlocks.entries()) {
    const file = await rig.write(`yaml-${i}/p.yaml`, completePipeline(b.text));
    // The folders of photos a snippet points `images` at are the reader's own: validate checks
    // that they exist, so make them (empty) where the reader would have them.
    const stages = (parse(await readFile(file, 'utf8')) as { stages: Record<string, StageDoc> }).stages;
    for (const s of Object.values(stages)) {
      const folder = s.uses === 'images' ? s.with?.['path'] : undefined;
      if (typeof folder === 'string' && !path.isAbsolute(folder)) await mkdir(path.resolve(path.dirname(file), folder), { recursive: true });
    }
    const r = await rig.run(['validate', file]);
    assert.equal(r.code, 0, `README yaml block under "${b.section}" does not validate:\n${await readFile(file, 'utf8')}\n${r.stdout}${r.stderr}`);
  }
});

test('"Any program as a stage" runs as written: `python train.py` finds train.py, its deps are hashed, its output is what it writes under $PIPE_OUT', async () => {
  const block = blocks.find((b) => b.lang === 'yaml' && b.section === 'Any program as a stage');
  assert.ok(block, 'the README has the "Any program as a stage" example');
  assert.match(block.text, /run: python train\.py --lr 0\.1/);
  const dir = 'any-program';
  await rig.write(`${dir}/p.yaml`, completePipeline(block.text));
  await rig.write(`${dir}/train.py`, 'print("training")\n');
  await rig.write(`${dir}/lib/util.py`, 'X = 1\n');
  // A stand-in for Python (the test needs none): like python, it opens the script by the path
  // given, relative to its working directory, and the "script" saves its model to $PIPE_OUT.
  const bin = await rig.write(
    'bin/python',
    '#!/bin/sh\ntest -f "$1" || { echo "python: can\'t open file \'$1\': No such file or directory" >&2; exit 2; }\nscript=$1; shift\necho "model of $script $* on GPU $CUDA_VISIBLE_DEVICES" > "$PIPE_OUT/model.txt"\n',
  );
  await chmod(bin, 0o755);
  const env = { PATH: `${path.dirname(bin)}:${process.env.PATH ?? ''}` };
  const r = await rig.run(['run', `${dir}/p.yaml`], env);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(await rig.read(`${dir}/.pipe/latest/readme/train/model.txt`), 'model of train.py --lr 0.1 on GPU 0\n');
  // deps: editing lib/*.py re-runs it.
  assert.match((await rig.run(['run', `${dir}/p.yaml`], env)).stderr, /train cached/);
  await rig.write(`${dir}/lib/util.py`, 'X = 2\n');
  const edited = await rig.run(['run', `${dir}/p.yaml`], env);
  assert.match(edited.stderr, /▶ train running/);
});

/** The `npx pipe ...` commands of the README's shell blocks, as argv lists. */
function pipeCommands(): { line: string; argv: string[] }[] {
  const out: { line: string; argv: string[] }[] = [];
  for (const b of blocks.filter((x) => x.lang === 'sh')) {
    for (const raw of b.text.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      for (const part of line.split('&&').map((p) => p.trim())) {
        if (!part.startsWith('npx pipe ')) continue;
        assert.doesNotMatch(part, /["'$|<>;]/, `a README pipe command this test cannot split: ${part}`);
        out.push({ line: part, argv: part.slice('npx pipe '.length).split(/\s+/) });
      }
    }
  }
  return out;
}

// Subcommands that need AWS (EC2, S3): not run here; their own tests use local fake servers.
const NEEDS_AWS = new Set(['down', 'push', 'pull', 'hosts']);

test("the README's `npx pipe` commands run as written (run as --dry-run), from the repository root", { timeout: 180_000 }, async () => {
  const commands = pipeCommands();
  assert.ok(commands.length >= 8, `found ${commands.length} commands`);
  await mkdir(rig.path('repo/pipelines'), { recursive: true });
  for (const f of await readdir(path.join(REPO, 'pipelines'))) {
    if (f.endsWith('.yaml')) await copyFile(path.join(REPO, 'pipelines', f), rig.path('repo/pipelines', f));
  }
  // Two quick runs of the demo's first stages (few photos, no training), so that runs and diff have history.
  const small = [
    '--until',
    'split',
    '--set',
    'stages.photos.with.train_per_class=12',
    '--set',
    'stages.photos.with.test=4',
    '--set',
    'stages.split.with.valid=8',
    '--set',
    'stages.split.with.sample.train=2',
    '--set',
    'stages.split.with.sample.valid=2',
  ];
  const repo = rig.path('repo');
  const inRepo = (args: string[]) =>
    collect(spawn(process.execPath, [PIPE_BIN, ...args], { cwd: repo, env: { ...process.env, CI: 'true', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  for (const seed of ['1', '2']) {
    const r = await inRepo(['run', 'pipelines/demo.yaml', ...small, '-p', `seed=${seed}`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
  const ran: string[] = [];
  for (const { line, argv } of commands) {
    if (NEEDS_AWS.has(argv[0]!)) continue;
    const args = argv[0] === 'run' ? [...argv, '--dry-run'] : argv;
    const r = await inRepo(args);
    assert.equal(r.code, 0, `README: ${line}\n${r.stdout}${r.stderr}`);
    ran.push(argv[0]!);
  }
  for (const sub of ['run', 'runs', 'diff']) assert.ok(ran.includes(sub), `no README \`pipe ${sub}\` command was run`);
});
