// `pipe validate FILE...`: every problem in every file, located; exit 2 if any.
import { readFile } from 'node:fs/promises';
import { EXIT } from '../errors.js';

export async function validateCommand(files: string[], flags: { set?: string[]; param?: string[]; paramsFile?: string }): Promise<number> {
  const { loadPipeline } = await import('../load.js');
  const { formatDiagnostic, diagnosticLine } = await import('../diagnostics.js');
  const { buildGraph } = await import('../graph.js');
  const { literalSecretWarnings } = await import('../secrets.js');
  const { registry } = await import('../../stages/registry.js');
  const color = !('NO_COLOR' in process.env) && Boolean(process.stderr.isTTY);
  let problems = 0;
  let stages = 0;
  for (const file of files) {
    const loaded = await loadPipeline(file, {
      registry,
      ...(flags.set ? { set: flags.set } : {}),
      ...(flags.param ? { params: flags.param } : {}),
      ...(flags.paramsFile ? { paramsFile: flags.paramsFile } : {}),
      checkPaths: true,
    });
    let errors = loaded.ok ? [] : [...loaded.errors];
    // Warnings are printed but do not fail validation.
    const warnings = loaded.ok ? literalSecretWarnings(loaded.value) : [];
    if (loaded.ok) {
      const graph = buildGraph(loaded.value.stages);
      if (!graph.ok) errors = [...graph.errors];
      stages += loaded.value.stages.size;
    }
    // One line each, without the excerpt of the source: that line holds the value.
    for (const w of warnings) process.stderr.write(`${diagnosticLine(w)}\n`);
    const sources = new Map<string, string | undefined>();
    for (const d of errors) {
      if (!sources.has(d.file)) sources.set(d.file, await readFile(d.file, 'utf8').catch(() => undefined));
      process.stderr.write(`${formatDiagnostic(d, sources.get(d.file), color)}\n`);
    }
    problems += errors.length;
  }
  const n = files.length;
  if (problems > 0) {
    process.stderr.write(`${problems} problem${problems === 1 ? '' : 's'} in ${n} file${n === 1 ? '' : 's'}\n`);
    return EXIT.usage;
  }
  process.stdout.write(`${n} pipeline${n === 1 ? '' : 's'} valid (${stages} stages)\n`);
  return EXIT.ok;
}
