// `pipe pull FILE [--stage S...]`: download from the remote cache the artifacts this checkout
// of the pipeline would use. Keys are computed top-down exactly as `pipe run` does (stage,
// version, params, upstream content hashes), so what is pulled is what a run would accept;
// an upstream stage that only feeds a key is read from the remote's meta.json, not downloaded
// (`--stage evaluate` does not fetch the raw data). With --latest, the keys of the remote's
// index (what the last `pipe push` had) are pulled as they are, then checked against the
// pipeline. Every download is verified against the manifest hashes and committed atomically.
// A wanted stage that is here only partly (a partial pull by `run --pull`) is completed.
import path from 'node:path';
import { cacheOrigin, initCache, openPipeline, type PipelineOptions } from '../open.js';
import { Output } from '../output.js';
import { ExitError, EXIT } from '../errors.js';
import { checkStageNames, neededStages } from './run.js';
import type { KeyMaterial } from '../fingerprint.js';
import { diffKeys, resolveStage } from '../resolve.js';
import { useStatCache, saveStatCache } from '../hash-files.js';
import type { Artifact, Stage } from '../types.js';
import type { StoredMeta } from '../cache.js';
import type { StageSpec } from '../pipeline.js';
import { sweepTemp } from '../cache-gc.js';

export interface PullFlags extends PipelineOptions {
  stage?: string[];
  remote?: string;
  latest?: boolean;
}

type Status = 'local' | 'pulled' | 'stale' | 'missing' | 'blocked' | 'never';

