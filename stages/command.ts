// `uses: command`: run any external program as a stage, like DVC's `cmd`. It runs in the pipeline
// file's folder, as make, DVC and Snakemake run theirs (so `python train.py` finds train.py), and
// what it writes under $PIPE_OUT is the artifact. `workdir: out` runs it in $PIPE_OUT instead (what
// pipe did before), where relative writes become the artifact.
import { createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import path from 'node:path';
import type { ArtifactKind, Stage } from '../runner/types.js';
import { ARTIFACT_KINDS, StageError } from '../runner/types.js';
import { hashFiles } from '../runner/stage-api.js';

export interface CommandParams {
  run: string | string[];
  deps: string[];
  env: Record<string, string>;
  kind: ArtifactKind;
  workdir: 'pipeline' | 'out';
}

export const commandStage: Stage<CommandParams> = {
  name: 'command',
  version: 1,
  description:
    'Runs an external program (through the shell when `run` is a string, directly when it is a list). ' +
    "Its working directory is the pipeline file's folder (`workdir: out`: the output dir); the artifact is what it writes under $PIPE_OUT. stdout and stderr are saved to log.txt there.",
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['run'],
    properties: {
      run: {
        description: 'Shell command line, or an argv list run without a shell.',
        oneOf: [
          { type: 'string', minLength: 1 },
          { type: 'array', minItems: 1, items: { type: 'string' } },
        ],
      },
      deps: {
        description: 'Globs of project files (relative to the pipeline file) whose content goes into the cache key.',
        type: 'array',
        items: { type: 'string', minLength: 1 },
        default: [],
      },
      env: {
        description:
          "Extra environment variables. Their values are params, stored in meta.json and the run record: name credentials under the stage's `secrets:` instead.",
        type: 'object',
        additionalProperties: { type: 'string' },
        default: {},
      },
      workdir: {
        description:
          "Working directory: `pipeline`, the pipeline file's folder (project files by their relative paths, as in make, DVC or Snakemake; write the output under $PIPE_OUT), or `out`, the output dir itself (relative writes are the output).",
        enum: ['pipeline', 'out'],
        default: 'pipeline',
      },
      kind: {
        description: 'Artifact kind of the output, so it can feed typed ports.',
        enum: ARTIFACT_KINDS.filter((k) => k !== 'any'),
        default: 'files',
      },
    },
  },
  inputs: {},
  extraInputs: { kind: 'any', required: false, description: 'any upstream artifact; its path is in PIPE_IN_<PORT>' },
  output: (p) => p.kind,
  async keyExtra(params, pipelineDir) {
    if (params.deps.length === 0) return undefined;
    return hashFiles(pipelineDir, params.deps);
  },
  async run(ctx) {
    const { execa } = await import('execa');
    const { run, env } = ctx.params;
    const logPath = path.join(ctx.outDir, 'log.txt');
    const logFile = createWriteStream(logPath);
    // ENOSPC on log.txt (open or write) fails the stage (below); it must not crash the runner.
    let logError: Error | undefined;
    logFile.on('error', (e) => {
      logError ??= e;
    });
    const inputsEnv: Record<string, string> = {};
    for (const [port, artifact] of Object.entries(ctx.inputs)) {
      inputsEnv[`PIPE_IN_${port.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = artifact.dir;
    }
    const childEnv = {
      ...env,
      ...inputsEnv,
      PIPE_OUT: ctx.outDir,
      PIPE_PARAMS: JSON.stringify(ctx.params),
      PIPE_PIPELINE_DIR: ctx.pipelineDir,
    };
    const options = {
      cwd: ctx.params.workdir === 'out' ? ctx.outDir : ctx.pipelineDir,
      env: childEnv,
      reject: false,
      all: true,
      buffer: false,
      stdin: 'ignore' as const,
      // Its own process group, so Ctrl-C stops everything the command started (a shell's
      // children too), not only the shell.
      detached: true,
    };
    const child = typeof run === 'string' ? execa(run, { ...options, shell: true }) : execa(run[0]!, run.slice(1), options);
    const killGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const onAbort = (): void => {
      killGroup('SIGTERM');
      // Give the program a moment to clean up before it is killed.
      setTimeout(() => killGroup('SIGKILL'), 3000).unref();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const recent: string[] = [];
    let pending = '';
    child.all?.on('data', (chunk: Buffer) => {
      logFile.write(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        ctx.log.info(line);
        recent.push(line);
        if (recent.length > 20) recent.shift();
      }
    });
    const result = await child;
    ctx.signal.removeEventListener('abort', onAbort);
    if (pending) {
      ctx.log.info(pending);
      recent.push(pending);
    }
    logFile.end();
    // (not once(logFile, 'close'): after an error the stream may have closed long ago)
    await finished(logFile).catch(() => undefined);
    if (ctx.signal.aborted) throw new StageError('interrupted');
    if (result.failed) {
      const why = result.exitCode !== undefined ? `exit code ${result.exitCode}` : (result.signal ?? result.shortMessage);
      // The most common cause of a failed write deserves to be said plainly.
      // A program may also fail without saying why: then ask the filesystem it was writing to.
      const full = recent.some((l) => /no space left on device|ENOSPC|disk quota exceeded/i.test(l)) || (await nearlyFull(ctx.outDir));
      throw new StageError(`command failed (${why})${full ? ': no space left on device' : ''}`);
    }
    // The likeliest cause of an empty output: a program written for the output dir as its working directory.
    if (ctx.params.workdir !== 'out' && (await readdir(ctx.outDir)).every((n) => n === 'log.txt')) {
      ctx.log.warn(`wrote nothing into its output dir: it runs in ${ctx.pipelineDir}; write the output under "$PIPE_OUT" (or set workdir: out)`);
    }
    if (logError) {
      const code = (logError as NodeJS.ErrnoException).code;
      throw new StageError(`cannot write log.txt: ${code === 'ENOSPC' ? 'no space left on device' : logError.message}`);
    }
    // A dataset feeds finetune, evaluate and predict: check the contract here, where the
    // program that broke it is named, rather than in whichever stage reads it first.
    if (ctx.params.kind === 'dataset') {
      const { datasetProblems } = await import('./dataset-contract.js');
      const problems = await datasetProblems(ctx.outDir);
      if (problems.length)
        throw new StageError(
          `the command's output is not a dataset (kind: dataset): ${problems.join('; ')}`,
          'write split.json as the README\'s "The dataset format" describes',
        );
    }
    return {};
  },
};

/** Whether the filesystem holding `dir` has (almost) no room left: under 64 KiB or 0.01% free, or no inode. */
async function nearlyFull(dir: string): Promise<boolean> {
  try {
    const { statfs } = await import('node:fs/promises');
    const s = await statfs(dir);
    const free = s.bavail * s.bsize;
    return free < 64 * 1024 || free < s.blocks * s.bsize * 1e-4 || (s.files > 0 && s.ffree === 0);
  } catch {
    return false;
  }
}
