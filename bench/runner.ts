// Runner overhead: a no-op `pipe run` of a fully cached 6-stage pipeline whose data artifact
// holds 25,000 small files (it must not re-read them), `pipe validate` and `pipe status`.
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/pipe.js');

const PIPELINE = `name: bench
stages:
  data:
    uses: command
    with: { workdir: out, run: 'mkdir -p imgs && for i in $(seq 0 24999); do echo $i > imgs/$i.txt; done' }
  s1:
    uses: command
    inputs: { data: data }
    with: { workdir: out, run: 'ls "$PIPE_IN_DATA/imgs" | wc -l > n.txt' }
  s2:
    uses: command
    inputs: { s1: s1 }
    with: { workdir: out, run: 'cat "$PIPE_IN_S1/n.txt" > n.txt' }
  s3:
    uses: command
    inputs: { s2: s2, data: data }
    with: { workdir: out, run: 'cat "$PIPE_IN_S2/n.txt" > n.txt' }
  s4:
    uses: command
    inputs: { s3: s3 }
    with: { workdir: out, run: 'cat "$PIPE_IN_S3/n.txt" > n.txt' }
  s5:
    uses: command
    inputs: { s4: s4 }
    with: { workdir: out, run: 'cat "$PIPE_IN_S4/n.txt" > n.txt' }
`;

function time(args: string[], cwd: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, CI: 'true' }, stdio: 'pipe' });
  if (r.status !== 0) throw new Error(`pipe ${args.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchRunner(repeats = 7): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-runner-'));
  try {
    await writeFile(path.join(dir, 'bench.yaml'), PIPELINE);
    const cold = time(['run', 'bench.yaml'], dir);
    const noop = Array.from({ length: repeats }, () => time(['run', 'bench.yaml'], dir));
    const validate = Array.from({ length: repeats }, () => time(['validate', 'bench.yaml'], dir));
    const status = Array.from({ length: repeats }, () => time(['status', 'bench.yaml'], dir));
    const node = Array.from({ length: repeats }, () => {
      const t0 = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0']);
      return Number(process.hrtime.bigint() - t0) / 1e9;
    });
    return {
      files_in_data_artifact: 25000,
      cold_run_s: cold,
      noop_run_median_s: median(noop),
      noop_run_target_s: 0.3,
      validate_median_s: median(validate),
      validate_target_s: 0.2,
      status_median_s: median(status),
      status_target_s: 0.3,
      bare_node_start_median_s: median(node),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(JSON.stringify(await benchRunner(), null, 2));
}
