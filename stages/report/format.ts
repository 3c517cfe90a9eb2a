// Number, date and value formatting shared by the HTML and Markdown renderers.

export function percent(x: number, digits = 1): string {
  return `${(x * 100).toFixed(digits)}%`;
}

export function fixed(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? '–' : x.toFixed(digits);
}

export function integer(n: number): string {
  return n.toLocaleString('en-US');
}

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const min = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h > 0 ? `${h} h ${String(min).padStart(2, '0')} min` : `${min} min ${String(sec).padStart(2, '0')} s`;
}

/** "2026-11-28 14:03:07 UTC"; the input as it is when it is not a date. */
export function date(iso: string | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A param or info value on one line: strings as they are, everything else as JSON. */
export function value(v: unknown, max = 200): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (v === undefined) s = '';
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = String(v);
    }
  }
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Last part of a '/'-separated artifact path (a backslash is part of a POSIX file name). */
export function basename(file: string): string {
  const parts = file.split('/');
  return parts[parts.length - 1] || file;
}
