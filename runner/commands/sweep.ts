// `pipe run FILE --sweep path=v1,v2 [--sweep ...] [--sweep-parallel N]`: one ordinary run per
// combination of the grid, each with its own run record; upstream stages that do not depend on
// the swept params are shared through the cache (computed once, under the cache's key locks even
// when combinations run at once). Then a comparison table; exit 1 if any combination failed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pc from 'picocolors';
import { openPipeline } from '../open.js';
import { ExitError, EXIT } from '../errors.js';
import { wantColor } from '../output.js';
import { loadHistory, sameValue, shortParam, type RunSummary } from '../history.js';
import { describeCombination, expandGrid, parseSweeps, SWEEP_CHILD_ENV, SweepError, type Combination, type SweepAxis } from '../sweep.js';
import { unknownParam } from '../overrides.js';
import { combinationLabel, linkCombinations, restoreLatest, snapshotLatest } from '../sweep-links.js';
import { runsTable } from './runs.js';
import type { RunFlags } from './run.js';
import { provisioningSpecs } from '../hosts/provisioners.js';

export interface SweepFlags extends RunFlags {
  sweep?: string[];
  sweepParallel?: string;
}

export interface SweepOutcome {
  readonly combination: Combination;
  readonly exitCode: number;
  /** The run record it wrote, when it got as far as starting. */
  readonly runId?: string;
  /** Why it did not run, when it failed before writing a record. */
  readonly error?: string;
}

const PIPE_BIN = fileURLToPath(new URL('../../../bin/pipe.js', import.meta.url));

