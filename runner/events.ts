// What happens during a run, as a union of events. The run record (.pipe/runs/<id>.jsonl, one
// JSON object per line) and the terminal reporter both consume the same events.
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Verdict } from './types.js';

export type RunEvent =
  | {
      type: 'run-start';
      runId: string;
      pipeline: string;
      file: string;
      params: Record<string, unknown>;
      stages: Record<string, Record<string, unknown>>;
      selected: string[];
      argv: string[];
      git?: { commit: string; dirty: boolean };
      host: string;
      version: string;
    }
  | { type: 'stage-plan'; stage: string; action: 'run' | 'cached' | 'skip'; reason: string }
  | { type: 'stage-start'; stage: string; key: string; reason: string }
  | {
      type: 'stage-cached';
      stage: string;
      key: string;
      contentHash: string;
      durationMs: number;
      remote?: { url: string; downloaded: boolean; files?: number; bytes?: number; durationMs?: number };
      partial?: PartialState;
      verdict?: Verdict;
    }
  | { type: 'stage-pulled'; stage: string; key: string; remote: string; files: number; bytes: number; durationMs: number; partial?: PartialState }
  | {
      type: 'stage-finish';
      stage: string;
      key: string;
      contentHash: string;
      durationMs: number;
      metrics?: Record<string, number>;
      summary?: string;
      reused: boolean;
      device?: string;
      warnings?: string[];
      slurmJob?: string;
      verdict?: Verdict;
    }
  | { type: 'stage-failed'; stage: string; error: string; durationMs: number; log?: string }
  | { type: 'stage-skipped'; stage: string; reason: string }
  | { type: 'run-end'; status: 'ok' | 'failed' | 'interrupted'; durationMs: number };

/** A sparse cache entry (a partial pull): `files` of its `of` files are local, those its readers declare. */
export interface PartialState {
  readonly files: number;
  readonly of: number;
  readonly reads: readonly string[];
}

export type TimedEvent = RunEvent & { time: string };

export type Listener = (event: TimedEvent) => void;

export class EventBus {
  private readonly listeners: Listener[] = [];
  on(listener: Listener): void {
    this.listeners.push(listener);
  }
  emit(event: RunEvent): void {
    const timed = { time: new Date().toISOString(), ...event } as TimedEvent;
    for (const l of this.listeners) l(timed);
  }
}

/** Appends each event as one line; synchronous so a crash loses at most the line in flight. */
export function runRecordWriter(file: string, onError?: (message: string) => void): Listener {
  let broken = false;
  return (event) => {
    if (broken) return;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      appendFileSync(file, `${JSON.stringify(event)}\n`);
    } catch (e) {
      // A full disk must not turn into a crash: the run goes on without its record.
      broken = true;
      onError?.(`cannot write the run record ${file}: ${(e as Error).message}`);
    }
  };
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}
