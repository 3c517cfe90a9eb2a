#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/. The project's .npmrc has npm run no
// install scripts (its `prepare` build included: see there why), so the first run after
// `npm ci` compiles dist/ once, with the TypeScript that `npm ci` installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/runner/cli.js', import.meta.url);
if (!existsSync(cli)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write('pipe: dist/ is not built and TypeScript is not installed: run `npm ci` (with dev dependencies), then `npm run build`\n');
    process.exit(1);
  }
  process.stderr.write('pipe: first run: compiling TypeScript into dist/ ...\n');
  // tsc prints its errors on stdout: keep stdout for pipe's own output.
  const built = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.json`], { stdio: ['ignore', 2, 2] });
  if (built.status !== 0 || !existsSync(cli)) {
    process.stderr.write('pipe: the build failed (above); `npm run build` shows it again\n');
    process.exit(1);
  }
}
import(cli.href).then((m) => m.main(process.argv.slice(2)));
