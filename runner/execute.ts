// The scheduler: stages run in dependency order, independent ones concurrently (up to `jobs`),
// each exactly once per run (memoised), in the order: dependencies, key, cache hit?, run, commit.
// With --pull, an upstream artifact that is not local is a stub (its remote meta) until a stage
// that reads it runs; then the files that stage declares (Stage.reads) are pulled, all of them
// when it declares none. A partial pull is a sparse cache entry: never a hit for its own stage.
// A failure skips what depends on it; without --keep-going nothing new starts after it.
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Artifact, LineageEntry, StageResult } from './types.js';
import { StageError } from './types.js';
import type { Pipeline } from './pipeline.js';
import type { Graph } from './graph.js';
import { upstreamOf } from './graph.js';
import type { Cache } from './cache.js';
import { sparseOf } from './sparse.js';
import { declaredReads, partialReadHint, sparseHolds } from './partial-inputs.js';
import type { EventBus } from './events.js';
import type { Output } from './output.js';
import { resolveStage, type ResolvedStage } from './resolve.js';
import type { RemoteResolver } from './remote/index.js';
import { isStub } from './remote/stub.js';
import { deviceFacts, locally } from './device.js';
import { describeError, failedVerdict, type StageOutcome } from './outcome.js';
import { checkSecrets, secretsForHost, secretsMeta } from './secrets.js';

export interface ExecuteOptions {
  readonly runId: string;
  readonly jobs: number;
  /** Stages the user asked to run; the others in `needed` must come from the cache. */
  readonly selected: ReadonlySet<string>;
  /** Selected stages plus the upstream they need, in topological order. */
  readonly needed: readonly string[];
  readonly force: boolean;
  readonly keepGoing: boolean;
  readonly signal: AbortSignal;
  /** --pull: artifacts missing here are taken from the remote cache. */
  readonly remote?: RemoteResolver;
  /**
   * --only: the selected stages are computed here even when the remote has their result (CI
   * re-runs the evaluation on pulled upstream artifacts); a local cache hit still counts.
   */
  readonly computeSelected?: boolean;
}

export interface ExecuteResult {
  readonly outcomes: ReadonlyMap<string, StageOutcome>;
  readonly failed: boolean;
  readonly interrupted: boolean;
}

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

