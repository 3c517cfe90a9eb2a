// Shared by the commands: load + validate a pipeline (printing located diagnostics and exiting
// 2 when invalid), build its graph, and open its cache.
import { access, constants, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Pipeline } from './pipeline.js';
import type { Graph } from './graph.js';
import { ExitError, EXIT } from './errors.js';
import { Cache } from './cache.js';

export interface PipelineOptions {
  set?: string[];
  param?: string[];
  paramsFile?: string;
  cacheDir?: string;
}

export interface Opened {
  pipeline: Pipeline;
  graph: Graph;
  cache: Cache;
}

/**
 * `checkPaths`: the local files and folders stages read must exist (run, status: they hash
 * them; not down or hosts, which must work after a data folder moved).
 */
export async function openPipeline(file: string, options: PipelineOptions, how: { checkPaths?: boolean } = {}): Promise<Opened> {
  const { loadPipeline } = await import('./load.js');
  const { formatDiagnostic } = await import('./diagnostics.js');
  const { buildGraph } = await import('./graph.js');
  const { registry } = await import('../stages/registry.js');
  const loaded = await loadPipeline(file, {
    registry,
    ...(options.set ? { set: options.set } : {}),
    ...(options.param ? { params: options.param } : {}),
    ...(options.paramsFile ? { paramsFile: options.paramsFile } : {}),
    ...(how.checkPaths ? { checkPaths: true } : {}),
  });
  const color = !('NO_COLOR' in process.env) && Boolean(process.stderr.isTTY);
  if (!loaded.ok) {
    const sources = new Map<string, string | undefined>();
    for (const d of loaded.errors) if (!sources.has(d.file)) sources.set(d.file, await readFile(d.file, 'utf8').catch(() => undefined));
    const text = loaded.errors.map((d) => formatDiagnostic(d, sources.get(d.file), color)).join('\n');
    throw new ExitError(EXIT.usage, `${text}\n${loaded.errors.length} problem${loaded.errors.length === 1 ? '' : 's'} in ${file}`);
  }
  const pipeline = loaded.value;
  const graph = buildGraph(pipeline.stages);
  if (!graph.ok) {
    const text = graph.errors.map((d) => formatDiagnostic(d, pipeline.source, color)).join('\n');
    throw new ExitError(EXIT.usage, text);
  }
  const root = cacheRoot(pipeline, options.cacheDir);
  await assertDirectoryOrAbsent(root, cacheOrigin(pipeline, options.cacheDir));
  return { pipeline, graph: graph.value, cache: new Cache(root) };
}

/** Which setting chose the cache dir, for messages. */
export function cacheOrigin(pipeline: Pipeline | undefined, flag?: string): string {
  if (flag) return '--cache-dir';
  if (process.env.PIPE_CACHE_DIR) return 'PIPE_CACHE_DIR';
  if (pipeline?.cache?.dir) {
    const pos = pipeline.positionOf('cache.dir');
    return `${pipeline.displayPath}${pos ? `:${pos.line}:${pos.col}` : ''}: cache.dir`;
  }
  return 'the default cache dir';
}

/** The cache dir must be a directory or not exist yet (nor any of its parents be a file). */
export async function assertDirectoryOrAbsent(dir: string, origin: string): Promise<void> {
  for (let p = dir; ; p = path.dirname(p)) {
    const st = await stat(p).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) throw new ExitError(EXIT.usage, `${origin}: ${dir} is not a directory (${p} is a file)`);
      return;
    }
    if (path.dirname(p) === p) return;
  }
}

/** `.pipe/` next to the pipeline file, unless --cache-dir, PIPE_CACHE_DIR or `cache.dir` say otherwise. */
export function cacheRoot(pipeline: Pipeline, flag?: string): string {
  if (flag) return path.resolve(flag);
  if (process.env.PIPE_CACHE_DIR) return path.resolve(process.env.PIPE_CACHE_DIR);
  if (pipeline.cache?.dir) return path.resolve(pipeline.dir, pipeline.cache.dir);
  return path.join(pipeline.dir, '.pipe');
}

const WHY: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file',
  ENOENT: 'cannot be created there',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
};

/**
 * Creates the cache (its root level by level: Node's recursive mkdir spins forever under /proc)
 * and checks that pipe may write in it. An unwritable cache dir is the user's to fix: one line
 * naming the setting that chose it, exit 2, before anything runs.
 */
export async function initCache(cache: Cache, origin: string): Promise<void> {
  const fail = (e: unknown, at: string): never => {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const why = WHY[code] ?? (e as Error).message;
    throw new ExitError(
      EXIT.usage,
      `${origin}: cannot write the cache ${cache.root}: ${why}${at === cache.root ? '' : ` (${at})`}\n  hint: choose a writable folder with --cache-dir or PIPE_CACHE_DIR`,
    );
  };
  const missing: string[] = [];
  for (let p = cache.root; !(await stat(p).catch(() => undefined)); p = path.dirname(p)) {
    missing.unshift(p);
    if (path.dirname(p) === p) break;
  }
  for (const d of missing) await mkdir(d).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : fail(e, d)));
  await cache.init().catch((e: NodeJS.ErrnoException) => fail(e, e.path ?? cache.root));
  for (const d of [
    cache.root,
    cache.cacheDir,
    cache.tmpRoot,
    cache.workRoot,
    cache.derivedRoot,
    cache.latestRoot,
    cache.locksRoot,
    cache.runsDir,
    cache.logsRoot,
  ]) {
    await access(d, constants.W_OK).catch((e) => fail(e, d));
  }
}
