// YAML text -> plain value + the source position of every node, by JSON path
// ("stages.split.with.valid", lists as "needs[0]"). Syntax errors, duplicate keys, unresolved
// aliases, alias bombs and numbers JSON cannot hold become located diagnostics, never throws.
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';
import type { Diagnostic, SourcePos } from './pipeline.js';
import { show } from './diagnostics.js';

export interface NodePos {
  /** Where the key of a mapping entry starts (for "unknown key" and "missing" errors). */
  readonly key?: SourcePos;
  /** Where the value starts (the key, when the value is empty). */
  readonly value?: SourcePos;
}

export type Positions = ReadonlyMap<string, NodePos>;

export interface ParsedYaml {
  readonly value: unknown;
  readonly positions: Positions;
  readonly errors: readonly Diagnostic[];
  /** The value cannot be trusted (syntax errors): validate no further. */
  readonly fatal: boolean;
}

const MAX_ALIASES = 1000;
const MAX_DEPTH = 100;

export function joinPath(parent: string, segment: string | number): string {
  if (typeof segment === 'number') return `${parent}[${segment}]`;
  return parent ? `${parent}.${segment}` : segment;
}

/** The parent of a JSON path ("a.b[0]" -> "a.b", "a" -> ""). */
export function parentPath(p: string): string {
  const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
  return cut > 0 ? p.slice(0, cut) : '';
}

/** The position of a path, or of its nearest ancestor that has one. */
export function positionIn(positions: Positions, p: string, at: 'key' | 'value' = 'value'): SourcePos | undefined {
  let cur = p;
  for (;;) {
    const n = positions.get(cur);
    const hit = at === 'key' ? (n?.key ?? n?.value) : (n?.value ?? n?.key);
    if (hit) return hit;
    if (!cur) return undefined;
    cur = parentPath(cur);
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/\s+at line \d+, column \d+:?$/, '');
}

/**
 * The alias nodes that have an anchor before them, found in one pass. `Alias.resolve` walks the
 * document from its start for each alias it is asked about: a file of a few thousand aliases
 * (or a few dozen beside deep nesting) took seconds. The pass is the same pre-order walk, so an
 * alias counts as resolvable exactly where `resolve` would find its anchor.
 */
function resolvableAliases(doc: Document.Parsed): ReadonlySet<unknown> | null {
  const anchors = new Set<string>();
  const found = new Set<unknown>();
  try {
    visit(doc, {
      Node: (_key, node) => {
        if (isAlias(node)) {
          if (anchors.has(node.source)) found.add(node);
        } else if (node.anchor) anchors.add(node.anchor);
      },
    });
  } catch {
    return null; // too deep for the stack
  }
  return found;
}