export async function execute(pipeline: Pipeline, graph: Graph, cache: Cache, bus: EventBus, output: Output, options: ExecuteOptions): Promise<ExecuteResult> {
  const outcomes = new Map<string, StageOutcome>();
  const running = new Map<string, Promise<StageOutcome>>();
  const slots = new Semaphore(Math.max(1, options.jobs));
  const needed = new Set(options.needed);
  let stopStarting = false;

  const outcomeOf = (id: string): Promise<StageOutcome> => {
    let p = running.get(id);
    if (!p) {
      p = runOne(id).then((o) => {
        outcomes.set(id, o);
        if (o.status === 'failed' && !options.keepGoing) stopStarting = true;
        return o;
      });
      running.set(id, p);
    }
    return p;
  };

  const artifactOf = (id: string): Artifact | undefined => {
    const o = outcomes.get(id);
    return o && (o.status === 'cached' || o.status === 'ran') ? o.artifact : undefined;
  };

  const runOne = async (id: string): Promise<StageOutcome> => {
    const spec = pipeline.stages.get(id);
    if (!spec) return { status: 'failed', error: `unknown stage ${id}` };
    const stage = pipeline.stageImpls.get(id);
    if (!stage) return { status: 'failed', error: `unknown stage type ${spec.uses}` };

    const deps = (graph.deps.get(id) ?? []).filter((d) => needed.has(d));
    const depOutcomes = await Promise.all(deps.map(async (d) => [d, await outcomeOf(d)] as const));
    for (const [d, o] of depOutcomes) {
      if (o.status === 'failed' || o.status === 'skipped') {
        const reason = o.status === 'failed' ? `upstream ${d} failed` : `upstream ${d} did not run`;
        bus.emit({ type: 'stage-skipped', stage: id, reason });
        return { status: 'skipped', reason };
      }
    }
    // A stage's key reads the local files it names: one gone since the run began (or
    // unreadable) fails that stage with the reason, like any other stage failure. A stage that
    // is not selected only needs its content hash: with --pull, a stub from the remote will do
    // (compute pulls its files when a stage that runs reads them). A stage that is never cached
    // (provision) re-checks the real world even when only its dependents were selected.
    const selected = options.selected.has(id);
    const mayStub = !selected && stage.cache !== 'never';
    let r: ResolvedStage;
    try {
      r = await resolveStage(pipeline, cache, id, artifactOf, { runId: options.runId, ...(mayStub && options.remote ? { stubFrom: options.remote } : {}) });
    } catch (e) {
      bus.emit({ type: 'stage-failed', stage: id, error: describeError(e), durationMs: 0 });
      return { status: 'failed', error: describeError(e) };
    }
    if (r.state === 'cached' && !(selected && options.force)) return cached(id, r.artifact);
    // A sparse entry (a partial pull) is never a hit for its own stage, but an upstream stage
    // that does not run needs only its content hash: the stages that read it check that it
    // holds their files (or complete it from the remote).
    if ((r.state === 'partial' || r.state === 'stub') && mayStub) return cached(id, r.artifact);
    if (mayStub) {
      const reason = `not selected and not in the cache for its current inputs (${r.reason}); run it too or drop --only`;
      bus.emit({ type: 'stage-failed', stage: id, error: reason, durationMs: 0 });
      return { status: 'failed', error: reason };
    }
    if (stopStarting || options.signal.aborted) {
      const reason = options.signal.aborted ? 'interrupted' : 'run stopped after a failure (use --keep-going to go on)';
      bus.emit({ type: 'stage-skipped', stage: id, reason });
      return { status: 'skipped', reason };
    }

    const release = await slots.acquire();
    try {
      return await compute(r);
    } finally {
      release();
    }
  };

  const cached = async (id: string, artifact: Artifact): Promise<StageOutcome> => {
    if (!isStub(artifact)) await cache.setLatest(pipeline.name, id, artifact.key);
    const o = options.remote?.origin(artifact.key);
    const remote = o
      ? { url: o.remote, downloaded: o.downloaded, ...(o.files === undefined ? {} : { files: o.files, bytes: o.bytes ?? 0, durationMs: o.durationMs ?? 0 }) }
      : undefined;
    const sparse = sparseOf(artifact);
    const partial = sparse ? { partial: { files: sparse.present.length, of: sparse.files, reads: sparse.reads } } : {};
    const verdict = artifact.meta.verdict ? { verdict: artifact.meta.verdict } : {};
    bus.emit({
      type: 'stage-cached',
      stage: id,
      key: artifact.key,
      contentHash: artifact.contentHash,
      durationMs: artifact.meta.durationMs,
      ...(remote ? { remote } : {}),
      ...partial,
      ...verdict,
    });
    return { status: 'cached', artifact, ...verdict };
  };

  /**
   * Download a remote artifact: a stage's own key (all of it), or an upstream one that a
   * running stage reads (`reads`: only the files it declares, a sparse entry).
   */
  const pulled = async (id: string, key: string, locked: boolean, reads?: readonly string[], reader?: string): Promise<Artifact | undefined> => {
    const r = await options.remote!.fetchFiles(key, { stage: id, locked, ...(reads ? { reads } : {}), ...(reader ? { reader } : {}) });
    if (!r) return undefined;
    if (r.pulled) {
      await cache.setLatest(pipeline.name, id, key);
      const sparse = sparseOf(r.artifact);
      bus.emit({
        type: 'stage-pulled',
        stage: id,
        key,
        remote: r.pulled.remote,
        files: r.pulled.files,
        bytes: r.pulled.downloadedBytes,
        durationMs: r.pulled.durationMs,
        ...(sparse ? { partial: { files: sparse.present.length, of: sparse.files, reads: sparse.reads } } : {}),
      });
    }
    // Stages that start later (a report's lineage) see the local artifact, not the stub.
    const before = outcomes.get(id);
    if (before?.status === 'cached' && before.artifact.key === key) outcomes.set(id, { status: 'cached', artifact: r.artifact });
    return r.artifact;
  };

  /**
   * An input known only by its remote meta, or partly local (a partial pull), made local for
   * stage `id`, which reads `reads` of it (undefined: all): from the local cache when it holds
   * them, else pulled (only those files).
   */
  const localInput = async (id: string, port: string, a: Artifact, up: string, reads: readonly string[] | undefined): Promise<Artifact> => {
    const here = await cache.find(a.key);
    const partly = here ? sparseOf(here) : undefined;
    if (here && (!partly || (await sparseHolds(cache, a.key, partly, reads)))) return here;
    if (!options.remote) {
      throw new StageError(
        `input ${port}: only ${partly?.present.length ?? 0} of ${partly?.files ?? '?'} files of ${up} (${a.key.slice(0, 12)}) are in the local cache (a partial pull for ${partly?.readers.join(', ') || 'another stage'}), and ${id} reads ${reads ? `others (${reads.join(', ')})` : 'all of it'}`,
        `run with --pull to fetch the rest from the remote cache, or run ${up} too`,
      );
    }
    const local = await pulled(up, a.key, false, reads, id);
    if (!local) throw new StageError(`input ${port}: ${up} (${a.key.slice(0, 12)}) is no longer on ${options.remote.url}`);
    return local;
  };

  const compute = async (r: ResolvedStage): Promise<StageOutcome> => {
    const { id, stage, spec, key, material, inputs } = r;
    let release: () => Promise<void>;
    try {
      release = await cache.lockKey(key, options.signal);
    } catch (e) {
      if (options.signal.aborted) {
        bus.emit({ type: 'stage-skipped', stage: id, reason: 'interrupted' });
        return { status: 'skipped', reason: 'interrupted' };
      }
      const error = `cannot lock the cache entry: ${describeError(e)}`;
      bus.emit({ type: 'stage-failed', stage: id, error, durationMs: 0 });
      return { status: 'failed', error };
    }
    let tmp: string | undefined;
    const started = Date.now();
    const logFile = path.join(cache.logsRoot, options.runId, `${id}.log`);
    try {
      // Another run may have committed this key while we waited for its lock.
      if (!options.force || stage.cache === 'never') {
        const hit = await cache.lookup(key);
        if (hit) return await cached(id, hit);
      }
      if (options.remote && !options.force && stage.cache !== 'never' && !(options.computeSelected && options.selected.has(id))) {
        const fromRemote = await pulled(id, key, true);
        if (fromRemote) return await cached(id, fromRemote);
      }
      checkSecrets(pipeline, stage, spec); // before anything starts: the variable named, where it is declared
      // Inputs known only by their remote meta, or partly local (a partial pull), are
      // downloaded now that a stage reads them: the files it declares (Stage.reads), or all.
      for (const [port, a] of Object.entries(inputs)) {
        if (isStub(a) || sparseOf(a)) inputs[port] = await localInput(id, port, a, spec.inputs[port] ?? a.meta.stage, declaredReads(stage, spec.with, port));
      }
      const damage = cache.damageOf(key);
      const reason = options.force ? 'forced' : damage ? `cache entry damaged (${damage})` : r.reason;
      const previousKey = await cache.latestKey(pipeline.name, id);
      const previous = previousKey ? await cache.lookup(previousKey) : undefined;
      bus.emit({ type: 'stage-start', stage: id, key, reason });
      await mkdir(path.dirname(logFile), { recursive: true });
      tmp = await cache.makeTemp(id);
      const workDir = cache.workDirFor(key);
      await mkdir(workDir, { recursive: true });
      const lineage: LineageEntry[] = [];
      for (const up of upstreamOf(graph, id)) {
        const o = outcomes.get(up);
        const upSpec = pipeline.stages.get(up);
        if (o && upSpec && (o.status === 'cached' || o.status === 'ran')) lineage.push({ stage: up, uses: upSpec.uses, artifact: o.artifact });
      }
      const derivedUsed: string[] = [];
      const log = output.stageLogger(id, logFile);
      if (damage) log.warn(`its cache entry ${key.slice(0, 12)} is damaged (${damage}): not used, recomputing it`);
      // An optional input left unwired that the stage finds in its lineage by kind (report's
      // dataset, for its pictures): with --pull, the files it declares for that port are
      // pulled as for a wired input. Optional: when that fails the stage runs without them.
      for (const [port, decl] of Object.entries(stage.inputs)) {
        const reads = port in inputs || !options.remote ? undefined : declaredReads(stage, spec.with, port);
        if (!reads?.length) continue;
        for (const [i, entry] of lineage.entries()) {
          if (entry.artifact.kind !== decl.kind || (!isStub(entry.artifact) && !sparseOf(entry.artifact))) continue;
          try {
            lineage[i] = { ...entry, artifact: await localInput(id, port, entry.artifact, entry.stage, reads) };
          } catch (e) {
            log.warn(`${entry.stage}: its ${reads.join(', ')} could not be pulled for ${port}: ${describeError(e)}`);
          }
        }
      }
      const placement = await placementOf(spec.runsOn ? outcomes.get(spec.runsOn) : undefined);
      const localOut = path.join(tmp, 'data');
      const result: StageResult | void = placement
        ? await (
            await import('./hosts/remote.js')
          ).runOnHost({
            placement,
            knownHosts: path.join(cache.root, 'ssh', 'known_hosts'),
            pipelineName: pipeline.name,
            pipelineDir: pipeline.dir,
            stageId: id,
            uses: stage.name,
            params: spec.with as Record<string, unknown>,
            inputs: Object.fromEntries(Object.entries(inputs).filter(([, a]) => a.kind !== 'host')),
            key,
            runId: options.runId,
            outDir: path.join(tmp, 'data'),
            log,
            progress: (label, total, resumed) => output.progress(id, label, total, resumed),
            signal: options.signal,
            secrets: secretsForHost(stage, spec, log),
          })
        : await locally(() =>
            stage.run({
              params: spec.with,
              inputs,
              stageId: id,
              pipelineName: pipeline.name,
              pipelineDir: pipeline.dir,
              outDir: localOut,
              workDir,
              log,
              progress: (label, total, resumed) => output.progress(id, label, total, resumed),
              signal: options.signal,
              derived: async (name, dkey, build) => {
                const dir = await cache.derived(name, dkey, build, options.signal);
                derivedUsed.push(path.basename(dir));
                return dir;
              },
              lineage,
              runId: options.runId,
            }),
          );
      if (options.signal.aborted) throw new StageError('interrupted');
      const kind = typeof stage.output === 'function' ? stage.output(spec.with) : stage.output;
      const durationMs = Date.now() - started;
      const artifact = await cache.commit(
        tmp,
        {
          kind,
          key,
          stage: id,
          uses: stage.name,
          version: stage.version,
          params: spec.with as Record<string, unknown>,
          inputs: material.inputs,
          ...(material.extra === undefined ? {} : { extra: material.extra }),
          createdAt: new Date(started).toISOString(),
          durationMs,
          runId: options.runId,
          host: os.hostname(),
          ...(result?.metrics ? { metrics: result.metrics } : {}),
          info: { ...(result?.meta ?? {}), ...(derivedUsed.length ? { derived: derivedUsed } : {}) },
          ...(result?.verdict ? { verdict: result.verdict } : {}),
          ...secretsMeta(stage, spec),
        },
        { replace: options.force && options.selected.has(id) },
      );
      const verdict = result?.verdict ? { verdict: result.verdict } : {};
      tmp = undefined;
      await rm(workDir, { recursive: true, force: true });
      await cache.setLatest(pipeline.name, id, key);
      bus.emit({
        type: 'stage-finish',
        stage: id,
        key,
        contentHash: artifact.contentHash,
        durationMs,
        ...(result?.metrics ? { metrics: result.metrics } : {}),
        ...(result?.summary ? { summary: result.summary } : {}),
        ...deviceFacts(result?.meta),
        reused: previous !== undefined && previous.key !== key && previous.contentHash === artifact.contentHash,
        ...verdict,
      });
      return { status: 'ran', artifact, ...verdict };
    } catch (e) {
      const aborted = options.signal.aborted;
      const message = aborted ? 'interrupted' : describeError(e) + partialReadHint(e, stage, spec.with, inputs);
      if (!aborted && !(e instanceof StageError)) output.stageLogger(id, logFile).debug((e as Error)?.stack ?? String(e));
      bus.emit({ type: 'stage-failed', stage: id, error: message, durationMs: Date.now() - started, log: path.relative(process.cwd(), logFile) });
      return { status: 'failed', error: message };
    } finally {
      if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      await release().catch(() => undefined);
    }
  };

  await Promise.all(options.needed.map((id) => outcomeOf(id)));
  await output.closeLogs();
  // A failed verdict fails the run, but only after its stage and those downstream committed.
  const failed = [...outcomes.values()].some((o) => o.status === 'failed' || o.status === 'skipped' || failedVerdict(o));
  return { outcomes, failed, interrupted: options.signal.aborted };
}

/** Where a stage with `runs_on` goes: a remote host's placement, or undefined for this machine. */
async function placementOf(host: StageOutcome | undefined): Promise<import('./hosts/remote.js').HostPlacement | undefined> {
  if (!host || (host.status !== 'cached' && host.status !== 'ran')) return undefined;
  const { readPlacement, isRemote } = await import('./hosts/remote.js');
  const placement = await readPlacement(host.artifact.dir);
  return isRemote(placement) ? placement : undefined;
}
