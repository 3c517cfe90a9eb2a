// A StageContext for unit tests of a single stage, without the runner: temp dirs, a logger that
// records lines, progress that records ticks, and a `derived` store in a temp folder.
import { mkdtemp, mkdir, rm, rename, readdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Artifact, ArtifactKind, LineageEntry, Progress, StageContext } from '../../runner/types.js';

export interface TestContext<P> extends StageContext<P> {
  readonly logs: string[];
  /** How many times each derived `name` was built (to assert cache reuse). */
  readonly builds: Map<string, number>;
  cleanup(): Promise<void>;
}

export interface TestContextOptions {
  inputs?: Record<string, Artifact>;
  pipelineDir?: string;
  /** Share a derived store between contexts (to test reuse across runs). */
  derivedRoot?: string;
  workDir?: string;
  signal?: AbortSignal;
  lineage?: LineageEntry[];
  stageId?: string;
}

export async function makeTestContext<P>(params: P, options: TestContextOptions = {}): Promise<TestContext<P>> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-stage-'));
  const outDir = path.join(root, 'out');
  const workDir = options.workDir ?? path.join(root, 'work');
  const derivedRoot = options.derivedRoot ?? path.join(root, 'derived');
  await mkdir(outDir, { recursive: true });
  await mkdir(workDir, { recursive: true });
  await mkdir(derivedRoot, { recursive: true });
  const logs: string[] = [];
  const builds = new Map<string, number>();
  const progress = (label: string): Progress => ({
    tick: () => undefined,
    update: () => undefined,
    setTotal: () => undefined,
    done: (status?: string) => logs.push(`[progress] ${label} done${status ? ` ${status}` : ''}`),
  });
  return {
    params,
    inputs: options.inputs ?? {},
    stageId: options.stageId ?? 'stage',
    pipelineName: 'test',
    pipelineDir: options.pipelineDir ?? root,
    outDir,
    workDir,
    log: {
      info: (m) => logs.push(m),
      warn: (m) => logs.push(`warn: ${m}`),
      debug: () => undefined,
    },
    progress,
    signal: options.signal ?? new AbortController().signal,
    lineage: options.lineage ?? [],
    runId: 'test-run',
    logs,
    builds,
    async derived(name, key, build) {
      const digest = createHash('sha256')
        .update(JSON.stringify([name, key]))
        .digest('hex')
        .slice(0, 32);
      const dir = path.join(derivedRoot, `${name}-${digest}`);
      const existing = await readdir(derivedRoot);
      if (existing.includes(path.basename(dir))) return dir;
      const tmp = `${dir}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      await build(tmp);
      await rename(tmp, dir);
      builds.set(name, (builds.get(name) ?? 0) + 1);
      return dir;
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Wrap a directory produced by one stage test as an input artifact of another. */
export function artifactFromDir(dir: string, kind: ArtifactKind, stage = 'upstream', info: Record<string, unknown> = {}): Artifact {
  const hash = createHash('sha256').update(dir).digest('hex');
  return {
    kind,
    key: hash,
    contentHash: hash,
    dir,
    meta: {
      key: hash,
      contentHash: hash,
      stage,
      uses: stage,
      version: 1,
      params: {},
      inputs: {},
      createdAt: new Date(0).toISOString(),
      durationMs: 0,
      runId: 'test-run',
      host: 'test',
      info,
    },
  };
}
