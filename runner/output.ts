// Terminal output of a run: on a TTY, a live line per running stage (spinner, progress bar,
// elapsed) under the scrolling log; elsewhere (pipes, CI=true) plain timestamped lines, with
// progress printed at most every few seconds. NO_COLOR is respected.
import { createWriteStream, type WriteStream } from 'node:fs';
import pc from 'picocolors';
import type { Logger, Progress, Verdict } from './types.js';
import type { TimedEvent } from './events.js';

export interface OutputOptions {
  readonly stream?: NodeJS.WriteStream;
  readonly live?: boolean; // default: stream is a TTY and CI is not set
  readonly color?: boolean;
  readonly quiet?: boolean;
}

interface ActiveStage {
  label: string;
  started: number;
  progress?: { label: string; done: number; total?: number; status?: string; started: number };
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const PLAIN_PROGRESS_EVERY_MS = 5000;

export function wantLive(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !process.env.CI && process.env.TERM !== 'dumb';
}

export function wantColor(stream: NodeJS.WriteStream): boolean {
  return !('NO_COLOR' in process.env) && (Boolean(stream.isTTY) || 'FORCE_COLOR' in process.env);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class Output {
  private readonly stream: NodeJS.WriteStream;
  private readonly live: boolean;
  private readonly c: ReturnType<typeof pc.createColors>;
  private readonly active = new Map<string, ActiveStage>();
  private drawnLines = 0;
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private readonly tails = new Map<string, string[]>();
  private readonly logFiles = new Map<string, WriteStream>();

  constructor(options: OutputOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.live = options.live ?? wantLive(this.stream);
    this.c = pc.createColors(options.color ?? wantColor(this.stream));
  }

  get colors(): ReturnType<typeof pc.createColors> {
    return this.c;
  }

  /** Warnings of finished stages (a GPU host's CPU did the work), repeated under the run summary. */
  readonly warnings: string[] = [];

  /** Print a line above the live block (or plainly). */
  line(text: string): void {
    this.clear();
    this.stream.write(`${text}\n`);
    this.draw();
  }

  private stamp(): string {
    return this.live ? '' : this.c.dim(`${new Date().toISOString().slice(11, 19)} `);
  }

  onEvent = (e: TimedEvent): void => {
    const c = this.c;
    switch (e.type) {
      case 'run-start':
        this.line(`${this.stamp()}${c.bold('pipe')} run ${c.cyan(e.pipeline)} ${c.dim(`(${e.runId})`)}`);
        break;
      case 'stage-plan':
        break;
      case 'stage-start':
        this.active.set(e.stage, { label: e.stage, started: Date.now() });
        if (!this.live) this.line(`${this.stamp()}${c.cyan('▶')} ${e.stage} ${c.dim(`running (${e.reason})`)}`);
        this.ensureTimer();
        break;
      case 'stage-cached': {
        const from = e.remote ? (e.remote.downloaded ? ` (pulled from ${e.remote.url})` : ` on ${e.remote.url}`) : '';
        const partial = e.partial ? ` (partly: ${e.partial.files} of ${e.partial.of} files, from a partial pull)` : '';
        this.line(`${this.stamp()}${c.green('✓')} ${e.stage} ${c.dim(`cached${from}${partial}`)}`);
        this.verdictLine(e.verdict);
        break;
      }
      case 'stage-pulled':
        this.line(
          `${this.stamp()}${c.green('⇣')} ${e.stage} ${c.dim(`pulled ${e.files} file${e.files === 1 ? '' : 's'} (${formatCount(e.bytes)}B) in ${formatDuration(e.durationMs)}${e.partial ? `: ${e.partial.files} of ${e.partial.of} files local (${e.partial.reads.join(', ')})` : ''}`)}`,
        );
        break;
      case 'stage-finish': {
        this.active.delete(e.stage);
        const metrics = e.metrics ? ` ${formatMetrics(e.metrics)}` : '';
        const reused = e.reused ? c.dim(' (same output as before)') : '';
        const device = e.device ? c.dim(` on ${e.device}`) : '';
        this.line(`${this.stamp()}${c.green('✓')} ${e.stage} ${c.dim(formatDuration(e.durationMs))}${device}${metrics}${reused}`);
        if (e.summary) this.line(`${this.stamp()}  ${e.summary}`);
        for (const w of e.warnings ?? []) {
          this.warnings.push(`${e.stage} ${w}`);
          this.line(`${this.stamp()}${c.yellow(`! ${e.stage} ${w}`)}`);
        }
        this.verdictLine(e.verdict);
        break;
      }
      case 'stage-failed': {
        this.active.delete(e.stage);
        this.line(`${this.stamp()}${c.red('✗')} ${e.stage} ${c.red(e.error)} ${c.dim(formatDuration(e.durationMs))}`);
        const tail = this.tails.get(e.stage) ?? [];
        if (tail.length > 0) {
          this.line(c.dim(`  last ${tail.length} log lines of ${e.stage}:`));
          for (const l of tail) this.line(c.dim(`  | ${l}`));
        }
        if (e.log) this.line(c.dim(`  full log: ${e.log}`));
        break;
      }
      case 'stage-skipped':
        this.line(`${this.stamp()}${c.yellow('-')} ${e.stage} ${c.dim(`skipped: ${e.reason}`)}`);
        break;
      case 'run-end':
        this.stopTimer();
        break;
      default: {
        const never: never = e;
        void never;
      }
    }
  };

  /** A stage's verdict under its line: a failed one in red (it fails the run), a passed one plainly. */
  private verdictLine(v: Verdict | undefined): void {
    if (v) this.line(`${this.stamp()}  ${v.passed ? this.c.green(v.message) : this.c.red(`✗ ${v.message}`)}`);
  }

  /** A logger for one stage: its lines go to its log file, the terminal, and a 20-line tail. */
  stageLogger(stage: string, logFile?: string): Logger {
    let file: WriteStream | undefined;
    if (logFile) {
      const stream = createWriteStream(logFile, { flags: 'a' });
      // A log that cannot be written (disk full) is dropped, not a crash.
      stream.on('error', () => {
        if (file === stream) file = undefined;
      });
      file = stream;
      this.logFiles.set(stage, stream);
    }
    const tail: string[] = [];
    this.tails.set(stage, tail);
    const write = (level: string, message: string): void => {
      for (const text of message.split('\n')) {
        file?.write(`${new Date().toISOString()} ${level} ${text}\n`);
        // Debug lines (stack traces of unexpected errors) stay in the log file only.
        if (level === 'debug' && !process.env.PIPE_DEBUG) continue;
        tail.push(text);
        if (tail.length > 20) tail.shift();
        const prefix = this.c.dim(`${stage} | `);
        const body = level === 'warn' ? this.c.yellow(text) : text;
        this.line(`${this.stamp()}${prefix}${body}`);
      }
    };
    return {
      info: (m) => write('info', m),
      warn: (m) => write('warn', m),
      debug: (m) => write('debug', m),
    };
  }

  async closeLogs(): Promise<void> {
    await Promise.all([...this.logFiles.values()].map((f) => new Promise<void>((r) => (f.destroyed ? r() : f.end(() => r())))));
    this.logFiles.clear();
  }

  progress(stage: string, label: string, total?: number, resumed = 0): Progress {
    const state = { label, done: resumed, resumed, total, status: undefined as string | undefined, started: Date.now() };
    const entry = this.active.get(stage);
    if (entry) entry.progress = state;
    let lastPlain = 0;
    let lastText = '';
    const plain = (force: boolean): void => {
      if (this.live) return;
      const now = Date.now();
      if (!force && now - lastPlain < PLAIN_PROGRESS_EVERY_MS) return;
      const text = `${label} ${describeProgress(state)}`;
      // The closing line repeats nothing: a last tick that already printed 100% is not printed twice.
      if (text === lastText) return;
      lastPlain = now;
      lastText = text;
      this.line(`${this.stamp()}${this.c.dim(`${stage} | `)}${text}`);
    };
    return {
      tick: (n = 1, status) => {
        state.done += n;
        if (status !== undefined) state.status = status;
        plain(false);
      },
      update: (done, status) => {
        state.done = done;
        if (status !== undefined) state.status = status;
        plain(false);
      },
      setTotal: (t) => {
        state.total = t;
      },
      done: (status) => {
        if (status !== undefined) state.status = status;
        if (state.total !== undefined) state.done = Math.max(state.done, state.total);
        plain(true);
        const current = this.active.get(stage);
        if (current?.progress === state) delete current.progress;
      },
    };
  }

  private ensureTimer(): void {
    if (!this.live || this.timer) return;
    this.timer = setInterval(() => {
      this.frame++;
      this.clear();
      this.draw();
    }, 100);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private clear(): void {
    if (!this.live || this.drawnLines === 0) return;
    this.stream.write(`\x1b[${this.drawnLines}A\x1b[0J`);
    this.drawnLines = 0;
  }

  private draw(): void {
    if (!this.live || this.active.size === 0) return;
    const width = Math.max(40, (this.stream.columns ?? 100) - 1);
    const spin = SPINNER[this.frame % SPINNER.length];
    const lines: string[] = [];
    for (const [name, s] of this.active) {
      const elapsed = formatDuration(Date.now() - s.started);
      let text = `${this.c.cyan(spin ?? '*')} ${name} ${this.c.dim(elapsed)}`;
      if (s.progress) text += `  ${s.progress.label} ${bar(s.progress)} ${describeProgress(s.progress)}`;
      lines.push(truncate(text, width));
    }
    this.stream.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }
}

function bar(p: { done: number; total?: number }): string {
  if (!p.total) return '';
  const width = 20;
  const filled = Math.min(width, Math.round((p.done / p.total) * width));
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

export function describeProgress(p: { done: number; resumed?: number; total?: number; status?: string; started: number }, now = Date.now()): string {
  const parts: string[] = [];
  const elapsed = (now - p.started) / 1000;
  // The pace is this attempt's: what a resumed run found done took no time now.
  const doneHere = p.done - (p.resumed ?? 0);
  if (p.total) {
    parts.push(`${formatCount(p.done)}/${formatCount(p.total)} (${Math.floor((p.done / p.total) * 100)}%)`);
    if (doneHere > 0 && p.done < p.total && elapsed > 1) {
      parts.push(`ETA ${formatDuration(((p.total - p.done) / doneHere) * elapsed * 1000)}`);
    }
  } else {
    parts.push(formatCount(p.done));
  }
  if (p.status) parts.push(p.status);
  return parts.join(' ');
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

export function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(' ');
}

function truncate(text: string, width: number): string {
  // eslint-disable-next-line no-control-regex
  const visible = text.replace(/\x1b\[[0-9;]*m/g, '');
  if (visible.length <= width) return text;
  return `${visible.slice(0, width - 1)}…`;
}
