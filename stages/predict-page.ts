// predictions.html of `predict`: one self-contained page (inline CSS, images as data: URIs, the
// report's Content-Security-Policy) with a picture grid per predicted class (the most confident
// first) and the least confident images overall: where a person should look.
import { CSP } from './report/html.js';
import { html, join, raw, type Markup } from './report/markup.js';
import * as fmt from './report/format.js';
import { STYLE } from './report/style.js';
import type { ThumbnailResult } from './report/thumbnails.js';

export interface PredictedImage {
  /** Relative to the predicted folder. */
  readonly file: string;
  readonly predicted: number;
  readonly probs: Float32Array;
}

export interface PageData {
  readonly title: string;
  readonly classes: readonly string[];
  readonly images: readonly PredictedImage[];
  readonly perView: number;
  readonly corrupt: number;
}

/** The images the page shows: the most confident `perView` of each class, the least confident `perView`. */
export function pageViews(images: readonly PredictedImage[], classes: readonly string[], perView: number): { title: string; items: PredictedImage[] }[] {
  const conf = (x: PredictedImage) => x.probs[x.predicted]!;
  const byConf = [...images].sort((a, b) => conf(b) - conf(a) || (a.file < b.file ? -1 : 1));
  const views = classes.map((c, i) => {
    const all = byConf.filter((x) => x.predicted === i);
    return { title: `Predicted ${c} (${all.length}, most confident first)`, items: all.slice(0, perView) };
  });
  views.push({ title: 'Least confident', items: [...byConf].reverse().slice(0, perView) });
  return views;
}

export function renderPredictPage(data: PageData, thumb: (file: string) => ThumbnailResult): string {
  const counts = data.classes.map(
    (c, i) => html`<div class="card"><div class="k">${c}</div><div class="v">${data.images.filter((x) => x.predicted === i).length}</div></div>`,
  );
  const views = pageViews(data.images, data.classes, data.perView).map(
    (v) => html`<div class="view">
<h3>${v.title}</h3>
${v.items.length ? html`<div class="grid">${v.items.map((x) => figure(x, data.classes, thumb))}</div>` : html`<p class="na">No images in this view.</p>`}
</div>`,
  );
  return `${html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<title>${data.title}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<header class="top"><div class="wrap"><h1>${data.title}</h1>
<p class="sub">${data.images.length} images predicted${data.corrupt ? `, ${data.corrupt} left out (corrupt: listed in predict.json)` : ''}</p></div></header>
<main class="wrap">
<section><h2>Predicted classes</h2><div class="cards">${counts}</div></section>
<section id="pictures"><h2>Pictures</h2>
${join(views, '\n')}
</section>
</main>
</body>
</html>`.toString()}\n`;
}

function figure(x: PredictedImage, classes: readonly string[], thumb: (file: string) => ThumbnailResult): Markup {
  const t = thumb(x.file);
  const p = x.probs[x.predicted]!;
  const picture = t.ok
    ? html`<img src="${t.thumb.dataUri}" width="${t.thumb.width}" height="${t.thumb.height}" alt="${x.file}">`
    : html`<div class="missing">${t.reason}</div>`;
  const others =
    classes.length <= 4
      ? html`<div class="probs">${join(
          classes.map((c, i) => html`${c} ${x.probs[i]!.toFixed(3)}`),
          ' · ',
        )}</div>`
      : '';
  return html`<figure>
<div class="frame">${picture}</div>
<figcaption>
<div class="fname" title="${x.file}">${fmt.basename(x.file)}</div>
<div class="labels">predicted <b>${classes[x.predicted]}</b></div>
<div class="prob"><span class="meter"><span style="width:${fmt.percent(p, 1)}"></span></span><span>P(${classes[x.predicted]}) ${p.toFixed(3)}</span></div>
${others}
</figcaption>
</figure>`;
}