export async function sweepCommand(file: string, flags: SweepFlags): Promise<number> {
  if (!flags.sweep?.length && flags.sweepParallel !== undefined) throw new ExitError(EXIT.usage, '--sweep-parallel: only with --sweep');
  let axes: SweepAxis[];
  try {
    axes = parseSweeps(flags.sweep ?? []);
  } catch (e) {
    if (e instanceof SweepError) throw new ExitError(EXIT.usage, e.message);
    throw e;
  }
  const combos = expandGrid(axes);
  let parallel = flags.sweepParallel === undefined ? 1 : Number(flags.sweepParallel);
  if (!Number.isInteger(parallel) || parallel < 1) throw new ExitError(EXIT.usage, `--sweep-parallel: expected a positive integer, got ${flags.sweepParallel}`);
  const { sweep: _sweep, sweepParallel: _parallel, ...runFlags } = flags;
  const flagsFor = (c: Combination): RunFlags => ({
    ...runFlags,
    set: [...(runFlags.set ?? []), ...c.set],
    argv: childArgs(file, runFlags, c, 1),
    sweepCombination: true,
  });

  // A swept param the pipeline does not declare is named against its own --sweep flag.
  const declared = (await openPipeline(file, runFlags, { checkPaths: true })).pipeline.params;
  for (const [i, axis] of axes.entries()) {
    const segments = axis.path.split('.');
    const unknown = segments[0] === 'params' ? unknownParam(declared, segments.slice(1)) : undefined;
    if (unknown) throw new ExitError(EXIT.usage, `--sweep ${flags.sweep![i]}: ${unknown}`);
  }
  // Every combination must load before any runs: a typo in the last value should not surface
  // an hour into the sweep.
  let opened: Awaited<ReturnType<typeof openPipeline>> | undefined;
  for (const c of combos) {
    try {
      const o = await openPipeline(file, flagsFor(c));
      opened ??= o;
    } catch (e) {
      if (e instanceof ExitError) throw new ExitError(e.code, `sweep combination ${c.index} (${describeCombination(c)}):\n${e.message}`);
      throw e;
    }
  }
  const { cache, pipeline } = opened!;
  // On a Slurm cluster the scheduler queues the jobs: all combinations are submitted at once
  // unless --sweep-parallel caps them (each waiting child run is a light local process).
  const onSlurm = provisioningSpecs(pipeline).some((s) => s.with['provider'] === 'slurm');
  if (onSlurm && flags.sweepParallel === undefined) parallel = combos.length;
  const root = cache.root;
  const runsDir = cache.runsDir;
  const err = process.stderr;
  const colors = pc.createColors(wantColor(err));
  err.write(
    `${colors.bold('sweep')}: ${combos.length} combination${combos.length === 1 ? '' : 's'}${parallel > 1 ? `, up to ${parallel} at once${onSlurm ? ' as Slurm jobs' : ''}` : ''}\n`,
  );

  const { runCommand } = await import('./run.js');
  if (flags.dryRun) {
    let worst = EXIT.ok as number;
    for (const c of combos) {
      err.write(`${colors.bold(`── [${c.index}/${combos.length}]`)} ${describeCombination(c, shortParam)}\n`);
      worst = Math.max(worst, await runCommand(file, flagsFor(c)));
    }
    return worst;
  }

  let stopping = false;
  const children = new Set<ReturnType<typeof spawn>>();
  const onSigint = (): void => {
    stopping = true;
  };
  const onSigterm = (): void => {
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);

  const existing = new Set(await listRuns(runsDir));
  const latestBefore = await snapshotLatest(cache, pipeline.name);
  const outcomes: SweepOutcome[] = [];
  try {
    if (parallel === 1) {
      for (const c of combos) {
        if (stopping) break;
        err.write(`${colors.bold(`── [${c.index}/${combos.length}]`)} ${describeCombination(c, shortParam)}\n`);
        const before = new Set(await listRuns(runsDir));
        let exitCode: number;
        let error: string | undefined;
        try {
          exitCode = await runCommand(file, flagsFor(c));
        } catch (e) {
          if (!(e instanceof ExitError)) throw e;
          exitCode = e.code;
          error = e.message;
          if (e.message) err.write(`${e.message}\n`);
        }
        const fresh = (await listRuns(runsDir)).filter((id) => !before.has(id));
        const runId = fresh.length === 1 ? fresh[0] : await matchByParams(root, fresh, c);
        outcomes.push({ combination: c, exitCode, ...(runId ? { runId } : {}), ...(error ? { error } : {}) });
        if (exitCode === EXIT.interrupted) stopping = true;
      }
    } else {
      outcomes.push(...(await runChildren(file, runFlags, combos, parallel, () => stopping, children, colors)));
    }
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }

  // Match child runs by the argv their run-start recorded (exactly what we passed them).
  const history = await loadHistory(root);
  const byId = new Map(history.map((r) => [r.id, r]));
  const resolved = outcomes.map((o) => {
    if (o.runId) return o;
    const argv = childArgs(file, runFlags, o.combination, parallel);
    const hit = history.find(
      (r) => !existing.has(r.id) && r.argv.length === argv.length && r.argv.every((x, i) => x === argv[i]) && !outcomes.some((p) => p.runId === r.id),
    );
    return hit ? { ...o, runId: hit.id } : o;
  });

  // latest/ keeps describing the pipeline as its file says; the combinations' artifacts are
  // linked under sweeps/ instead (see sweep-links.ts).
  await restoreLatest(cache, pipeline.name, latestBefore);
  const linked = await linkCombinations(cache, resolved, byId);

  const out = process.stdout;
  const outColors = pc.createColors(wantColor(out));
  out.write(`\n${sweepTable(resolved, byId, outColors).join('\n')}\n`);
  if (linked) {
    err.write(
      `sweep: each combination's artifacts are in ${path.relative(process.cwd(), linked) || '.'}/<n>-<values>/<stage>; latest/ is as it was before the sweep\n`,
    );
    for (const r of await reportLinks(linked, resolved, byId)) err.write(`report [${r.index}]: ${path.relative(process.cwd(), r.file) || r.file}\n`);
  }
  const failed = resolved.filter((o) => o.exitCode !== EXIT.ok && o.exitCode !== EXIT.interrupted).length;
  const cut = resolved.filter((o) => o.exitCode === EXIT.interrupted).length;
  const interrupted = stopping || cut > 0;
  const notRun = combos.length - resolved.length;
  const parts = [`${resolved.length - failed - cut} ok`];
  if (failed) parts.push(`${failed} failed`);
  if (cut) parts.push(`${cut} interrupted`);
  if (notRun) parts.push(`${notRun} not run`);
  err.write(`sweep: ${combos.length} combination${combos.length === 1 ? '' : 's'}: ${parts.join(', ')}\n`);
  if (interrupted) return EXIT.interrupted;
  return failed > 0 ? EXIT.failed : EXIT.ok;
}

/** Each combination's report (index.html of every report-kind stage it made or used), as linked under sweeps/. */
async function reportLinks(root: string, outcomes: readonly SweepOutcome[], runs: ReadonlyMap<string, RunSummary>): Promise<{ index: number; file: string }[]> {
  const out: { index: number; file: string }[] = [];
  for (const o of outcomes) {
    const run = o.runId ? runs.get(o.runId) : undefined;
    for (const [stage, rec] of Object.entries(run?.stages ?? {})) {
      const file = path.join(root, `${o.combination.index}-${combinationLabel(o.combination)}`, stage, 'index.html');
      if (rec.key && (rec.status === 'ran' || rec.status === 'cached') && existsSync(file)) out.push({ index: o.combination.index, file });
    }
  }
  return out;
}

