// A real one-node Slurm cluster on loopback for tests: munge (reused when one runs), a
// slurm.conf with its own ports, state and spool dirs under a temp dir, slurmctld and slurmd of
// Debian's packages started as root and stopped by their pid files. `slurmUnavailable()` says
// why not where it cannot start. Commands see the cluster through SLURM_CONF (env()).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep, stopByPidFile } from './daemon.js';

const DAEMONS = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged'];
const CLIENTS = ['sbatch', 'squeue', 'scontrol', 'scancel', 'sinfo', 'munge', 'unmunge'];

export interface Slurm {
  readonly dir: string;
  readonly conf: string;
  readonly node: string;
  /** Environment that points the Slurm commands at this cluster. */
  env(): Record<string, string>;
  /** Run a Slurm command against this cluster (stdout). */
  cmd(args: readonly string[]): string;
  close(): Promise<void>;
}

export function slurmUnavailable(): string | undefined {
  for (const d of DAEMONS) if (!existsSync(d)) return `${d} not installed (apt-get install slurmctld slurmd slurm-client munge)`;
  for (const c of CLIENTS) if (spawnSync('which', [c]).status !== 0) return `${c} not installed (apt-get install slurm-client munge)`;
  if (process.getuid?.() !== 0) return 'needs root (slurmd and munged are started as root here)';
  return undefined;
}

function mungeWorks(): boolean {
  const r = spawnSync('sh', ['-c', 'munge -n | unmunge'], { stdio: 'ignore' });
  return r.status === 0;
}

async function ensureMunge(): Promise<void> {
  if (mungeWorks()) return;
  await mkdir('/run/munge', { recursive: true });
  spawnSync('chown', ['munge:munge', '/run/munge']);
  // munged warns about the ownership of its log dir as root; --force starts it anyway.
  spawnSync('/usr/sbin/munged', ['--force'], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !mungeWorks(); i++) await sleep(100);
  if (!mungeWorks()) throw new Error('munged did not start (munge -n | unmunge fails)');
}

export interface SlurmOptions {
  /** Extra slurm.conf lines. */
  readonly extra?: readonly string[];
  /**
   * The node offers one `gpu` gres (a count, no device), and a job whose environment has
   * PIPE_TEST_GPU_BIN finds that folder first on its PATH (a TaskProlog): a stand-in nvidia-smi
   * there is seen by the jobs only, as a compute node's GPU is, never by the submit host.
   */
  readonly fakeGpu?: boolean;
}

export async function startSlurm(opts: SlurmOptions = {}): Promise<Slurm> {
  await ensureMunge();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-slurm-'));
  const node = os.hostname().split('.')[0]!;
  for (const d of ['state', 'spool']) await mkdir(path.join(dir, d), { recursive: true });
  const conf = path.join(dir, 'slurm.conf');
  const gpuLines: string[] = [];
  if (opts.fakeGpu) {
    // slurmd reads gres.conf beside slurm.conf; a gpu gres needs a File (any device will do).
    await writeFile(path.join(dir, 'gres.conf'), 'Name=gpu File=/dev/null\n');
    const prolog = path.join(dir, 'task-prolog.sh');
    await writeFile(prolog, '#!/bin/sh\n[ -n "$PIPE_TEST_GPU_BIN" ] && echo "export PATH=$PIPE_TEST_GPU_BIN:$PATH"\nexit 0\n', { mode: 0o755 });
    gpuLines.push('GresTypes=gpu', `TaskProlog=${prolog}`);
  }
  // More job slots than cores (config_overrides: slurmd takes the node's size from this file), so
  // tests whose jobs mostly wait can share the cluster.
  const cpus = Math.max(8, os.availableParallelism());
  await writeFile(
    conf,
    [
      `ClusterName=pipetest`,
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${await freePort()}`,
      `SlurmdPort=${await freePort()}`,
      'AuthType=auth/munge',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      'SlurmUser=root',
      'ReturnToService=2',
      // Quick turnaround for tests: jobs scheduled and killed without the usual grace times.
      'SchedulerParameters=sched_interval=1',
      'KillWait=1',
      'OverTimeLimit=0',
      'MinJobAge=300',
      'MpiDefault=none',
      'JobAcctGatherType=jobacct_gather/none',
      'SlurmdParameters=config_overrides',
      ...(opts.extra ?? []),
      ...gpuLines,
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=4000${opts.fakeGpu ? ' Gres=gpu:1' : ''} State=UNKNOWN`,
      `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env = { SLURM_CONF: conf };
  const daemonEnv = { ...process.env, ...env };
  const start = (bin: string): void => {
    const r = spawnSync(bin, ['-f', conf], { env: daemonEnv, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${bin} failed to start: ${r.stderr}`);
  };
  const cmd = (args: readonly string[]): string => {
    const r = spawnSync(args[0]!, args.slice(1), { env: daemonEnv, encoding: 'utf8' });
    return `${r.stdout ?? ''}`;
  };
  const slurm: Slurm = {
    dir,
    conf,
    node,
    env: () => env,
    cmd,
    async close() {
      for (const pidFile of ['slurmd.pid', 'slurmctld.pid']) await stopByPidFile(path.join(dir, pidFile));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    start('/usr/sbin/slurmctld');
    await sleep(1000);
    start('/usr/sbin/slurmd');
    const until = Date.now() + 20_000;
    for (;;) {
      const state = cmd(['sinfo', '-h', '-n', node, '-o', '%T']).trim();
      if (/^(idle|mixed|allocated)/.test(state)) break;
      if (Date.now() > until) throw new Error(`the test Slurm node did not come up (sinfo: ${state || 'nothing'})`);
      await sleep(300);
    }
  } catch (e) {
    await slurm.close();
    throw e;
  }
  return slurm;
}
