// YAML text -> plain JS value + source positions, with syntax errors, duplicate keys and alias
// bombs turned into located diagnostics.
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Node } from 'yaml';
import type { Diagnostic, SourcePos } from '../pipeline.js';
import { collectPositions, joinPath, type NodePositions } from './positions.js';

export interface Parsed {
  readonly value: unknown;
  readonly positions: NodePositions;
}

const MAX_ALIASES = 100;

export function parseYaml(source: string, file: string): { ok: true; value: Parsed } | { ok: false; errors: Diagnostic[] } {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  const at = (offset: number): SourcePos => {
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const errors: Diagnostic[] = [];
  for (const e of doc.errors) {
    const pos = at(e.pos[0]);
    if (e.code === 'DUPLICATE_KEY') {
      const name = source.slice(e.pos[0], e.pos[1]).trim() || 'key';
      errors.push({ file, pos, path: duplicatePath(doc.contents, name, e.pos[0]), message: `duplicate key '${name}'` });
    } else {
      errors.push({ file, pos, path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` });
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    return { ok: false, errors: [{ file, pos: { line: 1, col: 1 }, path: '', message: `YAML aliases expand too much (${(e as Error).message}); refusing (alias bomb?)` }] };
  }
  return { ok: true, value: { value, positions: collectPositions(doc.contents as Node | null, lines) } };
}

/** The JSON path of a duplicated key, found by its offset. */
function duplicatePath(root: unknown, name: string, offset: number): string {
  let found = name;
  const walk = (node: unknown, path: string): void => {
    if (!isMap(node)) return;
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const k = isScalar(item.key) ? String(item.key.value) : '';
      const childPath = joinPath(path, k);
      const range = (item.key as Node | null)?.range;
      if (range && range[0] === offset) found = childPath;
      walk(item.value, childPath);
    }
  };
  walk(root, '');
  return found;
}
