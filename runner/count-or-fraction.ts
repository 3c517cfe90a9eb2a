// A param that takes a count or a fraction (split's `valid: 2000` or `valid: 0.2`) cannot tell
// `1.0` from `1` once YAML has made a number of it: both are the count 1, one image, while the
// writer of `1.0` most likely meant "all of them". Such a value is refused where it is written.
import type { JsonSchema } from './types.js';

interface Branch {
  type?: unknown;
  maximum?: unknown;
  exclusiveMaximum?: unknown;
}

/** Whether a property's schema takes both an integer count and a fraction below 1. */
export function isCountOrFraction(schema: unknown): boolean {
  const oneOf = (schema as { oneOf?: Branch[] } | undefined)?.oneOf;
  if (!Array.isArray(oneOf)) return false;
  const count = oneOf.some((b) => b.type === 'integer');
  const fraction = oneOf.some((b) => b.type === 'number' && (b.exclusiveMaximum === 1 || b.maximum === 1));
  return count && fraction;
}

export interface AmbiguousCount {
  readonly key: string;
  readonly message: string;
}

/**
 * The top-level params of `schema` that take a count or a fraction and were written as a whole
 * number with a decimal point or an exponent (`1.0`, `2.`, `1e0`); `written(key)` gives the
 * text as it appears in the pipeline file (undefined when it came from elsewhere).
 */
export function ambiguousCounts(schema: JsonSchema, values: Record<string, unknown>, written: (key: string) => string | undefined): AmbiguousCount[] {
  const props = (schema['properties'] ?? {}) as Record<string, unknown>;
  const out: AmbiguousCount[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (typeof value !== 'number' || !Number.isInteger(value) || !isCountOrFraction(props[key])) continue;
    const text = written(key);
    if (text === undefined || !/^[+]?\d*\.?\d*(?:[eE][+-]?\d+)?$/.test(text) || !/[.eE]/.test(text)) continue;
    const fraction = value === 1 ? 'the fraction 1.0 (all images)' : `a fraction (${text} is not below 1)`;
    out.push({
      key,
      message: `${key}: ${text} reads as the count ${value} (${value === 1 ? 'one image' : `${value} images`}) or as ${fraction}: a count is written without a decimal point (${value}), a fraction is below 1 (e.g. 0.2)`,
    });
  }
  return out;
}
