// `pipe verify FILE`: re-hash cached artifacts against their manifests. A partial pull (a sparse
// entry) is checked on the files it holds and reported as partial, not corrupt. The folders of
// derived/ (frozen features, downloaded weights) are checked too (derived-check.ts).
import path from 'node:path';
import { openPipeline, type PipelineOptions } from '../open.js';
import { Output } from '../output.js';
import { EXIT } from '../errors.js';
import { removeDerived, verifyDerived } from '../derived-check.js';

export async function verifyCommand(file: string, flags: PipelineOptions & { all?: boolean; remove?: boolean; json?: boolean }): Promise<number> {
  const { pipeline, graph, cache } = await openPipeline(file, flags);
  const keys = new Map<string, string>(); // key -> label
  if (flags.all) {
    for (const k of await cache.listKeys()) keys.set(k, k.slice(0, 12));
  } else {
    for (const id of graph.order) {
      const k = await cache.latestKey(pipeline.name, id);
      if (k) keys.set(k, id);
    }
  }
  const out = new Output({ stream: process.stdout, live: false });
  const c = out.colors;
  const report: {
    key: string;
    label: string;
    problems: { path: string; problem: string }[];
    partial?: { files: number; of: number; reads: readonly string[]; remote: string };
  }[] = [];
  for (const [key, label] of keys) {
    // A sparse entry (a partial pull) is checked on the files it holds; the others are on the remote.
    const { problems, sparse } = await cache.verifyEntry(key);
    const partial = sparse ? { files: sparse.present.length, of: sparse.files, reads: sparse.reads, remote: sparse.remote } : undefined;
    report.push({ key, label, problems, ...(partial ? { partial } : {}) });
    if (flags.json) continue;
    const note = partial
      ? c.dim(` partial: ${partial.files} of ${partial.of} files here (${partial.reads.join(', ')}), the rest on ${partial.remote || 'the remote'}`)
      : '';
    if (problems.length === 0) out.line(`${c.green('ok     ')} ${label} ${c.dim(key.slice(0, 12))}${note}`);
    else {
      out.line(`${c.red('CORRUPT')} ${label} ${c.dim(path.join(path.relative(process.cwd(), cache.entryDir(key))))}`);
      for (const p of problems.slice(0, 20)) out.line(`        ${p.path}: ${p.problem}`);
      if (problems.length > 20) out.line(`        ... and ${problems.length - 20} more`);
    }
    if (problems.length > 0 && flags.remove) await cache.removeEntry(key);
  }
  const derived = await verifyDerived(cache);
  for (const d of derived) {
    if (!flags.json) {
      if (d.problems.length === 0) out.line(`${c.green('ok     ')} derived/${d.name}${d.unchecked ? c.dim(` (not checked: ${d.unchecked})`) : ''}`);
      else {
        out.line(`${c.red('CORRUPT')} derived/${d.name}`);
        for (const p of d.problems.slice(0, 20)) out.line(`        ${p.path}: ${p.problem}`);
        if (d.problems.length > 20) out.line(`        ... and ${d.problems.length - 20} more`);
      }
    }
    if (d.problems.length > 0 && flags.remove) await removeDerived(cache, d.name);
  }
  const corrupt = report.filter((r) => r.problems.length > 0).length;
  const corruptDerived = derived.filter((d) => d.problems.length > 0).length;
  const partial = report.filter((r) => r.partial).length;
  if (flags.json)
    process.stdout.write(
      `${JSON.stringify({ verified: report.length, corrupt, partial, entries: report, derived: { verified: derived.length, corrupt: corruptDerived, folders: derived } }, null, 2)}\n`,
    );
  else
    out.line(
      `${report.length} artifact${report.length === 1 ? '' : 's'} verified, ${corrupt} corrupt${corrupt && flags.remove ? ' (removed: the next run recomputes them)' : ''}` +
        `${partial ? `, ${partial} partial (pulled in part: not corrupt)` : ''}` +
        `${derived.length ? `; ${derived.length} derived folder${derived.length === 1 ? '' : 's'}, ${corruptDerived} corrupt${corruptDerived && flags.remove ? ' (removed: rebuilt when needed)' : ''}` : ''}`,
    );
  return corrupt + corruptDerived > 0 ? EXIT.failed : EXIT.ok;
}
