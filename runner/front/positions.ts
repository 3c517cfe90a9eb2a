// Source positions of every node of a YAML document, by JSON path ("stages.split.with.valid",
// arrays as "files[0]"), so any later pass can point at the exact line and column.
import { isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import type { SourcePos } from '../pipeline.js';

export interface NodePositions {
  /** Where the value starts. */
  readonly value: Map<string, SourcePos>;
  /** Where the key of a mapping entry starts (for "unknown key" errors). */
  readonly key: Map<string, SourcePos>;
}

export function joinPath(parent: string, segment: string | number): string {
  if (typeof segment === 'number') return `${parent}[${segment}]`;
  return parent ? `${parent}.${segment}` : segment;
}

export function collectPositions(root: Node | null | undefined, lines: LineCounter): NodePositions {
  const value = new Map<string, SourcePos>();
  const key = new Map<string, SourcePos>();
  const at = (offset: number | undefined): SourcePos | undefined => {
    if (offset === undefined) return undefined;
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const seen = new Set<Node>();
  const walk = (node: unknown, path: string, depth: number): void => {
    if (!node || typeof node !== 'object' || depth > 64) return;
    const n = node as Node;
    if (seen.has(n)) return; // aliases: record the anchor's positions once
    seen.add(n);
    const pos = at(n.range?.[0]);
    if (pos && !value.has(path)) value.set(path, pos);
    if (isMap(n)) {
      for (const item of n.items) {
        if (!isPair(item)) continue;
        const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
        const childPath = joinPath(path, k);
        const kp = at((item.key as Node | null)?.range?.[0]);
        if (kp && !key.has(childPath)) key.set(childPath, kp);
        if (item.value) walk(item.value, childPath, depth + 1);
        else if (kp && !value.has(childPath)) value.set(childPath, kp);
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, i) => walk(item, joinPath(path, i), depth + 1));
    }
  };
  walk(root, '', 0);
  return { value, key };
}

/** The position of a path, or of its nearest ancestor that has one. */
export function nearest(positions: NodePositions, path: string, preferKey = false): SourcePos | undefined {
  let p = path;
  for (;;) {
    const hit = preferKey ? (positions.key.get(p) ?? positions.value.get(p)) : (positions.value.get(p) ?? positions.key.get(p));
    if (hit) return hit;
    if (!p) return undefined;
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    p = cut > 0 ? p.slice(0, cut) : '';
  }
}
