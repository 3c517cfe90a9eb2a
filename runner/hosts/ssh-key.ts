// Which private key reaches a host: shared by `provision` (which records it in host.json) and the
// commands that reach a Slurm login node without a run (`pipe hosts`, `pipe down`).
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function expandHome(p: string): string {
  return p === '~' ? os.homedir() : p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}

/** The private key path: the param (relative to the pipeline file), else ~/.ssh/id_ed25519 or id_rsa. */
export function sshKeyPath(param: string | undefined, pipelineDir: string): string | undefined {
  if (param) return path.resolve(pipelineDir, expandHome(param));
  for (const name of ['id_ed25519', 'id_rsa']) {
    const p = path.join(os.homedir(), '.ssh', name);
    if (existsSync(p)) return p;
  }
  return undefined;
}
