// Escaping for the report's HTML and SVG. Everything in the report that came from a file (file
// names, class names, params, host names) is untrusted text; the `html` tag escapes every
// interpolated value unless it is already markup, so forgetting to escape takes effort.

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escape text for use in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** Markup that is already safe: produced by `html` or `raw`. */
export class Markup {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** Values an `html` template accepts: text is escaped, markup is kept, lists are concatenated. */
export type Interpolation = Markup | string | number | boolean | null | undefined | readonly Interpolation[];

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Markup) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** Tagged template: `html\`<td>${name}</td>\`` escapes `name`. */
export function html(strings: TemplateStringsArray, ...values: readonly Interpolation[]): Markup {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Markup(out);
}

/** Trusted markup written by this module (CSS, pre-built SVG). Never pass input data here. */
export function raw(value: string): Markup {
  return new Markup(value);
}

/** Join markup pieces with a separator that is itself markup. */
export function join(parts: readonly Interpolation[], separator: Markup | string = ''): Markup {
  return new Markup(parts.map(render).join(render(separator)));
}

/** Numbers for SVG coordinates: short, no exponent, no "-0". */
export function num(x: number, digits = 1): string {
  let s = x.toFixed(digits);
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s === '-0' ? '0' : s;
}
