// A Slurm provision stage that asks for a GPU (`gres: gpu:1`) on the real one-node test cluster,
// whose node has a `gpu` gres and, for jobs that carry PIPE_TEST_GPU_BIN, a stand-in nvidia-smi
// on their PATH (test/servers/slurm.ts): the submit host never sees it, so only a probe job on
// the compute node can tell. The probe's answer is shown by provision and cached; pipe's install
// on the cluster follows it (the CUDA build requested, its download failing offline with the
// reason), and a job that asked for a GPU but computes on the CPU is a warning in the summary.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rig, REPO } from './rig.js';
import { slurmPipeline, type SlurmPipelineOptions } from '../helpers/slurm-pipeline.js';
import { startSlurm, slurmUnavailable, type Slurm } from '../servers/slurm.js';
import { startSshd, sshdUnavailable } from '../servers/sshd.js';
import { installKey } from '../../runner/hosts/install.js';

const skip = slurmUnavailable() ?? (spawnSync('sh', ['-c', 'command -v nvidia-smi']).status === 0 ? 'this machine has an nvidia-smi of its own' : undefined);
let slurm: Slurm;
let fakeBin: string;
const temps: string[] = [];

before(async () => {
  if (skip) return;
  slurm = await startSlurm({ fakeGpu: true });
  fakeBin = await mkdtemp(path.join(os.tmpdir(), 'pipe-fake-gpu-'));
  temps.push(fakeBin);
  await writeFile(
    path.join(fakeBin, 'nvidia-smi'),
    '#!/bin/sh\n[ "$1" = "-L" ] && echo "GPU 0: Tesla T4 (UUID: GPU-00000000-1111-2222-3333-444444444444)"\nexit 0\n',
  );
  await chmod(path.join(fakeBin, 'nvidia-smi'), 0o755);
});
after(async () => {
  await slurm?.close();
  for (const t of temps) await rm(t, { recursive: true, force: true });
});

async function setup(opts: SlurmPipelineOptions = {}, workspace?: string): Promise<Rig> {
  const rig = await Rig.create();
  const ws = workspace ?? (await mkdtemp(path.join(os.tmpdir(), 'pipe-slurm-ws-')));
  temps.push(ws);
  await rig.write('notes.txt', 'project file\n');
  await rig.write('p.yaml', slurmPipeline(ws, { ...opts, hostParams: ['gres: gpu:1', ...(opts.hostParams ?? [])] }));
  return rig;
}

const hostJson = async (rig: Rig): Promise<Record<string, any>> => JSON.parse(await rig.read('.pipe/latest/cluster/cluster/host.json')) as Record<string, any>;
const summaryOf = (stderr: string): string => stderr.slice(stderr.lastIndexOf('stages:'));
const PLACE = 'the default partition of Slurm cluster pipetest';

