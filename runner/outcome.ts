// What became of one stage in a run, and how a failure reads in one line: shared by the
// scheduler (execute.ts), the run command's summary and `pipe exec` on a host.
import type { Artifact, Verdict } from './types.js';
import { StageError } from './types.js';

export type StageOutcome =
  // `verdict`: the artifact's verdict (StageResult.verdict), from this run or its meta.json.
  | { readonly status: 'cached' | 'ran'; readonly artifact: Artifact; readonly verdict?: Verdict }
  | { readonly status: 'failed'; readonly error: string }
  | { readonly status: 'skipped'; readonly reason: string };

/** The failed verdict of a stage that ran or came from the cache (a gate below its threshold). */
export function failedVerdict(o: StageOutcome): Verdict | undefined {
  return (o.status === 'ran' || o.status === 'cached') && o.verdict && !o.verdict.passed ? o.verdict : undefined;
}

/** One line for a stage failure: the message of an expected error, the class + message else. */
export function describeError(e: unknown): string {
  if (e instanceof StageError) return e.hint ? `${e.message} (${e.hint})` : e.message;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') return `no space left on device (${e.message})`;
    return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`;
  }
  return String(e);
}
