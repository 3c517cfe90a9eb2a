// Stages as Slurm jobs on the one-node test cluster (test/servers/slurm.ts) of this machine:
// the overhead of a trivial stage (submit to result: the stage's own duration in the run record)
// as a Slurm job (submitted here, and through a login node over the loopback sshd), against the
// same stage over ssh (pipe already on the host) and locally, with the ssh connections each run
// opened (the sshd's `Accepted publickey` lines); then a sweep of 8 trivial combinations as jobs at --sweep-parallel 1, 2 and 4
// (wall time of `pipe run --sweep`). The cluster's scheduler runs every second
// (sched_interval=1) and pipe reads a job's state once a second: a floor of about 1-2 s per job
// that a real cluster's queue wait adds to. Repeats: PIPE_BENCH_SLURM_REPEATS (3).
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSlurm, slurmUnavailable } from '../test/servers/slurm.js';
import { startSshd, sshdUnavailable } from '../test/servers/sshd.js';
import { slurmPipeline } from '../test/helpers/slurm-pipeline.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PIPE = path.join(REPO, 'bin/pipe.js');
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function pipe(dir: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [PIPE, ...args], {
    cwd: dir,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr, ms: performance.now() - t0 })));
}

/** The Slurm tests' pipeline, its train stage placed by `host` (undefined: run here), without the stage after it. */
function pipeline(host: string[] | undefined, work: string, params = ''): string {
  return slurmPipeline('', { name: 'bench', host: host ?? ['provider: local'], slurm: host !== undefined, work, params, after: false });
}

/** The train stage's duration (ms) in the newest run record. */
async function trainMs(dir: string): Promise<number> {
  const runs = path.join(dir, '.pipe/runs');
  // By time written: run ids of one second differ only in a random suffix, so their names do not sort by time.
  const records = (await readdir(runs)).filter((f) => f.endsWith('.jsonl'));
  const written = await Promise.all(records.map(async (f) => ({ f, t: (await stat(path.join(runs, f))).mtimeMs })));
  const newest = written.sort((a, b) => a.t - b.t).pop()!.f;
  for (const line of (await readFile(path.join(runs, newest), 'utf8')).trim().split('\n')) {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e['type'] === 'stage-finish' && e['stage'] === 'train') return Number(e['durationMs']);
  }
  throw new Error(`train did not finish in ${path.join(runs, newest)}`);
}

export async function benchSlurm(): Promise<unknown> {
  const why = slurmUnavailable() ?? sshdUnavailable();
  if (why) return { skipped: why };
  const repeats = Number(process.env['PIPE_BENCH_SLURM_REPEATS']) || 3;
  const slurm = await startSlurm();
  const sshd = await startSshd({ env: slurm.env() });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-slurm-'));
  const ws = await mkdtemp(path.join(os.tmpdir(), 'pipe-bench-slurm-ws-'));
  const env = slurm.env();
  try {
    const ssh = ['address: 127.0.0.1', 'ssh_user: root', `ssh_port: ${sshd.port}`, `ssh_key: ${sshd.userKey}`, 'ssh_wait_seconds: 5', `pipe_path: ${REPO}`];
    const placements: Record<string, string[] | undefined> = {
      local: undefined,
      ssh: ['provider: ssh', `remote_dir: ${ws}/ssh`, ...ssh],
      slurm: ['provider: slurm', `remote_dir: ${ws}/slurm`, 'cpus: 1'],
      slurm_via_login_node: ['provider: slurm', `remote_dir: ${ws}/slurm-login`, 'cpus: 1', ...ssh],
    };
    const trivial: Record<string, unknown> = {};
    for (const [name, host] of Object.entries(placements)) {
      await writeFile(path.join(dir, 'p.yaml'), pipeline(host, 'echo hi > out.txt'));
      const warm = await pipe(dir, ['run', 'p.yaml'], env);
      if (warm.code !== 0) throw new Error(`${name}: ${warm.stderr.slice(-500)}`);
      const stage: number[] = [];
      const wall: number[] = [];
      const accepted = sshd.accepted();
      for (let i = 0; i < repeats; i++) {
        const r = await pipe(dir, ['run', 'p.yaml', '--only', 'train', '--force'], env);
        if (r.code !== 0) throw new Error(`${name}: ${r.stderr.slice(-500)}`);
        stage.push(await trainMs(dir));
        wall.push(r.ms);
      }
      // ssh connections the loopback sshd accepted per forced run (0 where nothing goes over ssh).
      const connections = round((sshd.accepted() - accepted) / repeats, 1);
      trivial[name] = { stage_s: round(median(stage) / 1000), run_wall_s: round(median(wall) / 1000), ssh_connections_per_run: connections, runs: repeats };
    }

    const sweep: Record<string, unknown> = {};
    const combos = '1,2,3,4,5,6,7,8';
    for (const parallel of [1, 2, 4]) {
      await rm(path.join(dir, '.pipe'), { recursive: true, force: true });
      await writeFile(path.join(dir, 'p.yaml'), pipeline(placements['slurm'], 'echo "lr=${params.lr}" > out.txt', 'params:\n  lr: 0'));
      const r = await pipe(dir, ['run', 'p.yaml', '--sweep', `params.lr=${combos}`, '--sweep-parallel', String(parallel)], env);
      if (r.code !== 0) throw new Error(`sweep ${parallel}: ${r.stderr.slice(-500)}`);
      sweep[`parallel_${parallel}`] = { wall_s: round(r.ms / 1000) };
    }
    return {
      note: 'trivial stage: its duration in the run record (for ssh and slurm: sync, submit or start, wait, fetch); 8-combination sweep: wall time of pipe run --sweep, each combination one Slurm job; one-node cluster of this machine, sched_interval=1, state read every 1 s',
      trivial_stage: trivial,
      sweep_8_trivial_as_slurm_jobs: sweep,
    };
  } finally {
    await sshd.close();
    await slurm.close();
    await rm(dir, { recursive: true, force: true });
    await rm(ws, { recursive: true, force: true });
  }
}
