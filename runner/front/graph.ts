// The stage graph, pure and on plain data: dependencies from inputs, needs and runs_on;
// topological order with ties broken by file order; cycles found and printed; selections.
import type { Diagnostic, Result, SourcePos, StageSpec } from '../pipeline.js';

export interface Graph {
  /** Topological; among stages ready at the same time, file order. */
  readonly order: readonly string[];
  readonly deps: ReadonlyMap<string, readonly string[]>;
  readonly dependents: ReadonlyMap<string, readonly string[]>;
}

export interface Selection {
  readonly only?: readonly string[];
  readonly from?: string;
  readonly until?: string;
}

export function depsOf(spec: StageSpec): string[] {
  const out = [...Object.values(spec.inputs), ...spec.needs];
  if (spec.runsOn) out.push(spec.runsOn);
  return [...new Set(out)];
}

/** Every cycle-forming edge path, as stage ids `a -> b -> ... -> a`, or undefined. */
export function findCycle(ids: readonly string[], deps: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 1 | 2>(); // 1 visiting, 2 done
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    state.set(id, 1);
    stack.push(id);
    for (const d of deps.get(id) ?? []) {
      if (!deps.has(d)) continue;
      const s = state.get(d);
      if (s === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (s === undefined) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(id, 2);
    return undefined;
  };
  for (const id of ids) {
    if (state.has(id)) continue;
    const c = visit(id);
    if (c) return c.reverse(); // dependency direction: upstream -> downstream
  }
  return undefined;
}

export function buildGraph(
  stages: ReadonlyMap<string, StageSpec>,
  locate?: { file: string; positionOf(path: string): SourcePos | undefined },
): Result<Graph> {
  const ids = [...stages.keys()];
  const deps = new Map<string, string[]>();
  const dependents = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [id, spec] of stages) {
    const ds = depsOf(spec).filter((d) => stages.has(d));
    deps.set(id, ds);
    for (const d of ds) dependents.get(d)!.push(id);
  }
  const cycle = findCycle(ids, deps);
  if (cycle) {
    const file = locate?.file ?? '';
    const edgePath = (from: string, to: string): string => {
      const spec = stages.get(to)!;
      const port = Object.entries(spec.inputs).find(([, up]) => up === from)?.[0];
      if (port) return `stages.${to}.inputs.${port}`;
      if (spec.runsOn === from) return `stages.${to}.runs_on`;
      const i = spec.needs.indexOf(from);
      return `stages.${to}.needs[${i}]`;
    };
    const related = cycle.slice(0, -1).map((from, i) => {
      const to = cycle[i + 1]!;
      const path = edgePath(from, to);
      const pos = locate?.positionOf(path);
      return { path, message: `${to} depends on ${from}`, ...(pos ? { pos } : {}) };
    });
    const first = related[0];
    const diag: Diagnostic = {
      file,
      path: first?.path ?? 'stages',
      message: `cycle: ${cycle.join(' -> ')}`,
      related,
      ...(first?.pos ? { pos: first.pos } : {}),
    };
    return { ok: false, errors: [diag] };
  }
  // Kahn's algorithm, always taking the ready stage that comes first in the file.
  const indegree = new Map(ids.map((id) => [id, deps.get(id)!.length]));
  const order: string[] = [];
  const ready = ids.filter((id) => indegree.get(id) === 0);
  while (ready.length > 0) {
    ready.sort((a, b) => ids.indexOf(a) - ids.indexOf(b));
    const id = ready.shift()!;
    order.push(id);
    for (const dn of dependents.get(id)!) {
      const n = indegree.get(dn)! - 1;
      indegree.set(dn, n);
      if (n === 0) ready.push(dn);
    }
  }
  return { ok: true, value: { order, deps, dependents } };
}

function closure(start: string, edges: ReadonlyMap<string, readonly string[]>): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    const id = todo.pop()!;
    for (const n of edges.get(id) ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        todo.push(n);
      }
    }
  }
  return seen;
}

/** Transitive upstream of a stage, in topological order. */
export function upstreamOf(graph: Graph, id: string): string[] {
  const up = closure(id, graph.deps);
  return graph.order.filter((s) => up.has(s));
}

export function downstreamOf(graph: Graph, id: string): string[] {
  const down = closure(id, graph.dependents);
  return graph.order.filter((s) => down.has(s));
}

/**
 * The stages a run selects, in topological order: --only exactly those; --from a stage and
 * everything downstream; --until a stage and everything upstream; both: the intersection.
 */
export function selectStages(graph: Graph, sel: Selection): string[] {
  if (sel.only && sel.only.length > 0) {
    const only = new Set(sel.only);
    return graph.order.filter((s) => only.has(s));
  }
  let chosen = new Set(graph.order);
  if (sel.from) {
    const down = new Set([sel.from, ...downstreamOf(graph, sel.from)]);
    chosen = new Set([...chosen].filter((s) => down.has(s)));
  }
  if (sel.until) {
    const up = new Set([sel.until, ...upstreamOf(graph, sel.until)]);
    chosen = new Set([...chosen].filter((s) => up.has(s)));
  }
  return graph.order.filter((s) => chosen.has(s));
}
