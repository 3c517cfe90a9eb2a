// Which cache `pipe runs`, `diff` and `gc` read when no pipeline file names one. A pipeline keeps
// its cache beside its file (pipelines/.pipe for pipelines/demo.yaml), so from the repository
// root ./.pipe is usually absent: then the one cache in a folder just below is taken (and said),
// and with several or none the error says how to name one.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ExitError, EXIT } from './errors.js';

const isDir = (p: string): Promise<boolean> =>
  stat(p)
    .then((s) => s.isDirectory())
    .catch(() => false);

/**
 * --cache-dir, PIPE_CACHE_DIR or ./.pipe when it exists; else <folder>/.pipe when exactly one
 * folder under `cwd` has one (`note` then says which was taken). `command` names the command in
 * the hint ("pipe runs").
 */
export async function defaultCacheRoot(command: string, cacheDir?: string, cwd = process.cwd()): Promise<{ root: string; note?: string }> {
  const explicit = cacheDir ?? process.env.PIPE_CACHE_DIR;
  if (explicit) return { root: path.resolve(cwd, explicit) };
  const here = path.resolve(cwd, '.pipe');
  if (await isDir(here)) return { root: here };
  const below: string[] = [];
  for (const e of await readdir(cwd, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules' && (await isDir(path.join(cwd, e.name, '.pipe'))))
      below.push(path.join(e.name, '.pipe'));
  }
  if (below.length === 1)
    return { root: path.resolve(cwd, below[0]!), note: `(no ./.pipe here: using ${below[0]}, the cache of the pipelines in ${path.dirname(below[0]!)}/)` };
  const hint = `name a pipeline file (its cache is beside it: \`${command} pipelines/demo.yaml\`) or use --cache-dir DIR`;
  if (below.length > 1) throw new ExitError(EXIT.usage, `no pipe cache at ${here}, and several below it (${below.join(', ')}): ${hint}`);
  throw new ExitError(EXIT.usage, `no pipe cache at ${here}: ${hint}`);
}
