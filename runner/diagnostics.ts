// A diagnostic as the user sees it, and the small helpers messages share ("did you mean").
//   pipelines/x.yaml:12:5: stages.split.with.valid: must be integer
//      12 |     valid: abc
//         |            ^^^
// Related places (each edge of a cycle, the first of two duplicate keys) follow, each with its
// own excerpt. Kept free of heavy imports: every command that prints a problem loads it.
import type { Diagnostic, SourcePos } from './pipeline.js';

const ansi = (open: number, close: number) => (on: boolean) => (s: string) => (on ? `\u001b[${open}m${s}\u001b[${close}m` : s);
const bold = ansi(1, 22);
const dim = ansi(2, 22);
const red = ansi(31, 39);
const cyan = ansi(36, 39);

const MAX_SHOWN = 160;

/** Terminal columns a character takes: 2 for East Asian wide and emoji, 0 for combining marks. */
function width(ch: string): number {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x300) return 1;
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

function displayWidth(text: string): number {
  let w = 0;
  for (const ch of text) w += width(ch);
  return w;
}

/** Length (in UTF-16 units, like columns) of the token that starts at `col`. */
function tokenLength(line: string, col: number): number {
  const rest = line.slice(col - 1);
  const quoted = /^(["'])(?:\\.|(?!\1).)*\1/.exec(rest);
  if (quoted) return quoted[0].length;
  if (rest.startsWith('${')) {
    const end = rest.indexOf('}');
    if (end > 0) return end + 1;
  }
  const m = /^[^\s,\]}{[#]+(?::[^\s,\]}{[#]+)*/.exec(rest);
  const token = m ? m[0].replace(/:$/, '') : '';
  return Math.max(1, token.length);
}

// Control characters and bidirectional overrides from a YAML file must not reach the terminal
// raw: an escape sequence could clear the screen or forge output, a CR rewrite the line.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (ch === '\t') return '\\t';
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
}

/** Text from a YAML file made safe to print: control characters shown as escapes, and bounded. */
export function printable(text: string, max = 1000): string {
  const safe = text.replace(UNSAFE, escapeChar);
  return safe.length > max ? `${safe.slice(0, max - 3)}...` : safe;
}

/** An excerpt line: tabs become one space each (columns count a tab as one), the rest escaped. */
function printableLine(text: string): string {
  return text.replace(UNSAFE, (ch) => (ch === '\t' ? ' ' : escapeChar(ch)));
}

function excerpt(source: string | undefined, pos: SourcePos | undefined, color: boolean): string[] {
  if (source === undefined || !pos) return [];
  const raw = source.split(/\r?\n/)[pos.line - 1];
  if (raw === undefined) return [];
  const col = Math.min(Math.max(1, pos.col), raw.length + 1);
  const len = tokenLength(raw, col);
  let before = printableLine(raw.slice(0, col - 1));
  const token = printableLine(raw.slice(col - 1, col - 1 + len));
  let after = printableLine(raw.slice(col - 1 + len));
  // Long lines are clipped around the node, which stays in view.
  const half = Math.floor(MAX_SHOWN / 2);
  if (before.length > half) before = `…${before.slice(before.length - half + 1)}`;
  if (before.length + token.length + after.length > MAX_SHOWN) after = `${after.slice(0, Math.max(0, MAX_SHOWN - before.length - token.length - 1))}…`;
  const shownToken = token.length > MAX_SHOWN ? token.slice(0, MAX_SHOWN) : token;
  const caret = ' '.repeat(displayWidth(before)) + '^'.repeat(Math.max(1, displayWidth(shownToken)));
  const gutter = String(pos.line).length;
  return [
    `   ${dim(color)(`${pos.line} |`)} ${before}${shownToken}${token.length > MAX_SHOWN ? '…' : after}`,
    `   ${' '.repeat(gutter)}${dim(color)(' |')} ${red(color)(caret)}`,
  ];
}

function where(file: string, pos: SourcePos | undefined): string {
  return printable(pos ? `${file}:${pos.line}:${pos.col}` : file);
}

/**
 * `file:line:col: path: message`, then the offending line with a caret under the node, then
 * each related place. `source` is the text of `d.file` (omit it for no excerpt).
 */
export function formatDiagnostic(d: Diagnostic, source?: string, color = false): string {
  const head = `${bold(color)(where(d.file, d.pos))}: ${d.path ? `${cyan(color)(printable(d.path, 200))}: ` : ''}${printable(d.message)}`;
  const lines = [head, ...excerpt(source, d.pos, color)];
  for (const r of d.related ?? []) {
    lines.push(`  ${dim(color)('note:')} ${where(d.file, r.pos)}: ${r.path ? `${printable(r.path, 200)}: ` : ''}${printable(r.message)}`);
    const samePlace = r.pos && d.pos && r.pos.line === d.pos.line && r.pos.col === d.pos.col;
    if (!samePlace) lines.push(...excerpt(source, r.pos, color).map((l) => `  ${l}`)); // shown just above
  }
  return lines.join('\n');
}

/** `file:line:col: path: message` only: for tests and one-line logs. */
export function diagnosticLine(d: Diagnostic): string {
  return `${where(d.file, d.pos)}: ${d.path ? `${printable(d.path, 200)}: ` : ''}${printable(d.message)}`;
}

/** Edit distance where swapping two neighbours counts once ("spilt" -> "split": 1). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate by edit distance, when it is close enough to be a likely typo. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  if (name.length > 100) return undefined;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (c.length > 100) continue;
    const d = distance(lower, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  // Close enough to be a typo, and not a mere guess between very short names.
  return best !== undefined && bestD <= Math.max(1, Math.floor(name.length / 3)) && bestD < name.length ? best : undefined;
}

/** " (did you mean 'x'?)" or "". */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const hint = closest(name, candidates);
  return hint !== undefined && hint !== name ? ` (did you mean '${hint}'?)` : '';
}

/** A value as it appears in a message: short, one line. */
export function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = `'${value}'`;
  else if (typeof value === 'number' && !Number.isFinite(value)) text = String(value);
  else if (value === undefined) text = 'nothing';
  else text = JSON.stringify(value) ?? String(value);
  text = text.replace(/\s+/g, ' ');
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
