// `pipe run FILE`: plan the selection, then execute it with caching, a run record and live output.
import { execFileSync } from 'node:child_process';
import { rmSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cacheOrigin, initCache, openPipeline, type PipelineOptions } from '../open.js';
import { selectStages, upstreamOf, type Graph } from '../graph.js';
import { EventBus, newRunId, runRecordWriter } from '../events.js';
import { Output, formatDuration } from '../output.js';
import { execute } from '../execute.js';
import { failedVerdict, type StageOutcome } from '../outcome.js';
import { planStages } from '../plan.js';
import { ExitError, EXIT } from '../errors.js';
import { useStatCache, saveStatCache } from '../hash-files.js';
import { pipeVersion } from '../version.js';
import { printPlan } from './status.js';
import { writeRunViews } from '../report-view.js';
import { SWEEP_CHILD_ENV } from '../sweep.js';
import { literalSecretWarnings, secretNames } from '../secrets.js';
import { refuseUnsetSecrets, withSecretNotes } from '../secrets-plan.js';
import { diagnosticLine } from '../diagnostics.js';
import { sweepTemp } from '../cache-gc.js';

export interface RunFlags extends PipelineOptions {
  only?: string[];
  from?: string;
  until?: string;
  force?: boolean;
  dryRun?: boolean;
  keepGoing?: boolean;
  jobs?: string;
  /** Take missing artifacts from the remote cache (--remote, PIPE_REMOTE or cache.remote). */
  pull?: boolean;
  remote?: string;
  /** The command line recorded in the run record (a sweep passes each combination's own). */
  argv?: string[];
  /**
   * One combination of a sweep: the sweep puts latest/ back afterwards, so the report's path
   * printed is its cache entry's, not latest/'s. (Child processes of a parallel sweep are told by
   * SWEEP_CHILD_ENV.)
   */
  sweepCombination?: boolean;
}

export function neededStages(graph: Graph, selected: readonly string[]): string[] {
  const needed = new Set<string>();
  for (const id of selected) {
    needed.add(id);
    for (const up of upstreamOf(graph, id)) needed.add(up);
  }
  return graph.order.filter((id) => needed.has(id));
}

export function checkStageNames(graph: Graph, names: readonly string[], flag: string): void {
  const unknown = names.filter((n) => !graph.order.includes(n));
  if (unknown.length > 0) {
    throw new ExitError(EXIT.usage, `${flag}: no stage named ${unknown.join(', ')} (stages: ${graph.order.join(', ')})`);
  }
}

function gitInfo(dir: string): { commit: string; dirty: boolean } | undefined {
  try {
    const opts = { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] as ('ignore' | 'pipe')[], timeout: 3000 };
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], opts).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).toString().trim().length > 0;
    return { commit, dirty };
  } catch {
    return undefined;
  }
}