/** The comparison: one row per combination with its values, headline metrics and status. */
export function sweepTable(outcomes: readonly SweepOutcome[], runs: ReadonlyMap<string, RunSummary>, colors: ReturnType<typeof pc.createColors>): string[] {
  const paths = outcomes[0]?.combination.values.map((v) => v.path) ?? [];
  const rows: RunSummary[] = outcomes.map((o) => runs.get(o.runId ?? '') ?? placeholder(o));
  const outcomeOf = new Map(rows.map((r, i) => [r, outcomes[i]!]));
  return runsTable(rows, colors, {
    lead: [
      { header: '#', cell: (r) => String(outcomeOf.get(r)?.combination.index ?? '') },
      ...paths.map((p) => ({
        header: shortParam(p),
        cell: (r: RunSummary) => outcomeOf.get(r)?.combination.values.find((v) => v.path === p)?.text ?? '',
      })),
    ],
    params: [],
    compact: true,
  });
}

/** A row for a combination that wrote no run record (it failed to load or start). */
function placeholder(o: SweepOutcome): RunSummary {
  return {
    id: '-',
    date: '',
    pipeline: '',
    file: '',
    params: {},
    metrics: {},
    headline: {},
    durationMs: 0,
    counts: { ran: 0, cached: 0, failed: 0, skipped: 0 },
    status: o.exitCode === EXIT.interrupted ? 'interrupted' : 'failed',
    reasons: {},
    stages: {},
    stageOrder: [],
    selected: [],
    argv: [],
  };
}

async function listRuns(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.jsonl')).map((n) => n.slice(0, -'.jsonl'.length));
}

/** Several records appeared during one in-process run (another run shared the cache): the one with our values. */
async function matchByParams(root: string, ids: readonly string[], c: Combination): Promise<string | undefined> {
  if (ids.length === 0) return undefined;
  const runs = (await loadHistory(root)).filter((r) => ids.includes(r.id));
  const hit = runs.find((r) => c.values.every((v) => sameValue(r.params[v.path], v.value) || String(r.params[v.path]) === v.text));
  return hit?.id;
}

/** The argv of a child `pipe run` for one combination (also how its run record is found again). */
export function childArgs(file: string, flags: RunFlags, c: Combination, parallel: number): string[] {
  const args = ['run', file];
  for (const s of [...(flags.set ?? []), ...c.set]) args.push('--set', s);
  for (const p of flags.param ?? []) args.push('--param', p);
  if (flags.paramsFile) args.push('--params-file', flags.paramsFile);
  if (flags.cacheDir) args.push('--cache-dir', flags.cacheDir);
  if (flags.from) args.push('--from', flags.from);
  if (flags.until) args.push('--until', flags.until);
  if (flags.force) args.push('--force');
  if (flags.keepGoing) args.push('--keep-going');
  // N runs at once share the cores: unless told, each gets its share.
  args.push('--jobs', flags.jobs ?? String(Math.max(1, Math.floor(os.availableParallelism() / parallel))));
  if (flags.only?.length) args.push('--only', ...flags.only);
  return args;
}

/**
 * Up to `parallel` child `pipe run`s at once. Each child's output is held back and printed as one
 * block when it ends, so the runs' lines do not interleave.
 */
async function runChildren(
  file: string,
  flags: RunFlags,
  combos: readonly Combination[],
  parallel: number,
  stopping: () => boolean,
  children: Set<ReturnType<typeof spawn>>,
  colors: ReturnType<typeof pc.createColors>,
): Promise<SweepOutcome[]> {
  const err = process.stderr;
  const results: SweepOutcome[] = [];
  let next = 0;
  const env = { ...process.env, [SWEEP_CHILD_ENV]: '1', ...(wantColor(err) && !('NO_COLOR' in process.env) ? { FORCE_COLOR: '1' } : {}) };
  const worker = async (): Promise<void> => {
    while (next < combos.length && !stopping()) {
      const c = combos[next++]!;
      const label = `[${c.index}/${combos.length}] ${describeCombination(c, shortParam)}`;
      err.write(`${colors.dim(`started ${label}`)}\n`);
      const child = spawn(process.execPath, [PIPE_BIN, ...childArgs(file, flags, c, parallel)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      const chunks: Buffer[] = [];
      child.stdout?.on('data', (d: Buffer) => chunks.push(d));
      child.stderr?.on('data', (d: Buffer) => chunks.push(d));
      const exitCode = await new Promise<number>((resolve) => {
        child.on('error', () => resolve(EXIT.failed));
        child.on('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' || signal === 'SIGTERM' ? EXIT.interrupted : EXIT.failed)));
      });
      children.delete(child);
      const status =
        exitCode === 0 ? colors.green('ok') : exitCode === EXIT.interrupted ? colors.yellow('interrupted') : colors.red(`failed (exit ${exitCode})`);
      err.write(`${colors.bold(`── ${label}`)}: ${status}\n${Buffer.concat(chunks).toString('utf8')}`);
      results.push({ combination: c, exitCode });
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, combos.length) }, () => worker()));
  return results.sort((a, b) => a.combination.index - b.combination.index);
}
