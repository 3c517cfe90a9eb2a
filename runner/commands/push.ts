// `pipe push FILE [--stage S...]`: upload the artifacts of the pipeline's latest run (what
// .pipe/latest/<pipeline>/<stage> points at) to the remote cache, skipping what it already has,
// and record stage -> key in the remote's index for the pipeline. Derived sub-artifacts
// (cached features, downloaded weights) are not pushed: the stages rebuild them from artifacts.
// Nor are partial pulls (sparse entries): the remote they came from has them whole.
import { openPipeline, type PipelineOptions } from '../open.js';
import { Output, formatDuration } from '../output.js';
import { ExitError, EXIT } from '../errors.js';
import { checkStageNames } from './run.js';
import { sparseOf, type SparseInfo } from '../sparse.js';

export interface PushFlags extends PipelineOptions {
  stage?: string[];
  remote?: string;
}

export async function pushCommand(file: string, flags: PushFlags): Promise<number> {
  const { pipeline, graph, cache } = await openPipeline(file, flags);
  checkStageNames(graph, flags.stage ?? [], '--stage');
  const { remoteFor, noRemoteError, remoteFailure, formatBytes, lazyProgress, RemoteError } = await import('../remote/index.js');
  const remote = remoteFor(pipeline, process.env, flags.remote);
  if (!remote) throw noRemoteError('push');
  const output = new Output();
  const c = output.colors;
  const stages = flags.stage?.length ? flags.stage : graph.order;

  const keys = new Map<string, string>(); // key -> stage
  const index: Record<string, { key: string; contentHash: string; kind: string; createdAt: string; host: string; pushedAt: string }> = {};
  const notes: string[] = [];
  const partial: { id: string; key: string; sparse: SparseInfo }[] = [];
  for (const id of stages) {
    const spec = pipeline.stages.get(id);
    const stage = pipeline.stageImpls.get(id);
    if (stage?.cache === 'never') {
      notes.push(`${id}: runs every time (${spec?.uses}); not pushed`);
      continue;
    }
    const key = await cache.latestKey(pipeline.name, id);
    const artifact = key ? await cache.find(key) : undefined;
    const sparse = artifact ? sparseOf(artifact) : undefined;
    if (key && sparse) {
      partial.push({ id, key, sparse });
      continue;
    }
    if (!key || !artifact) {
      notes.push(`${id}: not in the local cache (run the pipeline first)`);
      continue;
    }
    keys.set(key, id);
    index[id] = { key, contentHash: artifact.contentHash, kind: artifact.kind, createdAt: artifact.meta.createdAt, host: artifact.meta.host, pushedAt: '' };
  }
  for (const n of notes) output.line(c.dim(`- ${n}`));
  // A partial pull is never pushed as if it were whole: it came from a remote, which has it.
  let partialMissing = 0;
  try {
    for (const p of partial) {
      const there = await remote.meta(p.key);
      if (!there) partialMissing++;
      const where = `only ${p.sparse.present.length} of ${p.sparse.files} files are here (a partial pull from ${p.sparse.remote || 'a remote'} for ${p.sparse.readers.join(', ') || 'another stage'})`;
      output.line(
        there
          ? c.dim(`- ${p.id}: ${where}; ${remote.url} has it whole: skipped`)
          : c.yellow(`! ${p.id}: ${where}, and ${remote.url} lacks it: not pushed (\`pipe pull\` it from its remote first, or re-run it)`),
      );
    }
  } catch (e) {
    throw remoteFailure(e) ?? e;
  }
  if (keys.size === 0 && partial.length > 0) {
    if (partialMissing > 0)
      throw new ExitError(
        EXIT.failed,
        `push: nothing pushed for ${pipeline.name}: ${partialMissing} partial artifact${partialMissing === 1 ? '' : 's'} the remote lacks`,
      );
    output.line(`nothing to push: ${remote.url} already has every artifact of ${pipeline.name} that is here`);
    return EXIT.ok;
  }
  if (keys.size === 0)
    throw new ExitError(
      EXIT.failed,
      `push: nothing to push for ${pipeline.name}: no stage has a cached artifact${flags.stage?.length ? ' among --stage' : ''}`,
    );

  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const started = Date.now();
  output.onEvent({
    type: 'stage-start',
    stage: 'push',
    key: '',
    reason: `${keys.size} artifact${keys.size === 1 ? '' : 's'} to ${remote.url}`,
    time: new Date().toISOString(),
  });
  try {
    const stats = await remote.push(cache, [...keys.keys()], { progress: lazyProgress(() => output.progress('push', 'uploading')), signal: controller.signal });
    const pushedAt = new Date().toISOString();
    for (const e of Object.values(index)) e.pushedAt = pushedAt;
    await remote.updateIndex(pipeline.name, index, controller.signal);
    const summary =
      `uploaded ${stats.uploadedFiles} file${stats.uploadedFiles === 1 ? '' : 's'} / ${formatBytes(stats.uploadedBytes)}, ` +
      `skipped ${stats.presentFiles} present (${formatBytes(stats.presentBytes)}); ` +
      `${stats.entries} new artifact${stats.entries === 1 ? '' : 's'}, ${stats.entriesPresent} already on the remote`;
    output.onEvent({
      type: 'stage-finish',
      stage: 'push',
      key: '',
      contentHash: '',
      durationMs: Date.now() - started,
      summary,
      reused: false,
      time: new Date().toISOString(),
    });
    const present = new Set(stats.present);
    for (const [key, id] of keys)
      output.line(`  ${present.has(key) ? c.dim('=') : c.green('↑')} ${id} ${c.dim(key.slice(0, 12))}${present.has(key) ? c.dim(' already there') : ''}`);
    for (const key of stats.differing) {
      output.line(
        c.yellow(`  ! ${keys.get(key)}: the remote already holds ${key.slice(0, 12)} with other content (a non-deterministic stage?); kept the remote's`),
      );
    }
    output.line(`pushed ${pipeline.name} to ${remote.url} in ${formatDuration(Date.now() - started)}`);
    return EXIT.ok;
  } catch (e) {
    const failure = remoteFailure(e);
    const message = controller.signal.aborted ? 'interrupted' : (failure?.message ?? (e as Error).message);
    output.onEvent({ type: 'stage-failed', stage: 'push', error: message, durationMs: Date.now() - started, time: new Date().toISOString() });
    if (controller.signal.aborted) return EXIT.interrupted;
    if (failure) {
      const setup = e instanceof RemoteError && ['credentials', 'no-bucket', 'access-denied', 'config'].includes(e.kind);
      throw new ExitError(
        EXIT.failed,
        setup ? '' : 'artifacts whose upload did not finish are not visible on the remote; run `pipe push` again to resume (uploaded files are kept)',
      );
    }
    throw e;
  } finally {
    output.onEvent({ type: 'run-end', status: 'ok', durationMs: 0, time: new Date().toISOString() });
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
