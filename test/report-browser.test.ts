// The report in a real browser: headless Chromium (Debian's `chromium`) through playwright-core.
// Checks what a person would notice: errors, broken pictures, missing charts; and leaves a
// screenshot in test-artifacts/ to look at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { reportStage, type ReportParams } from '../stages/report.js';
import { fixtureArtifacts, makeReportFixture } from './helpers/report-fixtures.js';
import { makeTestContext } from './helpers/stage-context.js';

const CANDIDATES = [process.env.PIPE_CHROMIUM, '/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser'];
const executablePath = CANDIDATES.find((p): p is string => !!p && existsSync(p));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

interface PageFacts {
  images: { alt: string; complete: boolean; naturalWidth: number }[];
  charts: { paths: number; circles: number; width: number; height: number }[];
  heatmapCells: number;
  figures: number;
  wrongFigures: number;
  scripts: number;
  title: string;
  scrollWidth: number;
  clientWidth: number;
  /** Elements reaching past the right edge (to say what overflows). */
  overflowing: string[];
}

// Runs in the page (this project compiles without the DOM library, hence a string).
const FACTS = `(() => {
  const box = (el) => el.getBoundingClientRect();
  return {
    images: [...document.images].map((img) => ({ alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth })),
    charts: [...document.querySelectorAll('svg.chart')].map((svg) => ({
      paths: svg.querySelectorAll('path').length,
      circles: svg.querySelectorAll('circle').length,
      width: box(svg).width,
      height: box(svg).height,
    })),
    heatmapCells: document.querySelectorAll('svg.heatmap rect').length,
    figures: document.querySelectorAll('figure').length,
    wrongFigures: document.querySelectorAll('figure.wrong').length,
    scripts: document.scripts.length,
    title: document.title,
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    overflowing: [...document.querySelectorAll('body *')]
      .filter((el) => box(el).right > document.documentElement.clientWidth + 1 && !el.closest('.table-scroll, .scroll-x, .heatmap-box'))
      .slice(0, 5)
      .map((el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '')),
  };
})()`;

test('report: renders in headless Chromium without errors, with every picture decoded', async (t) => {
  if (!executablePath) {
    t.skip(`no Chromium found (looked at ${CANDIDATES.filter(Boolean).join(', ')}): install Debian's \`chromium\` package, or set PIPE_CHROMIUM`);
    return;
  }
  const fixture = await makeReportFixture();
  const a = fixtureArtifacts(fixture);
  const ctx = await makeTestContext<ReportParams>(
    { thumbnails: 160, max_per_view: 8, title: 'Dogs vs cats: fine-tuned VGG16' },
    { inputs: { evaluation: a.evaluation, model: a.model }, lineage: a.lineage, stageId: 'report' },
  );
  t.after(async () => {
    await ctx.cleanup();
    await fixture.cleanup();
  });
  await reportStage.run(ctx);
  const url = pathToFileURL(path.join(ctx.outDir, 'index.html')).href;

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url().slice(0, 80)} ${r.failure()?.errorText ?? ''}`));
  page.on('request', (r) => {
    const u = r.url();
    if (u !== url && !u.startsWith('data:')) problems.push(`unexpected request: ${u}`);
  });
  page.on('dialog', async (d) => {
    problems.push(`dialog: ${d.message()}`);
    await d.dismiss();
  });

  const response = await page.goto(url, { waitUntil: 'load' });
  assert.ok(response === null || response.ok(), 'page loaded');
  const facts = (await page.evaluate(FACTS)) as PageFacts;

  assert.deepEqual(problems, []);
  assert.equal(facts.title, 'Dogs vs cats: fine-tuned VGG16');
  assert.equal(facts.scripts, 0);
  const expected = fixture.analysis.views.reduce((s, v) => s + Math.min(v.items.length, 8), 0);
  assert.equal(facts.images.length, expected);
  assert.equal(facts.figures, expected);
  assert.ok(facts.wrongFigures > 0);
  for (const img of facts.images) assert.ok(img.complete && img.naturalWidth > 0, `picture decoded: ${img.alt}`);
  assert.ok(
    facts.images.some((i) => i.alt.includes('<script>')),
    'the nasty name is an alt text, not markup',
  );
  assert.equal(facts.charts.length, 2);
  for (const c of facts.charts) {
    assert.ok(c.paths >= 2 && c.circles >= 10, `chart has lines and points: ${JSON.stringify(c)}`);
    assert.ok(c.width > 300 && c.height > 150, `chart is laid out: ${JSON.stringify(c)}`);
  }
  assert.equal(facts.heatmapCells, 4);
  assert.ok(facts.scrollWidth <= facts.clientWidth, 'no horizontal scrolling at 1280 px');

  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });
  // A phone-sized view: the layout must fold to one column without overflow.
  await page.setViewportSize({ width: 390, height: 800 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'report-narrow.png'), fullPage: true });
  const narrow = (await page.evaluate(FACTS)) as PageFacts;
  assert.ok(narrow.scrollWidth <= narrow.clientWidth + 1, `no horizontal scrolling at 390 px (${narrow.scrollWidth}): ${narrow.overflowing.join(', ')}`);
});
