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
      const dup = duplicateAt(doc.contents, e.pos[0], source);
      errors.push({ file, pos: dup.pos !== undefined ? at(dup.pos) : pos, path: dup.path, message: `duplicate key '${dup.name}'` });
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

/**
 * The duplicated key's name and path. yaml reports the error at the mapping or the pair; the
 * key we want is the second occurrence of a name inside the node at that offset.
 */
function duplicateAt(root: unknown, offset: number, source: string): { name: string; path: string; pos?: number } {
  let found: { name: string; path: string; pos?: number } | undefined;
  const walk = (node: unknown, path: string): void => {
    if (found || !isMap(node)) return;
    const seen = new Set<string>();
    const range = (node as Node).range;
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const k = isScalar(item.key) ? String(item.key.value) : '';
      const keyStart = (item.key as Node | null)?.range?.[0];
      if (seen.has(k) && range && offset >= range[0] && offset <= range[2]) {
        found = { name: k, path: joinPath(path, k), ...(keyStart !== undefined ? { pos: keyStart } : {}) };
        return;
      }
      seen.add(k);
    }
    for (const item of node.items) if (isPair(item)) walk(item.value, joinPath(path, isScalar(item.key) ? String(item.key.value) : ''));
  };
  walk(root, '');
  if (found) return found;
  const name = /^[^:\s]+/.exec(source.slice(offset))?.[0] ?? 'key';
  return { name, path: name };
}
