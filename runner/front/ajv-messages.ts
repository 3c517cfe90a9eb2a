// ajv's errors, made into one helpful message per problem: "unknown parameter 'x'", "must be
// one of: a, b", and a oneOf reduced to "must be a string or a list of strings" instead of
// every branch's complaint.
import type { ErrorObject } from 'ajv';

export interface ParamProblem {
  /** Path below `with` ("sample.train"), '' for `with` itself. */
  readonly path: string;
  readonly message: string;
  /** Point at the key rather than the value (unknown keys). */
  readonly atKey: boolean;
}

function pathOf(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

function describeSchema(schema: Record<string, unknown>): string {
  if (Array.isArray(schema.enum)) return `one of ${(schema.enum as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  if ('const' in schema) return JSON.stringify(schema.const);
  const t = schema.type;
  switch (t) {
    case 'array':
      return schema.items ? `a list of ${plural(describeSchema(schema.items as Record<string, unknown>))}` : 'a list';
    case 'object':
      return 'a mapping';
    case 'integer':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    default:
      return 'a value of another shape';
  }
}

function plural(text: string): string {
  return text.replace(/^an? (\w+)/, '$1s');
}

export function toProblems(errors: readonly ErrorObject[]): ParamProblem[] {
  const out: ParamProblem[] = [];
  const collapsed = new Set<string>(); // instancePaths handled by a oneOf/anyOf summary
  for (const e of errors) {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
      const branches = (e.parentSchema?.[e.keyword] as Record<string, unknown>[] | undefined) ?? [];
      out.push({ path: pathOf(e.instancePath), message: `must be ${branches.map(describeSchema).join(' or ')}`, atKey: false });
      collapsed.add(e.instancePath);
    }
  }
  const underCollapsed = (p: string): boolean => [...collapsed].some((c) => p === c || p.startsWith(`${c}/`));
  for (const e of errors) {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
    if (underCollapsed(e.instancePath) && /\/(oneOf|anyOf)\//.test(e.schemaPath)) continue;
    const path = pathOf(e.instancePath);
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties': {
        const name = String(params.additionalProperty);
        const known = Object.keys((e.parentSchema?.properties as Record<string, unknown> | undefined) ?? {});
        const hint = known.length ? ` (known: ${known.join(', ')})` : '';
        out.push({ path: path ? `${path}.${name}` : name, message: `unknown parameter '${name}'${hint}`, atKey: true });
        break;
      }
      case 'required':
        out.push({ path, message: `missing required parameter '${String(params.missingProperty)}'`, atKey: false });
        break;
      case 'enum':
        out.push({ path, message: `must be one of: ${((params.allowedValues as unknown[]) ?? []).map((v) => JSON.stringify(v)).join(', ')}`, atKey: false });
        break;
      case 'type':
        out.push({ path, message: `must be ${describeSchema({ type: params.type })}`, atKey: false });
        break;
      default:
        out.push({ path, message: e.message ?? `fails ${e.keyword}`, atKey: false });
    }
  }
  // ajv may report the same problem twice through different schema paths.
  const seen = new Set<string>();
  return out.filter((p) => {
    const k = `${p.path}\u0000${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
