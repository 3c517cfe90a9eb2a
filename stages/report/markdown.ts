// report.md: the same headline facts as index.html for places that render Markdown (CI job
// summaries, PR comments). No images: those places do not take data: URIs.
import * as fmt from './format.js';
import type { ReportData } from './model.js';
import { RUN_MARK } from './run-marks.js';

/**
 * Text for a GFM table cell: `|` would end the cell, `<` could start raw HTML (a file may be
 * called `<script>.jpg`), brackets and emphasis characters would be read as markup.
 */
export function mdText(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|~!#]/g, (c) => `\\${c}`);
}

export function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ('l' | 'r')[] = []): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const sep = header.map((_, i) => (align[i] === 'r' ? '---:' : '---'));
  return [line(header), line(sep), ...rows.map(line)].join('\n');
}

export function renderMarkdown(data: ReportData): string {
  const m = data.metrics;
  const out: string[] = [];
  out.push(`## ${mdText(data.title)}`, '');
  out.push(`Pipeline \`${data.pipelineName.replace(/`/g, "'")}\`${RUN_MARK.header}`, '');
  // A failed gate first, where a CI summary reader looks.
  for (const v of data.verdicts)
    out.push(v.passed ? `✅ **${mdText(v.stage)}: ${mdText(v.message)}**` : `> ❌ **FAILED — ${mdText(v.stage)}: ${mdText(v.message)}**`, '');

  const headline: string[][] = [
    ['accuracy', `**${fmt.percent(m.accuracy, 2)}** (${m.accuracy.toFixed(4)})`],
    ['log loss', m.logLoss.toFixed(4)],
    [`images (${mdText(m.on)})`, fmt.integer(m.count)],
  ];
  if (m.testCount !== undefined) headline.push(['test predictions', fmt.integer(m.testCount)]);
  if (m.tta) headline.push(['test-time augmentation', mdText(m.tta)]);
  out.push(table(['metric', 'value'], headline, ['l', 'r']), '');

  out.push('### Per class', '');
  out.push(
    table(
      ['class', 'precision', 'recall', 'F1', 'support'],
      m.classes.map((c) => {
        const pc = m.perClass[c];
        return pc
          ? [mdText(c), fmt.fixed(pc.precision, 3), fmt.fixed(pc.recall, 3), fmt.fixed(pc.f1, 3), fmt.integer(pc.support)]
          : [mdText(c), '–', '–', '–', '–'];
      }),
      ['l', 'r', 'r', 'r', 'r'],
    ),
    '',
  );

  out.push('### Confusion matrix', '', 'Rows: true class; columns: predicted class.', '');
  out.push(
    table(
      ['true \\\\ predicted', ...m.classes.map(mdText)],
      m.confusion.map((row, i) => [`**${mdText(m.classes[i] ?? '')}**`, ...row.map((v) => fmt.integer(v))]),
      ['l', ...m.classes.map(() => 'r' as const)],
    ),
    '',
  );

  out.push('### Most confidently wrong', '');
  if (!data.mostWrong.ok) out.push(`Not available: ${mdText(data.mostWrong.reason)}.`, '');
  else if (data.mostWrong.value.length === 0) out.push('No wrong predictions.', '');
  else {
    out.push(
      table(
        ['#', 'file', 'true', 'predicted', 'P(true)'],
        data.mostWrong.value.map((p, i) => [
          String(i + 1),
          mdText(p.file),
          mdText(p.label),
          mdText(p.predicted),
          p.probs[p.label] === undefined ? '–' : p.probs[p.label]!.toFixed(3),
        ]),
        ['r', 'l', 'l', 'l', 'r'],
      ),
      '',
    );
  }

  // The run view (`pipe run` prints its path) puts the stages' timings and origins here.
  out.push(RUN_MARK.body);
  return out.join('\n');
}
