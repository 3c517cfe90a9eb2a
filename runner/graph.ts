// The stage graph, pure and on plain data (no fs): dependencies from inputs, needs and runs_on;
// topological order with ties broken by file order; every cycle found and printed with the
// places that make it; run selections (--only, --from, --until).
import type { Diagnostic, Result, SourcePos, StageSpec } from './pipeline.js';

export interface Graph {
  /** Topological; among stages ready at the same time, file order. */
  order: string[];
  /** Stage -> the stages it depends on (inputs, needs, runs_on), deduplicated. */
  deps: Map<string, string[]>;
  /** Stage -> the stages that depend on it, in file order. */
  dependents: Map<string, string[]>;
}

export interface Selection {
  only?: string[];
  from?: string;
  until?: string;
}

/** Where the graph's diagnostics point (the loader passes the pipeline's positions). */
export interface GraphLocator {
  readonly file: string;
  positionOf(path: string): SourcePos | undefined;
}

/** What a stage depends on, in the order written: inputs, then needs, then runs_on. */
export function depsOf(spec: Pick<StageSpec, 'inputs' | 'needs' | 'runsOn'>): string[] {
  const out = [...Object.values(spec.inputs), ...spec.needs];
  if (spec.runsOn !== undefined) out.push(spec.runsOn);
  return [...new Set(out)];
}

/** The JSON path of the edge that makes `to` depend on `from` (for pointing at it). */
export function edgePath(spec: StageSpec, from: string): string {
  const port = Object.entries(spec.inputs).find(([, up]) => up === from)?.[0];
  if (port !== undefined) return `stages.${spec.id}.inputs.${port}`;
  const i = spec.needs.indexOf(from);
  if (i >= 0) return `stages.${spec.id}.needs[${i}]`;
  return `stages.${spec.id}.runs_on`;
}

/** Strongly connected components with more than one stage or a self-loop (Tarjan, iterative). */
function cyclicComponents(ids: readonly string[], deps: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const root of ids) {
    if (index.has(root)) continue;
    const work: { id: string; i: number }[] = [{ id: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const ds = deps.get(frame.id) ?? [];
      if (frame.i < ds.length) {
        const d = ds[frame.i++]!;
        if (!index.has(d)) {
          index.set(d, next);
          low.set(d, next++);
          stack.push(d);
          onStack.add(d);
          work.push({ id: d, i: 0 });
        } else if (onStack.has(d)) {
          low.set(frame.id, Math.min(low.get(frame.id)!, index.get(d)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.id, Math.min(low.get(parent.id)!, low.get(frame.id)!));
      if (low.get(frame.id) === index.get(frame.id)) {
        const comp: string[] = [];
        let x: string;
        do {
          x = stack.pop()!;
          onStack.delete(x);
          comp.push(x);
        } while (x !== frame.id);
        if (comp.length > 1 || (deps.get(frame.id) ?? []).includes(frame.id)) out.push(comp);
      }
    }
  }
  return out;
}

/**
 * One cycle inside a strongly connected component, in data-flow order (`a -> b` means b
 * depends on a), starting at the component's first stage in file order: [a, b, c, a].
 */
function cycleIn(comp: ReadonlySet<string>, start: string, dependents: ReadonlyMap<string, readonly string[]>): string[] {
  // Breadth-first from start along dependents, staying inside the component: a shortest cycle.
  const prev = new Map<string, string>();
  const queue = [start];
  for (let qi = 0; qi < queue.length; qi++) {
    const id = queue[qi]!;
    for (const dn of dependents.get(id) ?? []) {
      if (!comp.has(dn)) continue;
      if (dn === start) {
        const path = [id];
        while (path[0] !== start) path.unshift(prev.get(path[0]!)!);
        return [...path, start];
      }
      if (!prev.has(dn)) {
        prev.set(dn, id);
        queue.push(dn);
      }
    }
  }
  return [start, start]; // unreachable for a real component
}

export function buildGraph(stages: ReadonlyMap<string, StageSpec>, locate?: GraphLocator): Result<Graph> {
  const ids = [...stages.keys()];
  const rank = new Map(ids.map((id, i) => [id, i]));
  const deps = new Map<string, string[]>();
  const dependents = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [id, spec] of stages) {
    const ds = depsOf(spec).filter((d) => stages.has(d));
    deps.set(id, ds);
  }
  // Dependents in file order, independent of the order edges were written in.
  for (const id of ids) for (const d of deps.get(id)!) dependents.get(d)!.push(id);

  const components = cyclicComponents(ids, deps);
  if (components.length > 0) {
    const errors: Diagnostic[] = components
      .map((comp) => {
        const set = new Set(comp);
        const start = ids.find((id) => set.has(id))!;
        return cycleIn(set, start, dependents);
      })
      .sort((a, b) => rank.get(a[0]!)! - rank.get(b[0]!)!)
      .map((cycle) => {
        const related = cycle.slice(0, -1).map((from, i) => {
          const to = cycle[i + 1]!;
          const path = edgePath(stages.get(to)!, from);
          const pos = locate?.positionOf(path);
          return { path, message: `${to} depends on ${from}`, ...(pos ? { pos } : {}) };
        });
        const first = related[0]!;
        return { file: locate?.file ?? '', path: first.path, message: `cycle: ${cycle.join(' -> ')}`, related, ...(first.pos ? { pos: first.pos } : {}) };
      });
    return { ok: false, errors };
  }

  // Kahn's algorithm, always taking the ready stage that comes first in the file.
  const indegree = new Map(ids.map((id) => [id, deps.get(id)!.length]));
  const ready = ids.filter((id) => indegree.get(id) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const id = ready.shift()!;
    order.push(id);
    for (const dn of dependents.get(id)!) {
      const n = indegree.get(dn)! - 1;
      indegree.set(dn, n);
      if (n === 0) {
        const r = rank.get(dn)!;
        let at = ready.findIndex((x) => rank.get(x)! > r);
        if (at < 0) at = ready.length;
        ready.splice(at, 0, dn);
      }
    }
  }
  return { ok: true, value: { order, deps, dependents } };
}

function closure(start: string, edges: ReadonlyMap<string, readonly string[]>): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    for (const n of edges.get(todo.pop()!) ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        todo.push(n);
      }
    }
  }
  return seen;
}

/** Everything a stage depends on, transitively, in topological order (without the stage). */
export function upstreamOf(graph: Graph, id: string): string[] {
  const up = closure(id, graph.deps);
  return graph.order.filter((s) => up.has(s));
}

/** Everything that depends on a stage, transitively, in topological order (without the stage). */
export function downstreamOf(graph: Graph, id: string): string[] {
  const down = closure(id, graph.dependents);
  return graph.order.filter((s) => down.has(s));
}

/**
 * The stages a run selects, in topological order. --only: exactly those; --from: it and
 * everything downstream; --until: it and everything upstream. Given together, the sets
 * intersect (--from a --until c: the stages on paths from a to c). Unknown names select
 * nothing: the CLI reports them before calling this.
 */
export function selectStages(graph: Graph, sel: Selection): string[] {
  const sets: Set<string>[] = [];
  if (sel.only && sel.only.length > 0) sets.push(new Set(sel.only));
  if (sel.from !== undefined) sets.push(new Set([sel.from, ...downstreamOf(graph, sel.from)]));
  if (sel.until !== undefined) sets.push(new Set([sel.until, ...upstreamOf(graph, sel.until)]));
  return graph.order.filter((s) => sets.every((set) => set.has(s)));
}