describe('Slurm GPU', { concurrency: 2 }, () => {
  test('gres gpu: a probe job finds the GPU a compute node gives (not the submit host); shown, cached, and a CPU run is a warning', { skip }, async () => {
    const rig = await setup();
    try {
      const env = { ...slurm.env(), PIPE_TEST_GPU_BIN: fakeBin };
      const r = await rig.run(['run', 'p.yaml'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /cluster \| asking a compute node of the default partition which GPU a job with gres gpu:1 gets \(probe job pipe-gpu-probe/);
      const probed = new RegExp(
        `cluster \\| GPU probe of the default partition \\(gres gpu:1\\), Slurm job (\\d+): 1x Tesla T4 on node ${slurm.node}; CUDA 12 runtime: `,
      );
      const id = probed.exec(r.stderr)?.[1];
      assert.ok(id, r.stderr);
      assert.match(slurm.cmd(['scontrol', 'show', 'job', '-o', id]), /JobName=pipe-gpu-probe .*JobState=COMPLETED/);
      const host = await hostJson(rig);
      assert.deepEqual(host['gpus'], ['Tesla T4']);
      assert.equal(host['slurm'].gpuProbe.jobId, id);
      // The jobs run this checkout's pipe, whose ONNX Runtime is the CPU build: never silent.
      const why = existsSync(path.join(REPO, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'))
        ? 'no CUDA 12 runtime'
        : 'the pipe at \\S+ has no CUDA provider for ONNX Runtime';
      assert.match(r.stderr, new RegExp(`train \\| ${PLACE} has 1x Tesla T4 but this stage computes on its CPU: ${why}`));
      assert.match(summaryOf(r.stderr), new RegExp(`! train ran on the CPU of ${PLACE} \\(1x Tesla T4\\): ${why}`));

      // The next run takes the answer from the cache: no probe job.
      const again = await rig.run(['run', 'p.yaml', '--only', 'cluster'], env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /cluster \| GPU probe of the default partition \(gres gpu:1\), cached from \S+: 1x Tesla T4 on node/);
      assert.doesNotMatch(again.stderr, /asking a compute node/);
    } finally {
      await rig.cleanup();
    }
  });

  test('gres gpu on nodes whose nvidia-smi lists none: the probe says so, and the CPU run is a warning', { skip }, async () => {
    const rig = await setup();
    try {
      const r = await rig.run(['run', 'p.yaml'], slurm.env());
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`GPU probe of the default partition \\(gres gpu:1\\), Slurm job \\d+: no GPU \\(nvidia-smi lists none\\) on node ${slurm.node}`),
      );
      assert.match(
        summaryOf(r.stderr),
        new RegExp(`! train ran on the CPU of ${PLACE} \\(no GPU\\): the jobs ask for gres gpu:1 but nvidia-smi lists no GPU on a compute node of ${PLACE}`),
      );
    } finally {
      await rig.cleanup();
    }
  });

  test('a probe job the cluster refuses fails provision with what Slurm said', { skip }, async () => {
    const rig = await setup({ hostParams: [] });
    try {
      await rig.write('p.yaml', (await rig.read('p.yaml')).replace('gres: gpu:1', 'gres: gpu:4'));
      const r = await rig.run(['run', 'p.yaml'], slurm.env());
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /✗ cluster Slurm cluster pipetest refused the GPU probe job \(.*--gres=gpu:4.*\): Requested node configuration is not available/);
      assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
    } finally {
      await rig.cleanup();
    }
  });

  test(
    'through a login node without a GPU: the CUDA install is chosen by the compute node (its download fails offline, with the reason); without the GPU, the CPU install',
    { skip: skip ?? sshdUnavailable(), timeout: 600_000 },
    async () => {
      const ws = await mkdtemp(path.join(os.tmpdir(), 'pipe-slurm-ws-'));
      // ONNX Runtime's CUDA download goes to a closed port: offline, also where CI has internet.
      const offline = { GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9' };
      const cpuLogin = await startSshd({ env: { ...slurm.env(), ...offline } });
      const gpuLogin = await startSshd({ env: { ...slurm.env(), ...offline, PIPE_TEST_GPU_BIN: fakeBin } });
      const cpuRig = await setup({ login: cpuLogin }, ws);
      const gpuRig = await setup({ login: gpuLogin }, ws);
      try {
        // The CPU install is made to look done already (this checkout's packages, linked, and its
        // marker): one real npm ci per test is enough, and the GPU half below does it.
        const modules = path.join(ws, 'tool', 'node_modules');
        await mkdir(modules, { recursive: true });
        for (const name of await readdir(path.join(REPO, 'node_modules'))) await symlink(path.join(REPO, 'node_modules', name), path.join(modules, name));
        await writeFile(path.join(modules, `.pipe-installed-${await installKey()}-cpu`), '');
        const c = await cpuRig.run(['run', 'p.yaml'], slurm.env());
        assert.equal(c.code, 0, c.stderr);
        assert.match(c.stderr, /cluster \| GPU probe of the default partition \(gres gpu:1\), Slurm job \d+: no GPU/);
        assert.doesNotMatch(c.stderr, /installed pipe's dependencies/);
        assert.equal(existsSync(path.join(ws, 'tool-cuda12')), false, 'no CUDA install for nodes without a GPU');
        assert.equal(await cpuRig.read('.pipe/latest/cluster/after/copy.txt'), 'HELLO WORLD\nproject file\n');

        const r = await gpuRig.run(['run', 'p.yaml'], slurm.env());
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /cluster \| GPU probe of the default partition \(gres gpu:1\), Slurm job \d+: 1x Tesla T4 on node/);
        assert.match(r.stderr, /train \| installed pipe's dependencies on 127\.0\.0\.1 \(with the CUDA 12 build of ONNX Runtime\)/);
        const reason = `${PLACE} has 1x Tesla T4 but this stage computes on its CPU: ONNX Runtime's CUDA provider could not be installed \\(.+\\)`;
        assert.match(r.stderr, new RegExp(`train \\| ${reason}`));
        assert.match(
          summaryOf(r.stderr),
          new RegExp(`! train ran on the CPU of ${PLACE} \\(1x Tesla T4\\): ONNX Runtime's CUDA provider could not be installed`),
        );
        assert.equal(await gpuRig.read('.pipe/latest/cluster/after/copy.txt'), 'HELLO WORLD\nproject file\n');
        // One folder per variant on the shared filesystem: the CUDA install left the CPU one alone.
        assert.deepEqual((await readdir(ws)).filter((d) => d.startsWith('tool')).sort(), ['tool', 'tool-cuda12']);
        assert.ok(existsSync(path.join(modules, `.pipe-installed-${await installKey()}-cpu`)));
      } finally {
        await gpuLogin.close();
        await cpuLogin.close();
        await gpuRig.cleanup();
        await cpuRig.cleanup();
      }
    },
  );
});
