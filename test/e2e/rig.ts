// A temp-dir rig for end-to-end tests: writes pipeline files and runs the real `pipe` binary.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, readFile, readdir, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const PIPE_BIN = path.join(REPO, 'bin/pipe.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class Rig {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Rig> {
    return new Rig(await mkdtemp(path.join(os.tmpdir(), 'pipe-e2e-')));
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  async write(rel: string, text: string): Promise<string> {
    const p = this.path(rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, text);
    return p;
  }

  async read(rel: string): Promise<string> {
    return readFile(this.path(rel), 'utf8');
  }

  /** How many times a fake command appended to a counter file. */
  async count(name: string): Promise<number> {
    try {
      return (await this.read(`counters/${name}`)).split('\n').filter(Boolean).length;
    } catch {
      return 0;
    }
  }

  spawn(args: string[], env: Record<string, string> = {}): ChildProcess {
    return spawn(process.execPath, [PIPE_BIN, ...args], {
      cwd: this.dir,
      env: { ...process.env, CI: 'true', NO_COLOR: '1', COUNTERS: this.path('counters'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  async run(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    await mkdir(this.path('counters'), { recursive: true });
    return collect(this.spawn(args, env));
  }

  /**
   * The run records, oldest first by their run-start time: run ids name the second only, so two
   * runs in one second would sort by their random suffix.
   */
  async runRecords(): Promise<Record<string, unknown>[][]> {
    const dir = this.path('.pipe/runs');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort(); // runs/<id>/: a run's report views
    const records = await Promise.all(
      files.map(async (f) =>
        (await readFile(path.join(dir, f), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      ),
    );
    const started = (r: Record<string, unknown>[]): string => String(r.find((e) => e['type'] === 'run-start')?.['time'] ?? '');
    return records.sort((a, b) => (started(a) < started(b) ? -1 : started(a) > started(b) ? 1 : 0));
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export function collect(child: ChildProcess): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** A command stage that records its invocation and writes `text` to out.txt. */
export function fakeStage(name: string, text: string, extra = ''): string {
  return `echo run >> "$COUNTERS/${name}"; ${extra} printf %s "${text}" > out.txt`;
}

/** Resolves with the first match of `re` in the child's stderr; rejects if it exits first. */
export function waitForStderr(child: ChildProcess, re: RegExp): Promise<RegExpMatchArray> {
  let seen = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = re.exec(seen);
      if (m) resolve(m);
    });
    child.on('close', () => reject(new Error(`exited before ${re}: ${seen}`)));
  });
}

/**
 * Two clones of one pipeline (notes.txt says `clone a` / `clone b`) running their stage `train`
 * at once: its command prints `started`, waits until both have, then writes out.txt from its
 * input and its clone's notes.txt. One job or project folder shared between the two would show
 * in either output. `pipelineFor` writes the clone's p.yaml around that command.
 */
export async function runTwoClonesAtOnce(
  clones: readonly [Rig, Rig],
  go: string,
  pipelineFor: (work: string) => string,
  env: Record<string, string> = {},
): Promise<[RunResult, RunResult]> {
  const work = `echo started; while [ ! -f ${go} ]; do sleep 0.2; done; tr a-z A-Z < "$PIPE_IN_SRC/data.txt" > out.txt; cat "$PIPE_PIPELINE_DIR/notes.txt" >> out.txt`;
  const runs: Promise<RunResult>[] = [];
  for (const [rig, notes] of [
    [clones[0], 'clone a'],
    [clones[1], 'clone b'],
  ] as const) {
    await rig.write('notes.txt', `${notes}\n`);
    await rig.write('p.yaml', pipelineFor(work));
    const child = rig.spawn(['run', 'p.yaml'], env);
    runs.push(collect(child));
    await waitForStderr(child, /train \| started/);
  }
  await writeFile(go, '');
  const [first, second] = await Promise.all(runs);
  return [first!, second!];
}
