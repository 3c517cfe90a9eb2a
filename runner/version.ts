import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

let cached: string | undefined;

/** The package version (dist/runner/version.js and runner/version.ts both sit two levels down). */
export function pipeVersion(): string {
  if (cached) return cached;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(here, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pipe-ml' && pkg.version) return (cached = pkg.version);
    } catch {
      // try the next level
    }
  }
  return (cached = '0.0.0');
}
