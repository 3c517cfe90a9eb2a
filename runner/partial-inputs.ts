// What a running stage needs of an input that is only partly in the cache (a partial pull):
// the files it declares (Stage.reads), whether the sparse entry holds them, and a hint when it
// failed on a file it did not declare.
import type { Artifact, Stage } from './types.js';
import { StageError } from './types.js';
import type { Cache } from './cache.js';
import { sparseOf, type SparseInfo } from './sparse.js';
import { normalizeReads, selectReads } from './reads.js';

/** The files `stage` declares it reads from input `port` (undefined: all), checked. */
export function declaredReads(stage: Stage<any>, params: unknown, port: string): string[] | undefined {
  if (!stage.reads) return undefined;
  try {
    return normalizeReads(stage.reads(params, port), `stage ${stage.name}`);
  } catch (e) {
    throw new StageError(`${(e as Error).message} (a bug in the stage's reads())`);
  }
}

/** Whether a sparse entry holds every file that `reads` matches (all of them when undefined). */
export async function sparseHolds(cache: Cache, key: string, sparse: SparseInfo, reads: readonly string[] | undefined): Promise<boolean> {
  if (reads === undefined) return false;
  const present = new Set(sparse.present);
  return selectReads(await cache.readManifest(key), reads).every((m) => present.has(m.path));
}

/**
 * A stage that failed on a missing file while reading a partial pull: say so, since an
 * undeclared read (a wrong Stage.reads) is the likely cause.
 */
export function partialReadHint(e: unknown, stage: Stage<any>, params: unknown, inputs: Readonly<Record<string, Artifact>>): string {
  const text = `${(e as Error | undefined)?.message ?? e}`;
  if (!/ENOENT|no such file/i.test(text)) return '';
  const partial = Object.entries(inputs).filter(([, a]) => sparseOf(a));
  if (partial.length === 0) return '';
  const declared = (port: string): string => {
    try {
      return (stage.reads?.(params, port) ?? []).join(', ');
    } catch {
      return '?';
    }
  };
  const described = partial.map(([port]) => `${port} (${declared(port)})`).join(', ');
  return ` [input ${described} was pulled partly, only the files ${stage.name} declares it reads: if it reads more, its reads() is wrong; \`pipe pull\` the input stage to fetch all of it]`;
}
