// `node dist/bench/import-graph.js [root]`: the import graph between the source folders, as
// JSON: how many imports cross from one part to another (runner core, runner/commands,
// runner/hosts, runner/remote, stages, ...) and the import cycles between files. Static
// imports and re-exports count; `import type` and dynamic `import()` are listed apart. Cycles
// three ways: `cycles_static` (load order), `cycles_with_types` (also through `import type`: no
// load-order effect, but two files that need each other's types are one module in two files;
// lint's import-x/no-cycle misses them) and `cycles_any_import` (also through `import()`).
// Used for the architecture note (docs/architecture.md).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TOP = ['runner', 'stages'];

/** The part a file belongs to: its top folder, plus the subfolder for runner's and stages/vision. */
export function partOf(rel: string): string {
  const segs = rel.split('/');
  if (segs.length <= 2) return segs[0]!;
  return `${segs[0]}/${segs[1]}`;
}

async function listTs(root: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listTs(root, rel)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

interface Edge {
  from: string;
  to: string;
  kind: 'static' | 'type' | 'dynamic';
}

const STATIC = /^\s*(import|export)\s+(type\s+)?[^'";]*?\bfrom\s+['"]([^'"]+)['"]/gm;
const BARE = /^\s*import\s+['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function resolveSpec(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.js$/, '.ts');
}

export async function importGraph(root: string): Promise<Record<string, unknown>> {
  const files = (await Promise.all(TOP.map((d) => listTs(root, d)))).flat();
  const known = new Set(files);
  const edges: Edge[] = [];
  for (const f of files) {
    const src = await readFile(path.join(root, f), 'utf8');
    const add = (spec: string, kind: Edge['kind']): void => {
      const to = resolveSpec(f, spec);
      if (to && known.has(to)) edges.push({ from: f, to, kind });
    };
    for (const m of src.matchAll(STATIC)) add(m[3]!, m[2] ? 'type' : 'static');
    for (const m of src.matchAll(BARE)) add(m[1]!, 'static');
    for (const m of src.matchAll(DYNAMIC)) add(m[1]!, 'dynamic');
  }
  const cross: Record<string, number> = {};
  for (const e of edges) {
    const a = partOf(e.from);
    const b = partOf(e.to);
    if (a === b) continue;
    const k = `${a} -> ${b}${e.kind === 'static' ? '' : ` (${e.kind})`}`;
    cross[k] = (cross[k] ?? 0) + 1;
  }
  const top: Record<string, number> = {};
  for (const e of edges) {
    const a = e.from.split('/')[0]!;
    const b = e.to.split('/')[0]!;
    const k = `${a} -> ${b}${e.kind === 'static' ? '' : ` (${e.kind})`}`;
    if (a !== b) top[k] = (top[k] ?? 0) + 1;
  }
  // The wall: a stage may import only the runner's public modules; the runner may import the
  // built-in list only where the CLI and the generators need it.
  const PUBLIC = new Set(['runner/types.ts', 'runner/stage-api.ts']);
  const breaches = edges.filter(
    (e) => (e.from.startsWith('stages/') && e.to.startsWith('runner/') && !PUBLIC.has(e.to)) || (e.from.startsWith('runner/') && e.to.startsWith('stages/')),
  );
  const cycles = stronglyConnected(
    files,
    edges.filter((e) => e.kind === 'static'),
  );
  const typeCycles = stronglyConnected(
    files,
    edges.filter((e) => e.kind !== 'dynamic'),
  );
  const anyCycles = stronglyConnected(files, edges);
  return {
    files: files.length,
    imports: edges.length,
    top_folders: Object.fromEntries(Object.entries(top).sort(([a], [b]) => a.localeCompare(b))),
    wall_crossings: breaches.length,
    wall_crossing_list: breaches.map((e) => `${e.from} -> ${e.to}${e.kind === 'static' ? '' : ` (${e.kind})`}`),
    cycles_with_types: typeCycles.length,
    cycle_members_with_types: typeCycles,
    cycles_any_import: anyCycles.length,
    cycle_members_any_import: anyCycles,
    cross_part: Object.fromEntries(Object.entries(cross).sort(([a], [b]) => a.localeCompare(b))),
    cross_part_total: Object.values(cross).reduce((s, n) => s + n, 0),
    cycles_static: cycles.length,
    cycle_members: cycles,
  };
}

/** Tarjan's strongly connected components of size > 1 (each one is at least one import cycle). */
function stronglyConnected(nodes: string[], edges: Edge[]): string[][] {
  const next = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of edges) next.get(e.from)!.push(e.to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let i = 0;
  const visit = (v: string): void => {
    index.set(v, i);
    low.set(v, i++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = process.argv[2] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  console.log(JSON.stringify(await importGraph(root), null, 2));
}
