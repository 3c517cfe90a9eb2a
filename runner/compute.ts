// Compute-and-commit, for one stage the scheduler (execute.ts) decided to run: under the key's
// lock, a hit another run committed meanwhile or the remote's copy is taken; else the inputs
// known only by their remote meta (stubs) or partly local (partial pulls) are pulled as far as
// the stage reads them, the stage runs here or on its host, and its output is committed to
// the cache with its meta. Also how a cached outcome is announced (stage-cached).
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Artifact, LineageEntry, StageResult } from './types.js';
import { StageError } from './types.js';
import { upstreamOf } from './graph.js';
import { sparseOf } from './sparse.js';
import { declaredReads, partialReadHint, sparseHolds } from './partial-inputs.js';
import type { ResolvedStage } from './resolve.js';
import { isStub } from './remote/stub.js';
import { deviceFacts, locally } from './device.js';
import { describeError, type StageOutcome } from './outcome.js';
import { checkSecrets, secretsForHost, secretsMeta } from './secrets.js';
import type { RunContext } from './run-context.js';
import type { HostFile } from './hosts/host-file.js';

/** A stage whose artifact is there (local, partial or a stub): its outcome, announced. */
export async function cached(run: RunContext, id: string, artifact: Artifact): Promise<StageOutcome> {
  const { pipeline, cache, bus, options } = run;
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
}

/**
 * Download a remote artifact: a stage's own key (all of it), or an upstream one that a
 * running stage reads (`reads`: only the files it declares, a sparse entry).
 */
async function pulled(run: RunContext, id: string, key: string, locked: boolean, reads?: readonly string[], reader?: string): Promise<Artifact | undefined> {
  const { pipeline, cache, bus, options, outcomes } = run;
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
}

/**
 * An input known only by its remote meta, or partly local (a partial pull), made local for
 * stage `id`, which reads `reads` of it (undefined: all): from the local cache when it holds
 * them, else pulled (only those files).
 */
async function localInput(run: RunContext, id: string, port: string, a: Artifact, up: string, reads: readonly string[] | undefined): Promise<Artifact> {
  const { cache, options } = run;
  const here = await cache.find(a.key);
  const partly = here ? sparseOf(here) : undefined;
  if (here && (!partly || (await sparseHolds(cache, a.key, partly, reads)))) return here;
  if (!options.remote) {
    throw new StageError(
      `input ${port}: only ${partly?.present.length ?? 0} of ${partly?.files ?? '?'} files of ${up} (${a.key.slice(0, 12)}) are in the local cache (a partial pull for ${partly?.readers.join(', ') || 'another stage'}), and ${id} reads ${reads ? `others (${reads.join(', ')})` : 'all of it'}`,
      `run with --pull to fetch the rest from the remote cache, or run ${up} too`,
    );
  }
  const local = await pulled(run, up, a.key, false, reads, id);
  if (!local) throw new StageError(`input ${port}: ${up} (${a.key.slice(0, 12)}) is no longer on ${options.remote.url}`);
  return local;
}

export async function compute(run: RunContext, r: ResolvedStage): Promise<StageOutcome> {
  const { pipeline, graph, cache, bus, output, options, outcomes } = run;
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
      if (hit) return await cached(run, id, hit);
    }
    if (options.remote && !options.force && stage.cache !== 'never' && !(options.computeSelected && options.selected.has(id))) {
      const fromRemote = await pulled(run, id, key, true);
      if (fromRemote) return await cached(run, id, fromRemote);
    }
    checkSecrets(pipeline, stage, spec); // before anything starts: the variable named, where it is declared
    // Inputs known only by their remote meta, or partly local (a partial pull), are
    // downloaded now that a stage reads them: the files it declares (Stage.reads), or all.
    for (const [port, a] of Object.entries(inputs)) {
      if (isStub(a) || sparseOf(a)) inputs[port] = await localInput(run, id, port, a, spec.inputs[port] ?? a.meta.stage, declaredReads(stage, spec.with, port));
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
          lineage[i] = { ...entry, artifact: await localInput(run, id, port, entry.artifact, entry.stage, reads) };
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
}

/** Where a stage with `runs_on` goes: a remote host's placement, or undefined for this machine. */
async function placementOf(host: StageOutcome | undefined): Promise<HostFile | undefined> {
  if (!host || (host.status !== 'cached' && host.status !== 'ran')) return undefined;
  const { readPlacement, isRemote } = await import('./hosts/host-file.js');
  const placement = await readPlacement(host.artifact.dir);
  return isRemote(placement) ? placement : undefined;
}
