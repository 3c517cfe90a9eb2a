// The job a host runs (`pipe exec job.json`) and the JSON-lines protocol it answers with on
// stdout: log lines, progress, then one result or error line. Both sides use this file.
import type { Artifact, StageResult } from '../types.js';

export interface Job {
  readonly uses: string;
  readonly stageId: string;
  readonly pipelineName: string;
  /** The synced project directory on the host (relative params resolve against it). */
  readonly pipelineDir: string;
  readonly params: Record<string, unknown>;
  /** Input artifacts with `dir` rewritten to the host's copy. */
  readonly inputs: Record<string, Artifact>;
  readonly outDir: string;
  readonly workDir: string;
  /** The host's own cache root, for derived sub-artifacts (features stay on the GPU host). */
  readonly cacheRoot: string;
  readonly runId: string;
  /**
   * Names of the secrets the stage is given (runner/secrets.ts): their values come as the first
   * line on `pipe exec`'s stdin, never in this file.
   */
  readonly secrets?: readonly string[];
}

export type JobLine =
  | { readonly t: 'log'; readonly level: 'info' | 'warn' | 'debug'; readonly msg: string }
  | {
      readonly t: 'progress';
      readonly id: number;
      readonly label: string;
      readonly done: number;
      readonly resumed?: number;
      readonly total?: number;
      readonly status?: string;
      readonly end?: boolean;
    }
  | { readonly t: 'result'; readonly result: StageResult }
  | { readonly t: 'error'; readonly message: string; readonly expected: boolean };

export function encodeLine(line: JobLine): string {
  return `${JSON.stringify(line)}\n`;
}

export function decodeLine(text: string): JobLine | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(text) as JobLine;
    return typeof v === 'object' && v !== null && 't' in v ? v : undefined;
  } catch {
    return undefined;
  }
}
