// Frozen outputs are per image: the frozen part's output for a photo depends only on the photo's
// bytes, the frozen layers and the preprocessing (the "family"), not on the set it sits in. A
// set's feature entry (features.ts) records each row's image sha256 and its family, so when
// another set is built (predict on a folder of new photos, a re-split dataset) the rows of
// photos any earlier set of the same family computed are copied, and only the others computed:
// photos the model has seen cost nothing, a folder with one new photo computes one.
import { createHash } from 'node:crypto';
import { open, readFile, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { cachedFileHash, mapLimit } from '../../runner/stage-api.js';

/** What a row depends on besides the image bytes. */
export interface FamilySpec {
  readonly version: number;
  readonly frozen: string;
  readonly cut: string;
  readonly architecture: string;
  readonly preprocess: { readonly mode: string; readonly size: readonly number[]; readonly fit: string };
}

export function featureFamily(s: FamilySpec): string {
  const preprocess = { mode: s.preprocess.mode, size: [...s.preprocess.size], fit: s.preprocess.fit };
  return createHash('sha256')
    .update(JSON.stringify({ version: s.version, frozen: s.frozen, cut: s.cut, architecture: s.architecture, preprocess }))
    .digest('hex');
}

/**
 * sha256 of each of `files` (relative to `dir`): from the artifact's manifest.json when `dir`
 * is a cache entry's data/ (already computed when it was committed), else hashed here.
 */
export async function imageHashes(dir: string, files: readonly string[]): Promise<string[]> {
  const known = new Map<string, string>();
  try {
    const manifest = JSON.parse(await readFile(path.join(path.dirname(dir), 'manifest.json'), 'utf8')) as unknown;
    if (path.basename(dir) === 'data' && Array.isArray(manifest)) {
      for (const m of manifest as { path?: unknown; sha256?: unknown }[]) {
        if (typeof m.path === 'string' && typeof m.sha256 === 'string') known.set(m.path, m.sha256);
      }
    }
  } catch {
    // not a cache entry (a test's folder): hash the files
  }
  return mapLimit(files, 8, async (f) => known.get(f) ?? (await cachedFileHash(path.join(dir, f))).sha256);
}

/** Where an image's row already is: a features.f32 file and the row in it. */
export interface RowSource {
  readonly file: string;
  readonly row: number;
}

/** Rows found in earlier entries, with the row shape and engine of the first entry that had any. */
export interface KnownRows {
  readonly rows: Map<string, RowSource>;
  readonly shape?: readonly number[];
  readonly engine?: Readonly<Record<string, unknown>>;
}

/**
 * The rows of `wanted` image hashes that feature entries of `family` under `derivedRoot` already
 * hold. Entries of another family, or from before rows were keyed by image, are skipped.
 */
export async function knownRows(derivedRoot: string, family: string, wanted: ReadonlySet<string>): Promise<KnownRows> {
  const rows = new Map<string, RowSource>();
  let shape: readonly number[] | undefined;
  let engine: Readonly<Record<string, unknown>> | undefined;
  const names =
    wanted.size === 0
      ? []
      : (await readdir(derivedRoot).catch(() => [] as string[])).filter((n) => n.startsWith('features-') && !n.startsWith('features-family-')).sort();
  for (const name of names) {
    let index: { family?: unknown; sha256?: unknown; shape?: unknown; engine?: unknown };
    try {
      index = JSON.parse(await readFile(path.join(derivedRoot, name, 'index.json'), 'utf8')) as typeof index;
    } catch {
      continue; // being built, or not a feature entry
    }
    if (index.family !== family || !Array.isArray(index.sha256) || !Array.isArray(index.shape)) continue;
    const file = path.join(derivedRoot, name, 'features.f32');
    const before = rows.size;
    (index.sha256 as unknown[]).forEach((h, row) => {
      if (typeof h === 'string' && wanted.has(h) && !rows.has(h)) rows.set(h, { file, row });
    });
    if (rows.size > before && !shape) {
      shape = index.shape as number[];
      engine = (index.engine ?? {}) as Record<string, unknown>;
    }
    if (rows.size === wanted.size) break;
  }
  return { rows, ...(shape ? { shape } : {}), ...(engine ? { engine } : {}) };
}

/** Reads single rows of feature files, keeping each file open once. */
export class RowCopier {
  private readonly handles = new Map<string, FileHandle>();
  constructor(private readonly rowBytes: number) {}

  async read(src: RowSource, into: Uint8Array): Promise<void> {
    let fh = this.handles.get(src.file);
    if (!fh) {
      fh = await open(src.file, 'r');
      this.handles.set(src.file, fh);
    }
    const { bytesRead } = await fh.read(into, 0, this.rowBytes, src.row * this.rowBytes);
    if (bytesRead !== this.rowBytes) throw new Error(`${src.file}: row ${src.row} is cut short`);
  }

  async close(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close();
    this.handles.clear();
  }
}
