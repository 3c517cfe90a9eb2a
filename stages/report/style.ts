// The report's stylesheet, inlined into index.html. System fonts only: nothing is fetched.
export const STYLE = `
:root {
  --fg: #1d2330; --muted: #5d6778; --line: #e3e7ee; --bg: #f5f7fa; --panel: #fff;
  --accent: #1f6fd1; --good: #1a8a4a; --bad: #c62828; --warn: #b86e00;
  --grid: #e8ebf0; --axis: #9aa3b2;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--fg); background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "DejaVu Sans", Arial, sans-serif;
}
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.88em; }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header.top { background: #17202f; color: #fff; padding: 22px 0 0; margin-bottom: 26px; }
header.top h1 { margin: 0; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header.top .sub { margin: 4px 0 14px; color: #b7c0cf; font-size: 14px; }
header.top .sub b { color: #fff; font-weight: 600; }
header.top code { color: #dfe6f1; }
header.top nav { display: flex; gap: 4px; flex-wrap: wrap; }
header.top nav a { color: #cfd7e4; text-decoration: none; padding: 8px 12px; border-radius: 6px 6px 0 0; font-size: 14px; }
header.top nav a:hover { background: rgba(255,255,255,0.08); color: #fff; }
section { margin: 0 0 38px; scroll-margin-top: 12px; }
h2 { font-size: 20px; margin: 0 0 14px; font-weight: 650; }
h3 { font-size: 16px; margin: 0 0 10px; font-weight: 600; }
h4 { font-size: 14px; margin: 0 0 8px; font-weight: 600; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; min-width: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 14px; margin-bottom: 16px; }
.verdict { margin: 18px 0 0; padding: 12px 16px; border-radius: 10px; border: 1px solid var(--line); font-size: 16px; }
.verdict.failed { background: #fdecea; border-color: var(--bad); color: var(--bad); }
.verdict.passed { background: #e8f5ec; border-color: var(--good); color: var(--good); }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card .label { color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: 0.04em; }
.card .big { font-size: 30px; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.25; margin: 2px 0; }
.card .small { color: var(--muted); font-size: 13px; }
.card.accent .big { color: var(--accent); }
.card.warn .big { color: var(--bad); }
.meter { display: inline-block; width: 100%; height: 6px; background: #e6eaf0; border-radius: 3px; overflow: hidden; vertical-align: middle; }
.meter > span { display: block; height: 100%; background: var(--accent); border-radius: 3px; }
.split { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; align-items: start; }
.charts { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; }
@media (max-width: 820px) { .split, .charts { grid-template-columns: minmax(0, 1fr); } }
@media (max-width: 560px) {
  .wrap { padding: 0 14px; }
  .grid { grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
  .card .big { font-size: 26px; }
  .panel { padding: 14px 12px; }
  table.data th, table.data td { padding: 6px 6px; }
}
svg.chart { width: 100%; height: auto; display: block; }
.heatmap-box { overflow-x: auto; }
svg.heatmap { max-width: 100%; height: auto; display: block; margin: 0 auto; }
svg text { fill: var(--fg); font-size: 12px; }
svg .chart-title { font-size: 14px; font-weight: 600; }
svg .tick { fill: var(--muted); font-size: 11.5px; font-variant-numeric: tabular-nums; }
svg .axis-label { fill: var(--muted); font-size: 12px; }
svg .legend { font-size: 12px; }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .axis { stroke: var(--axis); stroke-width: 1; }
svg .cm-label { font-size: 13px; font-weight: 600; }
svg .cm-count { font-size: 17px; font-weight: 650; font-variant-numeric: tabular-nums; }
svg .cm-share { font-size: 11.5px; fill: var(--muted); }
svg .on-dark { fill: #fff; }
table { border-collapse: collapse; }
table.data { width: 100%; font-size: 14px; }
table.data th, table.data td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.data tr.kept td { font-weight: 600; }
table.data thead th { color: var(--muted); font-weight: 600; font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.03em; border-bottom-width: 2px; }
table.num td, td.n { font-variant-numeric: tabular-nums; text-align: right; }
table.num thead th:not(:first-child) { text-align: right; }
table.data tbody tr:last-child > * { border-bottom: 0; }
table.kv { width: 100%; font-size: 13.5px; }
table.kv th { text-align: left; font-weight: 500; color: var(--muted); padding: 4px 12px 4px 0; white-space: nowrap; vertical-align: top; width: 1%; }
table.kv td { padding: 4px 0; overflow-wrap: anywhere; }
.note { color: var(--muted); font-size: 13px; margin: 10px 0 0; }
section > .note { margin-bottom: 18px; }
.na { color: var(--muted); background: var(--panel); border: 1px dashed #c9d0db; border-radius: 10px; padding: 14px 16px; margin: 0; }
details { margin-top: 12px; }
details summary { cursor: pointer; color: var(--accent); font-size: 14px; }
details table { margin-top: 8px; background: var(--panel); }
.view { margin: 0 0 26px; }
.view h3 { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.count { color: var(--muted); font-weight: 400; font-size: 13px; }
.badge { display: inline-block; font-size: 11.5px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.04em; padding: 2px 8px; border-radius: 999px; background: #e8ecf2; color: #4a5466; }
.badge.correct { background: #e2f4e9; color: var(--good); }
.badge.wrong { background: #fde7e7; color: var(--bad); }
.badge.uncertain { background: #fff1dc; color: var(--warn); }
.badge.run { background: #e4eefc; color: var(--accent); }
.badge.cached { background: #eceff3; color: #4a5466; }
.badge.remote { background: #efe7fb; color: #5b3a99; }
.muted { color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(168px, 1fr)); gap: 12px; }
figure { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
figure.wrong { border: 2px solid var(--bad); }
.frame { position: relative; aspect-ratio: 1 / 1; background: #eef1f5; display: flex; align-items: center; justify-content: center; }
.frame img { max-width: 100%; max-height: 100%; width: auto; height: auto; display: block; }
.frame .missing { color: var(--muted); font-size: 12.5px; padding: 12px; text-align: center; overflow-wrap: anywhere; }
.mark { position: absolute; top: 6px; right: 6px; width: 22px; height: 22px; border-radius: 50%; color: #fff; font-size: 13px; font-weight: 700; line-height: 22px; text-align: center; background: var(--good); box-shadow: 0 1px 2px rgba(0,0,0,0.25); }
figure.wrong .mark { background: var(--bad); }
figcaption { padding: 8px 10px 10px; font-size: 12.5px; line-height: 1.45; }
.fname { font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.labels { color: var(--muted); }
.labels b { color: var(--fg); font-weight: 600; }
.labels b.bad { color: var(--bad); }
.prob { display: flex; align-items: center; gap: 8px; font-variant-numeric: tabular-nums; margin-top: 3px; white-space: nowrap; }
.prob .meter { flex: 1; }
figure.wrong .prob .meter > span { background: var(--bad); }
.probs { color: var(--muted); font-size: 11.5px; font-variant-numeric: tabular-nums; }
td.nw { white-space: nowrap; }
.scroll-x { overflow-x: auto; }
.table-scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 10px; background: var(--panel); }
table.stages { border-collapse: separate; border-spacing: 0; }
table.stages td.chips-cell { min-width: 220px; }
table.stages td, table.stages th { font-size: 13.5px; }
.chips { display: flex; flex-wrap: wrap; gap: 4px; }
.chip { display: inline-block; background: #f0f2f6; border-radius: 5px; padding: 1px 7px; font-size: 12px; color: #3d4656; white-space: nowrap; max-width: 100%; overflow: hidden; text-overflow: ellipsis; }
.chip.metric { background: #e4eefc; color: #174f96; }
.param-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }
.params .uses { color: var(--muted); font-weight: 400; font-family: ui-monospace, monospace; font-size: 12px; margin-left: 4px; }
footer { color: var(--muted); font-size: 13px; padding-top: 8px; padding-bottom: 36px; border-top: 1px solid var(--line); }
@media print { header.top nav { display: none; } figure, .panel { break-inside: avoid; } }
`;