export async function runCommand(file: string, flags: RunFlags): Promise<number> {
  const { pipeline, graph, cache } = await openPipeline(file, flags, { checkPaths: true });
  for (const [flag, names] of [
    ['--only', flags.only ?? []],
    ['--from', flags.from ? [flags.from] : []],
    ['--until', flags.until ? [flags.until] : []],
  ] as const) {
    checkStageNames(graph, names, flag);
  }
  const selected = selectStages(graph, {
    ...(flags.only?.length ? { only: flags.only } : {}),
    ...(flags.from ? { from: flags.from } : {}),
    ...(flags.until ? { until: flags.until } : {}),
  });
  const needed = neededStages(graph, selected);
  const jobs = flags.jobs ? Number(flags.jobs) : os.availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1) throw new ExitError(EXIT.usage, `-j: expected a positive integer, got ${flags.jobs}`);

  const output = new Output();
  for (const w of literalSecretWarnings(pipeline)) output.line(output.colors.yellow(diagnosticLine(w)));
  if (flags.dryRun) {
    const planned = await planStages(pipeline, graph, cache, needed, { force: new Set(flags.force ? selected : []) });
    // A partial pull is never a cache hit for its own stage: a selected one runs (or is completed by --pull).
    const plan = planned.map((p) =>
      p.state === 'partial' && selected.includes(p.stage)
        ? {
            ...p,
            state: 'run' as const,
            reason: `only partly in the cache (${p.reason.split(';')[0]}): ${flags.pull ? 'the rest is pulled' : 'runs again (--pull would fetch the rest)'}`,
          }
        : p,
    );
    printPlan(
      withSecretNotes(plan, pipeline).map((p) => p.entry),
      output,
      new Set(selected),
    );
    return EXIT.ok;
  }
  if (!flags.pull) await refuseUnsetSecrets(pipeline, graph, cache, needed, new Set(flags.force ? selected : []));

  await initCache(cache, cacheOrigin(pipeline, flags.cacheDir));
  await sweepTemp(cache);
  useStatCache(path.join(cache.root, 'stat-cache.json'));
  const runId = newRunId();
  const bus = new EventBus();
  bus.on(runRecordWriter(path.join(cache.runsDir, `${runId}.jsonl`), (m) => output.line(`warning: ${m}`)));
  bus.on(output.onEvent);
  // Artifacts this run took from the remote cache (stage -> still partial?), for the summary line.
  const pulledStages = new Map<string, boolean>();
  bus.on((e) => {
    if (e.type === 'stage-pulled') pulledStages.set(e.stage, e.partial !== undefined);
  });

  // --pull: the remote module loads the AWS SDK, so only then.
  const remoteModule = flags.pull ? await import('../remote/index.js') : undefined;
  const remoteCache = remoteModule?.remoteFor(pipeline, process.env, flags.remote);
  if (remoteModule && !remoteCache) throw remoteModule.noRemoteError('run --pull');

  // Ctrl-C: running stages get an abort signal and their temp dirs are removed; a second
  // Ctrl-C exits at once after removing this process's temp dirs.
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      output.line('interrupting: waiting for running stages to stop (Ctrl-C again to exit now)');
      controller.abort();
      return;
    }
    removeOwnTemp(cache.tmpRoot);
    process.exit(EXIT.interrupted);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const remote = remoteModule && remoteCache ? new remoteModule.RemoteResolver(remoteCache, cache, output, controller.signal) : undefined;

  const started = Date.now();
  const git = gitInfo(pipeline.dir);
  bus.emit({
    type: 'run-start',
    runId,
    pipeline: pipeline.name,
    file: path.relative(cache.root, pipeline.file),
    params: { ...pipeline.params },
    stages: Object.fromEntries(
      [...pipeline.stages].map(([id, s]) => {
        const secrets = secretNames(pipeline.stageImpls.get(id), s); // names only: values are never recorded
        return [id, { uses: s.uses, with: s.with, ...(s.paramRefs ? { from_params: s.paramRefs } : {}), ...(secrets.length ? { secrets } : {}) }];
      }),
    ),
    selected,
    argv: flags.argv ?? process.argv.slice(2),
    ...(git ? { git } : {}),
    host: os.hostname(),
    version: pipeVersion(),
  });
  let result;
  try {
    result = await execute(pipeline, graph, cache, bus, output, {
      runId,
      jobs,
      selected: new Set(selected),
      needed,
      force: Boolean(flags.force),
      keepGoing: Boolean(flags.keepGoing),
      signal: controller.signal,
      ...(remote ? { remote } : {}),
      computeSelected: Boolean(flags.only?.length),
    });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await saveStatCache().catch(() => undefined);
  }
  const status = result.interrupted ? 'interrupted' : result.failed ? 'failed' : 'ok';
  bus.emit({ type: 'run-end', status, durationMs: Date.now() - started });
  output.line(summaryLine(result.outcomes, Date.now() - started, output, pulledStages, remote?.url));
  for (const w of output.warnings) output.line(output.colors.yellow(`! ${w}`));
  // A report is shown with this run's facts (its run view); another report-kind artifact as it is.
  const views = await writeRunViews(
    { cache, graph, pipeline: pipeline.name, runId, startedAt: started, outcomes: result.outcomes, stageImpls: pipeline.stageImpls },
    (m) => output.line(`warning: ${m}`),
  );
  const ownReport = flags.sweepCombination || process.env[SWEEP_CHILD_ENV] === '1';
  for (const [id, o] of result.outcomes) {
    if ((o.status === 'ran' || o.status === 'cached') && o.artifact.kind === 'report') {
      const link = views.get(id) ?? path.join(ownReport ? o.artifact.dir : path.join(cache.latestRoot, pipeline.name, id), 'index.html');
      output.line(`report: ${path.relative(process.cwd(), link) || link}`);
    }
  }
  if (result.interrupted) return EXIT.interrupted;
  return result.failed ? EXIT.failed : EXIT.ok;
}

function summaryLine(
  outcomes: ReadonlyMap<string, StageOutcome>,
  ms: number,
  output: Output,
  pulled: ReadonlyMap<string, boolean> = new Map(),
  remote?: string,
): string {
  const count = (s: StageOutcome['status']): number => [...outcomes.values()].filter((o) => o.status === s).length;
  const partly = [...pulled].filter(([, p]) => p).map(([s]) => s);
  const fromRemote = pulled.size > 0 ? ` (${pulled.size} pulled from ${remote ?? 'the remote'}${partly.length ? `; partly: ${partly.join(', ')}` : ''})` : '';
  const parts = [`${count('ran')} ran`, `${count('cached')} cached${fromRemote}`];
  if (count('failed')) parts.push(output.colors.red(`${count('failed')} failed`));
  if (count('skipped')) parts.push(output.colors.yellow(`${count('skipped')} skipped`));
  // A failed verdict (a gate) fails the run though every stage ran: say which and why.
  const verdicts = [...outcomes].flatMap(([id, o]) => {
    const v = failedVerdict(o);
    return v ? [output.colors.red(`${id}: ${v.message}`)] : [];
  });
  return `${outcomes.size} stage${outcomes.size === 1 ? '' : 's'}: ${parts.join(', ')} in ${formatDuration(ms)}${verdicts.map((v) => `; ${v}`).join('')}`;
}

function removeOwnTemp(tmpRoot: string): void {
  try {
    for (const name of readdirSync(tmpRoot)) {
      if (name.startsWith(`${process.pid}-`)) rmSync(path.join(tmpRoot, name), { recursive: true, force: true });
    }
  } catch {
    // nothing to remove
  }
}
