// A diagnostic as the user sees it:
//   pipelines/x.yaml:12:5: stages.split.with.valid: must be an integer
//      12 |     valid: abc
//         |            ^^^
import pc from 'picocolors';
import type { Diagnostic, SourcePos } from '../pipeline.js';

function tokenLength(line: string, col: number): number {
  const rest = line.slice(col - 1);
  const quoted = /^(["'])(?:\\.|(?!\1).)*\1/.exec(rest);
  if (quoted) return quoted[0].length;
  const m = /^[^\s,\]}#:]+/.exec(rest);
  return Math.max(1, m ? m[0].length : 1);
}

function excerpt(source: string | undefined, pos: SourcePos | undefined, c: ReturnType<typeof pc.createColors>): string[] {
  if (!source || !pos) return [];
  const line = source.split(/\r?\n/)[pos.line - 1];
  if (line === undefined) return [];
  const shown = line.replace(/\t/g, ' ');
  const gutter = String(pos.line).length;
  const caret = ' '.repeat(Math.max(0, pos.col - 1)) + '^'.repeat(tokenLength(shown, pos.col));
  return [`${' '.repeat(3)}${c.dim(`${pos.line} |`)} ${shown.slice(0, 200)}`, `${' '.repeat(3 + gutter)}${c.dim(' |')} ${c.red(caret)}`];
}

export function formatDiagnostic(d: Diagnostic, source?: string, color = false): string {
  const c = pc.createColors(color);
  const where = d.pos ? `${d.file}:${d.pos.line}:${d.pos.col}` : d.file;
  const lines = [`${c.bold(where)}: ${d.path ? `${c.cyan(d.path)}: ` : ''}${d.message}`, ...excerpt(source, d.pos, c)];
  for (const r of d.related ?? []) {
    const at = r.pos ? `${d.file}:${r.pos.line}:${r.pos.col}` : d.file;
    lines.push(`  ${c.dim('note:')} ${at}: ${r.path}: ${r.message}`);
  }
  return lines.join('\n');
}
