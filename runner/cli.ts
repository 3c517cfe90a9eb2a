// The `pipe` command line. Each sub-command's module is imported only when it runs, so
// `validate`, `status` and `graph` never load TensorFlow.js. One top-level catch maps
// ExitError to its exit code; anything else is an internal error.
import { Command, CommanderError, Option } from 'commander';
import { ExitError, EXIT } from './errors.js';
import { pipeVersion } from './version.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function pipelineOptions(cmd: Command): Command {
  return cmd
    .option('--set <path=value>', 'override any value, e.g. stages.split.with.valid=500 (repeatable)', collect)
    .option('-p, --param <key=value>', 'override a pipeline param, e.g. -p seed=7 (repeatable)', collect)
    .option('--params-file <file>', 'YAML mapping merged over the pipeline params')
    .option('--cache-dir <dir>', 'cache location (default: .pipe next to the pipeline file; env PIPE_CACHE_DIR)');
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pipe')
    .description('Reproducible deep-learning pipelines from YAML, with a content-addressed stage cache.')
    .version(pipeVersion(), '-V, --version')
    .showSuggestionAfterError()
    .exitOverride();

  pipelineOptions(
    program
      .command('run')
      .description('run a pipeline: stages in dependency order, unchanged ones from the cache')
      .argument('<file>', 'pipeline YAML')
      .option('--only <stage...>', 'run only these stages (their upstream must be cached)')
      .option('--from <stage>', 'run this stage and everything downstream of it')
      .option('--until <stage>', 'run this stage and everything it needs')
      .option('--force', 'ignore the cache for the selected stages')
      .option('--dry-run', 'print the plan and why each stage would run, run nothing')
      .option('-k, --keep-going', 'after a failure, go on with stages that do not depend on it')
      .option('-j, --jobs <n>', 'stages to run at once (default: number of cores)')
      .option('--sweep <path=values>', 'run once per value, e.g. stages.finetune.with.learning_rate=0.01,0.001 (repeatable: a grid)', collect)
      .option('--sweep-parallel <n>', 'with --sweep: run up to n combinations at once')
      .option('--pull', 'take missing artifacts from the remote cache instead of re-running their stages')
      .option('--remote <url>', 'remote cache s3://bucket/prefix or file:///shared/folder (default: PIPE_REMOTE, then cache.remote)'),
  ).action(async (file: string, flags) => {
    if (flags.sweep || flags.sweepParallel) {
      const { sweepCommand } = await import('./commands/sweep.js');
      process.exitCode = await sweepCommand(file, flags);
      return;
    }
    const { runCommand } = await import('./commands/run.js');
    process.exitCode = await runCommand(file, flags);
  });

  pipelineOptions(
    program
      .command('push')
      .description("upload the latest run's artifacts to the remote cache (S3), skipping what it has")
      .argument('<file>', 'pipeline YAML')
      .option('--stage <stage...>', 'only these stages (default: every stage with a cached artifact)')
      .option('--remote <url>', 'remote cache s3://bucket/prefix or file:///shared/folder (default: PIPE_REMOTE, then cache.remote)'),
  ).action(async (file: string, flags) => {
    const { pushCommand } = await import('./commands/push.js');
    process.exitCode = await pushCommand(file, flags);
  });

  pipelineOptions(
    program
      .command('pull')
      .description('download from the remote cache the artifacts this pipeline would use')
      .argument('<file>', 'pipeline YAML')
      .option('--stage <stage...>', 'only these stages (their upstream is read from the remote, not downloaded)')
      .option('--latest', 'take the keys of the last push as they are, then check them against the pipeline')
      .option('--remote <url>', 'remote cache s3://bucket/prefix or file:///shared/folder (default: PIPE_REMOTE, then cache.remote)'),
  ).action(async (file: string, flags) => {
    const { pullCommand } = await import('./commands/pull.js');
    process.exitCode = await pullCommand(file, flags);
  });

  program
    .command('runs')
    .description('past runs, newest first: the params that differ, headline metrics, git commit, cache use')
    .argument('[file]', 'pipeline YAML (default: every pipeline with runs in ./.pipe)')
    .option('--json', 'machine-readable output')
    .option('--limit <n>', 'at most n runs (default 20)')
    .option('--pipeline <name>', 'only runs of this pipeline (without FILE)')
    .option('--cache-dir <dir>', 'cache location')
    .action(async (file: string | undefined, flags) => {
      const { runsCommand } = await import('./commands/runs.js');
      process.exitCode = await runsCommand(file, flags);
    });

  program
    .command('diff')
    .description('compare two runs: changed params, metrics with deltas, which stages re-ran and why (default: the last two)')
    .argument(
      '[refs...]',
      '[FILE] [RUN_A] [RUN_B]: the pipeline file, then run ids or unique prefixes (one alone: compared with the newest run of its pipeline)',
    )
    .option('--file <file>', 'pipeline whose runs to compare')
    .option('--pipeline <name>', 'pipeline name, when ./.pipe holds several')
    .option('--json', 'machine-readable output')
    .option('--cache-dir <dir>', 'cache location')
    .action(async (refs: string[], flags) => {
      const { diffCommand } = await import('./commands/diff.js');
      process.exitCode = await diffCommand(refs, flags);
    });

  program
    .command('validate')
    .description('check pipelines against the schema and the graph rules; report every problem, located')
    .argument('<files...>', 'pipeline YAML files')
    .option('--set <path=value>', 'override a value before validating (repeatable)', collect)
    .option('-p, --param <key=value>', 'override a pipeline param (repeatable)', collect)
    .option('--params-file <file>', 'YAML mapping merged over the pipeline params')
    .action(async (files: string[], flags) => {
      const { validateCommand } = await import('./commands/validate.js');
      process.exitCode = await validateCommand(files, flags);
    });

  pipelineOptions(
    program
      .command('status')
      .description('one line per stage: cached, would run (and why), or waiting on upstream')
      .argument('<file>', 'pipeline YAML')
      .option('--json', 'machine-readable output'),
  ).action(async (file: string, flags) => {
    const { statusCommand } = await import('./commands/status.js');
    process.exitCode = await statusCommand(file, flags);
  });

  pipelineOptions(
    program
      .command('lr-find')
      .description('learning-rate range test of a fine-tuning stage on its cached inputs: a table, a suggested rate and a plot (SVG)')
      .argument('<file>', 'pipeline YAML')
      .requiredOption('--stage <name>', 'the finetune or finetune-vgg16 stage to test')
      .option('--steps <n>', 'training steps, the rate growing exponentially over them (default 200)')
      .option('--start <lr>', 'first learning rate (default 1e-7)')
      .option('--end <lr>', 'last learning rate (default 10); the test stops earlier where the loss diverges')
      .option('--out <dir>', 'where to write lr-find.svg and lr-find.json (default: <cache>/lr-find/<pipeline>/<stage>)'),
  ).action(async (file: string, flags) => {
    const { lrFindCommand } = await import('./commands/lr-find.js');
    process.exitCode = await lrFindCommand(file, flags);
  });

  pipelineOptions(
    program
      .command('graph')
      .description('print the stage graph')
      .argument('<file>', 'pipeline YAML')
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'mermaid', 'dot']).default('text')),
  ).action(async (file: string, flags) => {
    const { graphCommand } = await import('./commands/graph.js');
    process.exitCode = await graphCommand(file, flags);
  });

  pipelineOptions(
    program
      .command('verify')
      .description('re-hash cached artifacts against their manifests and report corruption (exit 1 if any)')
      .argument('<file>', 'pipeline YAML')
      .option('--all', "every entry in the cache, not only this pipeline's latest artifacts")
      .option('--remove', 'remove corrupt entries so the next run recomputes them')
      .option('--json', 'machine-readable output'),
  ).action(async (file: string, flags) => {
    const { verifyCommand } = await import('./commands/verify.js');
    process.exitCode = await verifyCommand(file, flags);
  });

  program
    .command('gc')
    .description('remove cache entries not referenced by the latest run of any pipeline or a kept sweep folder, and the views and logs of older runs')
    .argument('[file]', 'a pipeline whose cache to clean (default: ./.pipe)')
    .option('--dry-run', 'list what would be removed')
    .option('--keep-runs <n>', "how many of each pipeline's newest runs keep their report views and logs (records are always kept)", '10')
    .option('--cache-dir <dir>', 'cache location')
    .action(async (file: string | undefined, flags) => {
      const keepRuns = Number(flags.keepRuns);
      if (!Number.isInteger(keepRuns) || keepRuns < 0) throw new ExitError(EXIT.usage, `--keep-runs: '${flags.keepRuns}' is not a whole number ≥ 0`);
      flags.keepRuns = keepRuns;
      const { gcCommand } = await import('./commands/gc.js');
      process.exitCode = await gcCommand(file, flags);
    });

  pipelineOptions(
    program
      .command('down')
      .description("stop (or terminate) the EC2 instances this pipeline's provision stages started")
      .argument('<file>', 'pipeline YAML')
      .option('--terminate', 'terminate instead of stop (deletes their disks)')
      .option('--region <region>', "AWS region (default: the provision stages' or the AWS chain's)")
      .option('--endpoint <url>', 'EC2 endpoint URL (tests, mirrors)'),
  ).action(async (file: string, flags) => {
    const { downCommand } = await import('./commands/down.js');
    process.exitCode = await downCommand(file, flags);
  });

  pipelineOptions(
    program
      .command('hosts')
      .description('list the EC2 instances pipe made (found by tag): state, type, uptime, address')
      .argument('[file]', "a pipeline: only its instances, in its provision stages' regions")
      .option('--region <region>', 'AWS region (default: the AWS chain)')
      .option('--endpoint <url>', 'EC2 endpoint URL (tests, mirrors)')
      .option('--all', 'include terminated instances')
      .option('--json', 'machine-readable output'),
  ).action(async (file: string | undefined, flags) => {
    const { hostsCommand } = await import('./commands/hosts.js');
    process.exitCode = await hostsCommand(file, flags);
  });

  program
    .command('exec', { hidden: true })
    .description('run one stage job for a runner on another machine (internal)')
    .argument('<job>', 'job.json')
    .action(async (job: string) => {
      const { execCommand } = await import('./commands/exec.js');
      // The CLI entry hands the built-in stages in, as it does to every pipeline it opens.
      const { registry } = await import('../stages/registry.js');
      process.exitCode = await execCommand(job, registry);
    });

  return program;
}