export async function pullCommand(file: string, flags: PullFlags): Promise<number> {
  const { pipeline, graph, cache } = await openPipeline(file, flags);
  checkStageNames(graph, flags.stage ?? [], '--stage');
  const { remoteFor, noRemoteError, remoteFailure, RemoteResolver, tryPull, formatBytes, pulledInfo } = await import('../remote/index.js');
  const remote = remoteFor(pipeline, process.env, flags.remote);
  if (!remote) throw noRemoteError('pull');
  const output = new Output();
  const c = output.colors;
  const wanted = new Set(flags.stage?.length ? flags.stage : graph.order);
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  await initCache(cache, cacheOrigin(pipeline, flags.cacheDir));
  await sweepTemp(cache);
  useStatCache(path.join(cache.root, 'stat-cache.json'));
  const resolver = new RemoteResolver(remote, cache, output, controller.signal);
  const results: { stage: string; status: Status; detail: string }[] = [];
  const report = (stage: string, status: Status, detail: string): void => {
    results.push({ stage, status, detail });
    const mark = { local: c.green('✓'), pulled: c.green('⇣'), stale: c.yellow('!'), missing: c.red('✗'), blocked: c.yellow('-'), never: c.dim('-') }[status];
    output.line(`${mark} ${stage} ${status === 'missing' ? c.red(detail) : status === 'stale' ? c.yellow(detail) : c.dim(detail)}`);
  };
  let bytes = 0;
  const pulledNow = new Set<string>();
  const pull = async (id: string, key: string): Promise<Artifact | undefined> => {
    const r = await tryPull(remote, cache, key, output, { stage: id, signal: controller.signal });
    if (r?.fresh) {
      pulledNow.add(key);
      bytes += r.info.downloadedBytes;
    }
    return r?.artifact;
  };
  const describe = (a: Artifact): string => {
    const info = pulledNow.has(a.key) ? pulledInfo(a) : undefined;
    return info
      ? `${a.key.slice(0, 12)} (${info.files} files, ${formatBytes(info.bytes)} in ${(info.durationMs / 1000).toFixed(1)}s)`
      : `${a.key.slice(0, 12)} already in the local cache`;
  };

  try {
    const index = await remote.readIndex(pipeline.name, controller.signal);
    const artifacts = new Map<string, Artifact>();
    // --latest: take the index's keys as they are; the top-down pass below then checks them.
    const fromIndex = new Map<string, Artifact>();
    if (flags.latest) {
      if (!index) throw new ExitError(EXIT.failed, `pull --latest: ${remote.url} has no index for pipeline ${pipeline.name} (nothing was pushed for it)`);
      for (const id of graph.order) {
        const entry = index.stages[id];
        if (!wanted.has(id) || !entry) continue;
        const a = (await cache.lookup(entry.key)) ?? (await pull(id, entry.key));
        if (a) {
          fromIndex.set(id, a);
          await cache.setLatest(pipeline.name, id, a.key);
        }
      }
    }
    for (const id of neededStages(graph, [...wanted])) {
      const spec = pipeline.stages.get(id)!;
      const stage = pipeline.stageImpls.get(id);
      if (!stage) throw new ExitError(EXIT.usage, `${id}: unknown stage type ${spec.uses}`);
      if (stage.cache === 'never') {
        if (wanted.has(id)) report(id, 'never', `runs every time (${spec.uses}): never stored, nothing to pull`);
        continue;
      }
      const unavailable: string[] = [];
      for (const up of Object.values(spec.inputs)) {
        if (artifacts.has(up)) continue;
        if (!isHostStage(pipeline.stages.get(up), pipeline.stageImpls.get(up))) unavailable.push(up);
      }
      if (unavailable.length > 0) {
        if (wanted.has(id)) report(id, 'blocked', `needs ${unavailable.join(', ')}, which is neither local nor on the remote`);
        continue;
      }
      // A stage that is not wanted only feeds its dependents' keys: a partial pull here (a
      // sparse entry) or the remote's meta (a stub; with --latest, the last push's) will do.
      const fallback = flags.latest ? index?.stages[id]?.key : undefined;
      const r = await resolveStage(
        pipeline,
        cache,
        id,
        (up) => artifacts.get(up),
        wanted.has(id) ? {} : { stubFrom: resolver, ...(fallback ? { stubFallback: [fallback] } : {}) },
      );
      const { key, material } = r;
      if (r.state === 'cached') {
        artifacts.set(id, r.artifact);
        if (wanted.has(id)) {
          await cache.setLatest(pipeline.name, id, key);
          report(id, pulledNow.has(key) ? 'pulled' : 'local', describe(r.artifact));
        }
        continue;
      }
      if (!wanted.has(id)) {
        if (r.state === 'partial' || r.state === 'stub') artifacts.set(id, r.artifact);
        continue;
      }
      const pulled = await pull(id, key);
      if (pulled) {
        artifacts.set(id, pulled);
        await cache.setLatest(pipeline.name, id, key);
        report(id, 'pulled', describe(pulled));
        continue;
      }
      const entry = index?.stages[id];
      let diff: string | undefined;
      if (entry && entry.key !== key) {
        const meta = await remote.meta(entry.key, controller.signal);
        diff = meta ? explainMismatch(meta, material, stage) : 'its entry is gone';
      }
      const taken = fromIndex.get(id);
      if (taken) {
        // The last push's artifact stands in, so downstream keys follow the pushed chain.
        artifacts.set(id, taken);
        report(id, 'stale', `took the last push's ${describe(taken)}; this pipeline would make ${key.slice(0, 12)} (${diff ?? 'differs'})`);
        continue;
      }
      let why = `${key.slice(0, 12)} is not on ${remote.url}`;
      if (entry && diff) why += `; the last push has ${entry.key.slice(0, 12)} (made ${entry.createdAt} on ${entry.host}), which differs: ${diff}`;
      else if (!entry) why += '; the last push had no artifact for this stage';
      report(id, 'missing', why);
    }
  } catch (e) {
    if (controller.signal.aborted) {
      output.line('interrupted: verified files are kept; `pipe pull` again resumes');
      return EXIT.interrupted;
    }
    const failure = remoteFailure(e);
    if (failure) throw failure;
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await saveStatCache().catch(() => undefined);
  }
  const count = (s: Status): number => results.filter((r) => r.status === s).length;
  const bad = count('missing') + count('blocked');
  output.line(
    `${count('pulled')} pulled (${formatBytes(bytes)} downloaded), ${count('local')} already local` +
      `${count('stale') ? `, ${c.yellow(`${count('stale')} from the last push but not what this pipeline makes`)}` : ''}` +
      `${bad ? `, ${c.red(`${bad} not available`)}` : ''} from ${remote.url}`,
  );
  return bad > 0 ? EXIT.failed : EXIT.ok;
}

function isHostStage(spec: StageSpec | undefined, stage: Stage<any> | undefined): boolean {
  if (!spec || !stage) return false;
  return (typeof stage.output === 'function' ? stage.output(spec.with) : stage.output) === 'host';
}

/** Why the remote's artifact for a stage is not the one this pipeline would use. */
export function explainMismatch(meta: StoredMeta & { extra?: string }, material: KeyMaterial, stage: Stage<any>): string {
  if (meta.uses !== material.stage) return `stage type ${meta.uses} -> ${material.stage}`;
  if (meta.version !== material.version) return `stage version v${meta.version} -> v${material.version}`;
  const excluded = new Set(stage.keyExclude ?? []);
  const params = diffKeys(meta.params ?? {}, material.params).filter((k) => !excluded.has(k));
  if (params.length > 0) return `params ${params.join(', ')}`;
  const inputs = diffKeys(meta.inputs ?? {}, material.inputs);
  if (inputs.length > 0) return `input ${inputs.join(', ')} (upstream content differs)`;
  if ((meta.extra ?? undefined) !== (material.extra ?? undefined)) return 'dependency files differ';
  return 'unknown (different pipe version?)';
}
