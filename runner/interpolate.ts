// `${params.x}` references in stage params. A reference that is the whole scalar keeps the
// param's type (an integer stays an integer, a list stays a list); one embedded in text is
// stringified; `$${` writes a literal `${`. Only `params.` references exist: anything else
// (a shell's `${HOME}`) is reported with the escape to use, rather than silently kept.

export interface Reference {
  /** JSON path of the scalar that holds the reference ("stages.a.with.seed"). */
  readonly path: string;
  /** The param path referenced ("seed", "sample.train"). */
  readonly param: string;
  /** True when the reference is the whole scalar (its value keeps the param's type). */
  readonly whole: boolean;
}

export interface InterpolationProblem {
  readonly path: string;
  readonly message: string;
  /** The text of the reference inside the scalar (to point at it, not at the scalar). */
  readonly reference: string;
}

export interface Interpolated {
  readonly value: unknown;
  readonly references: readonly Reference[];
  readonly problems: readonly InterpolationProblem[];
}

const MAX_DEPTH = 100;
const TOKEN = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
const WHOLE = /^\$\{\s*([^}]*?)\s*\}$/;

type Lookup = { ok: true; value: unknown } | { ok: false; message: string };

function lookup(params: Readonly<Record<string, unknown>>, ref: string): Lookup {
  const text = ref.trim();
  const parts = text.split('.');
  if (parts[0] !== 'params' || parts.length < 2 || parts.some((p) => p === '')) {
    return { ok: false, message: `unknown reference \${${text}}: only \${params.<name>} is supported (write $\${${text}} for a literal \${)` };
  }
  let value: unknown = params;
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.prototype.hasOwnProperty.call(value, part)) {
      const known = i === 1 ? Object.keys(params) : [];
      const hint = known.length > 0 ? ` (params: ${known.slice(0, 12).join(', ')}${known.length > 12 ? ', ...' : ''})` : '';
      return { ok: false, message: `unresolved reference \${${text}}: no pipeline param ${parts.slice(1).join('.')}${hint}` };
    }
    value = (value as Record<string, unknown>)[part];
  }
  return { ok: true, value };
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null || value === undefined) return '';
  return JSON.stringify(value);
}

/** Assigns without ever touching a prototype (`__proto__` is just a key here). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function copy(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v) => copy(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) setOwn(out, k, copy(v, depth + 1));
  return out;
}

/** A copy of `value` with every reference substituted, the references found, and problems. */
export function interpolate(value: unknown, params: Readonly<Record<string, unknown>>, basePath: string): Interpolated {
  const references: Reference[] = [];
  const problems: InterpolationProblem[] = [];

  const inString = (text: string, path: string): unknown => {
    if (!text.includes('${')) return text;
    const whole = WHOLE.exec(text);
    if (whole && !text.startsWith('$${')) {
      const r = lookup(params, whole[1]!);
      if (!r.ok) {
        problems.push({ path, message: r.message, reference: text });
        return text;
      }
      references.push({ path, param: whole[1]!.trim().slice('params.'.length), whole: true });
      return copy(r.value);
    }
    return text.replace(TOKEN, (match: string, ref: string | undefined) => {
      if (match === '$${') return '${';
      if (ref === undefined) {
        problems.push({ path, message: `unterminated \${ (write $\${ for a literal \${)`, reference: match });
        return match;
      }
      const r = lookup(params, ref);
      if (!r.ok) {
        problems.push({ path, message: r.message, reference: match });
        return match;
      }
      references.push({ path, param: ref.trim().slice('params.'.length), whole: false });
      return stringify(r.value);
    });
  };

  const walk = (v: unknown, path: string, depth: number): unknown => {
    if (depth > MAX_DEPTH) return v;
    if (typeof v === 'string') return inString(v, path);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}[${i}]`, depth + 1));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) setOwn(out, k, walk(item, path ? `${path}.${k}` : k, depth + 1));
      return out;
    }
    return v;
  };

  return { value: walk(value, basePath, 0), references, problems };
}