/**
 * A reader that stops early (`pipe runs | head -1`) closes the pipe: stop quietly, as Unix
 * tools do, instead of an unhandled EPIPE and its stack trace. Any other output error
 * (a full disk behind `> file`) is one line and exit 1.
 */
function quietOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(EXIT.ok);
      if (stream === process.stdout) process.stderr.write(`pipe: cannot write the output: ${e.message}\n`);
      process.exit(EXIT.failed);
    });
  }
}

/**
 * The AWS SDK warns on every AWS command, in 8 lines, that its releases after January 2027 will
 * want Node 22; pipe supports Node >= 20 and pins its SDK version, so that says nothing to act
 * on. Its own switch turns off that one message (not Node's other warnings); a user who sets
 * the variable keeps their choice.
 */
function quietAwsSdkNodeVersionNotice(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

export async function main(argv: string[]): Promise<void> {
  quietOnClosedOutput();
  quietAwsSdkNodeVersionNotice();
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    if (e instanceof ExitError) {
      if (e.message) process.stderr.write(`${e.message}\n`);
      process.exitCode = e.code;
      return;
    }
    const err = e as Error;
    process.stderr.write(
      `pipe: internal error: ${err?.message ?? String(e)}\nThis is a bug in pipe; please report it${process.env.PIPE_DEBUG ? '' : ' (set PIPE_DEBUG=1 for the stack trace)'}.\n`,
    );
    if (process.env.PIPE_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
    process.exitCode = EXIT.failed;
  }
}