export function parseYaml(source: string, file: string): ParsedYaml {
  const lines = new LineCounter();
  const at = (offset: number | undefined): SourcePos | undefined => {
    if (offset === undefined) return undefined;
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const errors: Diagnostic[] = [];
  const positions = new Map<string, NodePos>();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(source, { lineCounter: lines, uniqueKeys: false, prettyErrors: false, strict: true, merge: true, logLevel: 'error' });
  } catch (e) {
    return {
      value: undefined,
      positions,
      errors: [{ file, pos: { line: 1, col: 1 }, path: '', message: `cannot parse YAML: ${firstLine(String((e as Error).message))}` }],
      fatal: true,
    };
  }
  for (const e of doc.errors) {
    const message =
      e.code === 'MULTIPLE_DOCS'
        ? "a pipeline file holds one YAML document: remove this '---' and what follows, or merge it"
        : /Maximum call stack/.test(e.message)
          ? 'nested too deeply to read'
          : `YAML syntax error: ${firstLine(e.message)}`;
    errors.push({ file, path: '', message, ...(at(e.pos[0]) ? { pos: at(e.pos[0])! } : {}) });
  }
  if (errors.length > 0) return { value: undefined, positions, errors, fatal: true };

  let fatal = false;
  let resolvable: ReadonlySet<unknown> | null | undefined;
  const set = (p: string, key: SourcePos | undefined, value: SourcePos | undefined): void => {
    if (positions.has(p)) return; // a duplicate key: keep the first
    positions.set(p, { ...(key ? { key } : {}), ...(value ? { value } : {}) });
  };
  const walk = (node: unknown, p: string, depth: number): void => {
    if (!node || typeof node !== 'object') return;
    if (depth > MAX_DEPTH) {
      errors.push({
        file,
        path: p.length > 60 ? `${p.slice(0, 60)}...` : p,
        message: `nested more than ${MAX_DEPTH} levels deep`,
        ...(at((node as Node).range?.[0]) ? { pos: at((node as Node).range?.[0])! } : {}),
      });
      fatal = true;
      return;
    }
    if (isAlias(node)) {
      if (resolvable === undefined) resolvable = resolvableAliases(doc);
      if (resolvable === null) {
        if (!fatal) errors.push({ file, path: '', message: 'nested too deeply to read', pos: { line: 1, col: 1 } });
        fatal = true;
      } else if (!resolvable.has(node)) {
        errors.push({
          file,
          path: p,
          message: `unknown alias '*${node.source}': no anchor '&${node.source}' before it`,
          ...(at(node.range?.[0]) ? { pos: at(node.range?.[0])! } : {}),
        });
        fatal = true;
      }
      return; // positions below an alias are those of its use site (the nearest ancestor)
    }
    if (isScalar(node)) {
      const v = node.value;
      const pos = at(node.range?.[0]);
      const text = node.range ? source.slice(node.range[0], node.range[1]) : String(v);
      if (typeof v === 'number' && !Number.isFinite(v)) {
        errors.push({ file, path: p, message: `number ${show(text)} is out of range (quote it if it is text)`, ...(pos ? { pos } : {}) });
      } else if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && !/[.eE]/.test(text)) {
        errors.push({ file, path: p, message: `integer ${text} is too large to be represented exactly (quote it if it is text)`, ...(pos ? { pos } : {}) });
      }
      return;
    }
    if (isMap(node)) {
      const seen = new Map<string, SourcePos | undefined>();
      for (const item of node.items) {
        if (!isPair(item)) continue;
        const keyNode = item.key as Node | null;
        const keyPos = at(keyNode?.range?.[0]) ?? at((item.value as Node | null)?.range?.[0]);
        if (keyNode && !isScalar(keyNode)) {
          errors.push({ file, path: p, message: 'a key must be a plain name, not a list or mapping', ...(keyPos ? { pos: keyPos } : {}) });
          fatal = true; // JavaScript would make "[a, b]" of it: nothing after this is reliable
          continue;
        }
        const raw = keyNode ? keyNode.value : null;
        const name = raw === null || raw === undefined ? '' : String(raw);
        if (name === '<<' && keyNode && isScalar(keyNode) && keyNode.source === '<<') {
          walk(item.value, p, depth + 1); // a merge key: `<<: *defaults`
          continue;
        }
        const childPath = joinPath(p, name);
        if (name === '' || name === '__proto__') {
          errors.push({ file, path: childPath, message: name === '' ? 'empty key' : `reserved key '${name}'`, ...(keyPos ? { pos: keyPos } : {}) });
        }
        if (seen.has(name)) {
          const first = seen.get(name);
          errors.push({
            file,
            path: childPath,
            message: `duplicate key '${name}'`,
            ...(keyPos ? { pos: keyPos } : {}),
            related: [{ path: childPath, message: 'first defined here', ...(first ? { pos: first } : {}) }],
          });
        } else {
          seen.set(name, keyPos);
        }
        const valueNode = item.value as Node | null;
        const range = valueNode?.range;
        const emptyValue = !valueNode || (range !== undefined && range !== null && range[0] === range[1]);
        set(childPath, keyPos, emptyValue ? keyPos : at(range?.[0]));
        if (valueNode) walk(valueNode, childPath, depth + 1);
      }
      return;
    }
    if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const childPath = joinPath(p, i);
        const pos = at((item as Node | null)?.range?.[0]);
        set(childPath, undefined, pos);
        walk(item, childPath, depth + 1);
      });
    }
  };
  const root = doc.contents as Node | null;
  if (root) set('', undefined, at(root.range?.[0]));
  walk(root, '', 0);
  if (fatal) return { value: undefined, positions, errors, fatal };

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    const message = String((e as Error).message);
    const bomb = /alias/i.test(message);
    errors.push({
      file,
      pos: positionIn(positions, '') ?? { line: 1, col: 1 },
      path: '',
      message: bomb
        ? `YAML aliases expand too much (more than ${MAX_ALIASES} nodes): refusing a possible alias bomb`
        : `cannot read YAML: ${firstLine(message)}`,
    });
    return { value: undefined, positions, errors, fatal: true };
  }
  stripReserved(value, 0);
  return { value, positions, errors, fatal: false };
}

/** Drops `__proto__` keys (already reported) so no later pass can trip over them. */
function stripReserved(value: unknown, depth: number): void {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return;
  if (Object.prototype.hasOwnProperty.call(value, '__proto__')) delete (value as Record<string, unknown>)['__proto__'];
  for (const v of Object.values(value)) stripReserved(v, depth + 1);
}
