// Inline SVG charts: learning curves and the confusion heat map. Plain markup, no script, so the
// report renders from disk anywhere; sizes come from the viewBox and the CSS scales them.
import { html, join, num, raw, type Markup } from './markup.js';

export interface Series {
  readonly name: string;
  /** [x, y]; a null y leaves a gap (a diverged epoch). */
  readonly points: readonly (readonly [number, number | null])[];
  readonly color: string;
  readonly dashed?: boolean;
}

export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Force the y range to include these (accuracy: 1). */
  readonly yInclude?: readonly number[];
  readonly format?: (y: number) => string;
  readonly width?: number;
  readonly height?: number;
}

/** A "nice" step (1, 2, 2.5, 5 x 10^k) so that about `target` ticks cover `span`. */
export function niceStep(span: number, target = 5): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return nice * mag;
}

export function niceTicks(lo: number, hi: number, target = 5): { lo: number; hi: number; ticks: number[] } {
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, target);
  const start = Math.floor(lo / step + 1e-9) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo: start, hi: end, ticks };
}

export function lineChart(o: LineChartOptions): Markup {
  const W = o.width ?? 520;
  const H = o.height ?? 300;
  const m = { top: 36, right: 18, bottom: 46, left: 58 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.flatMap((p) => (p[1] === null ? [] : [p[1]]))).concat(o.yInclude ?? []);
  const fmt = o.format ?? ((y: number) => num(y, 3));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const xPad = xMin === xMax ? 0.5 : 0;
  const x0 = xMin - xPad;
  const x1 = xMax + xPad;
  const xStep = Math.max(1, Math.ceil(niceStep(x1 - x0, 8)));
  const xTicks: number[] = [];
  for (let v = Math.ceil(x0 / xStep) * xStep; v <= x1; v += xStep) xTicks.push(v);
  const y = niceTicks(Math.min(...ys), Math.max(...ys));
  const sx = (v: number): number => m.left + ((v - x0) / (x1 - x0)) * pw;
  const sy = (v: number): number => m.top + ph - ((v - y.lo) / (y.hi - y.lo)) * ph;

  const grid = y.ticks.map(
    (t) => html`<line class="grid" x1="${num(m.left)}" x2="${num(m.left + pw)}" y1="${num(sy(t))}" y2="${num(sy(t))}"/>
<text class="tick" x="${num(m.left - 8)}" y="${num(sy(t) + 4)}" text-anchor="end">${fmt(t)}</text>`,
  );
  const xAxis = xTicks.map(
    (t) => html`<line class="axis" x1="${num(sx(t))}" x2="${num(sx(t))}" y1="${num(m.top + ph)}" y2="${num(m.top + ph + 5)}"/>
<text class="tick" x="${num(sx(t))}" y="${num(m.top + ph + 19)}" text-anchor="middle">${t}</text>`,
  );
  const lines = o.series.map((s) => {
    let d = '';
    let pen = false;
    for (const [px, py] of s.points) {
      if (py === null) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${num(sx(px))} ${num(sy(py))}`;
      pen = true;
    }
    const dots = s.points.flatMap(([px, py]) =>
      py === null
        ? []
        : [
            html`<circle cx="${num(sx(px))}" cy="${num(sy(py))}" r="${s.points.length > 20 ? 2.5 : 3.5}" fill="${s.color}"><title>${s.name}, ${o.xLabel.toLowerCase()} ${px}: ${fmt(py)}</title></circle>`,
          ],
    );
    return html`<g class="series"><path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.25" stroke-linejoin="round"${
      s.dashed ? raw(' stroke-dasharray="6 4"') : ''
    }/>${dots}</g>`;
  });
  // Legend across the top, right-aligned; entries measured roughly (no layout engine here).
  let lx = W - m.right;
  const legend = [...o.series].reverse().map((s) => {
    const w = 34 + s.name.length * 7;
    lx -= w;
    return html`<g transform="translate(${num(lx)},14)"><line x1="0" x2="22" y1="0" y2="0" stroke="${s.color}" stroke-width="2.25"${
      s.dashed ? raw(' stroke-dasharray="6 4"') : ''
    }/><text class="legend" x="28" y="4">${s.name}</text></g>`;
  });
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${o.title}" xmlns="http://www.w3.org/2000/svg">
<title>${o.title}</title>
<text class="chart-title" x="${num(m.left)}" y="18">${o.title}</text>
${grid}
<line class="axis" x1="${num(m.left)}" x2="${num(m.left + pw)}" y1="${num(m.top + ph)}" y2="${num(m.top + ph)}"/>
<line class="axis" x1="${num(m.left)}" x2="${num(m.left)}" y1="${num(m.top)}" y2="${num(m.top + ph)}"/>
${xAxis}
<text class="axis-label" x="${num(m.left + pw / 2)}" y="${H - 8}" text-anchor="middle">${o.xLabel}</text>
<text class="axis-label" transform="translate(15,${num(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">${o.yLabel}</text>
${lines}
${legend}
</svg>`;
}

function mix(from: readonly [number, number, number], to: readonly [number, number, number], t: number): string {
  const c = from.map((f, i) => Math.round(f + (to[i]! - f) * t));
  return `rgb(${c.join(',')})`;
}

const WHITE = [247, 248, 250] as const;
const RIGHT = [22, 101, 192] as const; // diagonal: blue
const WRONG = [200, 40, 40] as const; // off-diagonal: red

function shorten(name: string, max: number): string {
  return name.length <= max ? name : `${name.slice(0, max - 1)}…`;
}

/**
 * The confusion matrix as a heat map: rows are the true class, columns the prediction. Colour
 * is the share of the row (the recall view), blue on the diagonal and red off it, so mistakes
 * stand out whatever the class balance; each cell shows the count and that share.
 */
export function confusionHeatmap(classes: readonly string[], confusion: readonly (readonly number[])[]): Markup {
  const n = classes.length;
  const cell = Math.max(26, Math.min(96, Math.floor(420 / n)));
  const showText = cell >= 44;
  const maxChars = 16;
  const labelW = Math.min(maxChars, Math.max(...classes.map((c) => c.length))) * 7.5 + 16;
  const left = 26 + labelW;
  const top = 34 + (n > 4 ? labelW : 22);
  // Rotated column labels lean right by cos(60deg) of their length.
  const W = left + n * cell + (n > 4 ? labelW / 2 : 10);
  const H = top + n * cell + 10;
  const rowTotals = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const cells = confusion.flatMap((row, i) =>
    row.map((v, j) => {
      const share = rowTotals[i] ? v / rowTotals[i]! : 0;
      const t = Math.sqrt(share); // a few mistakes should still be visible
      const fill = mix(WHITE, i === j ? RIGHT : WRONG, v === 0 ? 0 : 0.12 + 0.88 * t);
      const dark = v > 0 && 0.12 + 0.88 * t > 0.55;
      const x = left + j * cell;
      const yy = top + i * cell;
      const pct = `${num(share * 100, share * 100 >= 10 || share === 0 ? 0 : 1)}%`;
      const label = showText
        ? html`<text class="cm-count${dark ? ' on-dark' : ''}" x="${num(x + cell / 2)}" y="${num(yy + cell / 2 + 1)}" text-anchor="middle">${v}</text>
<text class="cm-share${dark ? ' on-dark' : ''}" x="${num(x + cell / 2)}" y="${num(yy + cell / 2 + 17)}" text-anchor="middle">${pct}</text>`
        : '';
      return html`<g><rect x="${num(x)}" y="${num(yy)}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff" stroke-width="2" rx="3"><title>true ${classes[i]}, predicted ${classes[j]}: ${v} (${pct} of ${classes[i]})</title></rect>${label}</g>`;
    }),
  );
  const colLabels = classes.map((c, j) => {
    const cx = left + j * cell + cell / 2;
    return n > 4
      ? html`<text class="cm-label" transform="translate(${num(cx + 4)},${top - 8}) rotate(-60)" text-anchor="start">${shorten(c, maxChars)}<title>${c}</title></text>`
      : html`<text class="cm-label" x="${num(cx)}" y="${top - 8}" text-anchor="middle">${shorten(c, maxChars)}<title>${c}</title></text>`;
  });
  const rowLabels = classes.map(
    (c, i) =>
      html`<text class="cm-label" x="${num(left - 8)}" y="${num(top + i * cell + cell / 2 + 4)}" text-anchor="end">${shorten(c, maxChars)}<title>${c}</title></text>`,
  );
  return html`<svg class="heatmap" viewBox="0 0 ${num(W)} ${num(H)}" width="${num(W)}" role="img" aria-label="Confusion matrix" xmlns="http://www.w3.org/2000/svg">
<title>Confusion matrix (rows: true class, columns: predicted class)</title>
<text class="axis-label" x="${num(left + (n * cell) / 2)}" y="16" text-anchor="middle">predicted</text>
<text class="axis-label" transform="translate(14,${num(top + (n * cell) / 2)}) rotate(-90)" text-anchor="middle">true</text>
${join(colLabels)}${join(rowLabels)}${cells}
</svg>`;
}
