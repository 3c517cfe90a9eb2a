// The learning-rate range test as a standalone SVG file in the report's look: the report's line
// chart (charts.ts) with the chart rules of its stylesheet inlined, so it opens on its own.
import { lineChart } from './charts.js';
import { STYLE } from './style.js';
import type { RangeTestResult } from '../vision/lr-range.js';

/** The stylesheet's colour variables and its `svg ...` rules: all a chart needs outside the page. */
function chartStyle(): string {
  const rootVars = /:root\s*\{[^}]*\}/.exec(STYLE)?.[0] ?? '';
  const svgRules = STYLE.split('\n').filter((l) => l.startsWith('svg '));
  return [
    rootVars.replace(':root', 'svg'),
    ...svgRules,
    'svg { background: #fff; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }',
  ].join('\n');
}

export function rangeTestSvg(r: RangeTestResult, title: string): string {
  // The diverged step would squash the curve into the bottom row: left out, as is raw loss far above the smoothed curve.
  const pts = r.stopped ? r.points.slice(0, -1) : r.points;
  const top = 2 * Math.max(...pts.map((p) => p.smoothed));
  const x = (lr: number) => Number(Math.log10(lr).toFixed(4));
  const ys = pts.map((p) => p.smoothed);
  const series = [
    { name: 'loss', points: pts.map((p) => [x(p.lr), p.loss <= top ? p.loss : null] as const), color: '#9aa3b2' },
    { name: 'smoothed', points: pts.map((p) => [x(p.lr), p.smoothed] as const), color: '#1f6fd1' },
    ...(r.suggested === null
      ? []
      : [
          {
            name: `suggested ${r.suggested.toExponential(1)}`,
            points: [[x(r.suggested), Math.min(...ys)] as const, [x(r.suggested), Math.max(...ys)] as const],
            color: '#e07a10',
            dashed: true,
          },
        ]),
  ];
  const chart = String(lineChart({ title, xLabel: 'Learning rate (log10)', yLabel: 'loss', series, width: 640, height: 360 }));
  return chart.replace(/(<svg[^>]*>)/, `$1\n<style>\n${chartStyle()}\n</style>`);
}
