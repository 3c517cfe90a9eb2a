// A small RFC 4180 reader for predictions.csv (file names may hold commas, quotes, newlines).
import { StageError } from '../../runner/types.js';

/** RFC 4180: quoted fields may hold commas, quotes ("") and newlines. */
export function parseCsv(body: string, name: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = body.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (; i < body.length; i++) {
    const c = body[i]!;
    if (quoted) {
      if (c === '"') {
        if (body[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && body[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (quoted) throw new StageError(`${name}: ends inside a quoted field`);
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
