// `${params.x}` references in stage params. A reference that is the whole scalar keeps the
// param's type (an integer stays an integer); one embedded in text is stringified; `$${`
// writes a literal `${`.
export interface Unresolved {
  readonly path: string;
  readonly reference: string;
  readonly message: string;
}

const REF = /\$\$\{|\$\{([^}]*)\}/g;

function lookup(params: Record<string, unknown>, ref: string): { ok: true; value: unknown } | { ok: false; message: string } {
  const parts = ref.trim().split('.');
  if (parts[0] !== 'params' || parts.length < 2) return { ok: false, message: `unknown reference \${${ref}} (only \${params.<name>} is supported)` };
  let value: unknown = params;
  for (const part of parts.slice(1)) {
    if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, part)) {
      return { ok: false, message: `unresolved reference \${${ref}}: no pipeline param ${parts.slice(1).join('.')}` };
    }
    value = (value as Record<string, unknown>)[part];
  }
  return { ok: true, value };
}

/** Says whether the schema wants a string at a path (then a whole reference is stringified). */
export type WantsString = (path: string) => boolean;

function substituteString(text: string, params: Record<string, unknown>, path: string, errors: Unresolved[], wantsString?: WantsString): unknown {
  const whole = /^\$\{([^}]*)\}$/.exec(text);
  if (whole) {
    const r = lookup(params, whole[1]!);
    if (r.ok) return wantsString?.(path) && (typeof r.value === 'number' || typeof r.value === 'boolean') ? String(r.value) : r.value;
    errors.push({ path, reference: whole[0], message: r.message });
    return text;
  }
  if (!text.includes('${')) return text;
  return text.replace(REF, (match, ref: string | undefined) => {
    if (match === '$${') return '${';
    const r = lookup(params, ref ?? '');
    if (!r.ok) {
      errors.push({ path, reference: match, message: r.message });
      return match;
    }
    return typeof r.value === 'string' ? r.value : JSON.stringify(r.value);
  });
}

/** A copy of `value` with every reference substituted; problems are appended to `errors`. */
export function interpolate(value: unknown, params: Record<string, unknown>, path: string, errors: Unresolved[], wantsString?: WantsString, depth = 0): unknown {
  if (depth > 64) return value;
  if (typeof value === 'string') return substituteString(value, params, path, errors, wantsString);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, params, `${path}[${i}]`, errors, wantsString, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, params, path ? `${path}.${k}` : k, errors, wantsString, depth + 1);
    return out;
  }
  return value;
}

type Schema = Record<string, unknown>;

/** The schemas that may apply at a path below a params schema ("sample.train", "run[1]"). */
function schemasAt(schema: Schema | undefined, segments: readonly string[]): Schema[] {
  if (!schema) return [];
  const branches = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (branches) return branches.flatMap((b) => schemasAt(b, segments));
  if (segments.length === 0) return [schema];
  const [head, ...rest] = segments;
  if (/^\d+$/.test(head!)) return schemasAt(schema.items as Schema | undefined, rest);
  const props = schema.properties as Record<string, Schema> | undefined;
  const next = props?.[head!] ?? (typeof schema.additionalProperties === 'object' ? (schema.additionalProperties as Schema) : undefined);
  return schemasAt(next, rest);
}

/** A WantsString for a stage's params schema; paths are "stages.<id>.with...." */
export function stringPathsOf(schema: Schema, prefix: string): WantsString {
  return (path) => {
    if (!path.startsWith(prefix)) return false;
    const segments = path.slice(prefix.length).replace(/\[(\d+)\]/g, '.$1').split('.').filter(Boolean);
    const candidates = schemasAt(schema, segments).filter((s) => s.type !== 'array' && s.type !== 'object');
    return candidates.length > 0 && candidates.every((s) => s.type === 'string');
  };
}
