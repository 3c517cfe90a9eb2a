// Before a stage runs on a host: a Node that runs pipe (the host's own, or one pipe installs
// under its remote dir), pipe itself (pipe_path, or synced and installed: the CUDA build of ONNX
// Runtime where `nvidia-smi` lists a GPU), and what the stage's process needs to find the GPU
// libraries. A host with a GPU whose stages would compute on the CPU is never silent: a warning
// with the reason, or an error with `gpu: required`.
import path from 'node:path';
import { StageError } from '../types.js';
import { bootstrapScript, NODE_DIST_URL, NODE_VERSION, nodeHome, nodeSuitable, parseProbe, probeScript, MIN_NODE_MAJOR, type HostProbe } from './host-probe.js';
import { installPipe, type InstallOptions } from './install.js';
import { shq, sshRun } from './ssh.js';

/** `provision`'s `gpu` param: use a GPU when there is one, insist on it, or install for the CPU only. */
export type GpuMode = 'auto' | 'required' | 'cpu';

export interface PrepareOptions extends InstallOptions {
  readonly pipePath?: string;
  readonly nodeVersion?: string;
  readonly nodeDistUrl?: string;
  readonly gpu?: GpuMode;
  /**
   * A Slurm cluster: the stage runs on a compute node, not on the login node pipe installs from,
   * so the node's GPUs (provision's probe job) decide the install and the warnings.
   */
  readonly jobNodes?: JobNodes;
}

export interface JobNodes {
  /** How the jobs ask for a GPU (`gres gpu:1`); absent: they ask for none, and get the CPU install. */
  readonly asked?: string;
  /** The nodes, as the messages name them ('partition gpu of Slurm cluster c1'). */
  readonly where: string;
  readonly gpus: readonly string[];
  readonly cuda12?: string;
  readonly cudnn?: string;
  /** The probe job could not run: the GPU is assumed (the jobs ask for one), its libraries unknown. */
  readonly failed?: string;
}

export interface HostRuntime {
  /** bin/pipe.js on the host. */
  readonly bin: string;
  /** `export VAR=value; ...` (shell-quoted), run before the stage's command. */
  readonly env: string;
  readonly gpus: readonly string[];
  /** Why pipe's engines compute on the CPU although the host has a GPU; absent otherwise. */
  readonly cpuReason?: string;
  /** A Slurm job asks for a GPU (how): a stage that reports a CPU device there is a warning. */
  readonly gpuAsked?: string;
  /** Where the GPUs are, for messages: the host, or a Slurm partition's nodes. */
  readonly gpuWhere: string;
}

// Stages placed on the same host in one run share one look, one Node install and one pipe install.
const prepared = new Map<string, Promise<HostRuntime>>();

export async function prepareHost(o: PrepareOptions): Promise<HostRuntime> {
  const id = JSON.stringify([o.target.user, o.target.address, o.target.port, o.root, o.pipePath, o.nodeVersion, o.nodeDistUrl, o.gpu, o.jobNodes]);
  let p = prepared.get(id);
  if (!p) {
    p = prepare(o);
    prepared.set(id, p);
    p.catch(() => prepared.delete(id));
  }
  const runtime = await p;
  const gpuList = runtime.gpus.length ? `${runtime.gpus.length}x ${[...new Set(runtime.gpus)].join(', ')}` : 'no GPU';
  if (runtime.cpuReason && o.gpu === 'required') {
    throw new StageError(
      `${runtime.gpuWhere} (${gpuList}) cannot compute on a GPU: ${runtime.cpuReason}`,
      '`gpu: required` on the provision stage; set `gpu: auto` to run on its CPU anyway',
    );
  }
  if (runtime.cpuReason) o.log.warn(`${runtime.gpuWhere} has ${gpuList} but this stage computes on its CPU: ${runtime.cpuReason}`);
  return runtime;
}

async function prepare(o: PrepareOptions): Promise<HostRuntime> {
  const version = o.nodeVersion ?? NODE_VERSION;
  const lines: string[] = [];
  const r = await sshRun(o.target, probeScript(o.root, version, o.pipePath), { signal: o.signal, onLine: (l) => lines.push(l) });
  if (r.exitCode === 255) throw o.lost('looking at the host');
  const here = parseProbe(lines);
  const nodeBinDir = await nodeFor(o, here, version);
  const jobs = o.jobNodes;
  // Where the stage computes: the host itself, or (Slurm) a compute node that provision probed.
  const probe = jobs ? { ...here, gpus: jobs.asked ? jobs.gpus : [], cuda12: jobs.cuda12, cudnn: jobs.cudnn } : here;
  const gpuWhere = jobs ? jobs.where : `host ${o.where}`;
  const gpuMode = o.gpu ?? 'auto';
  const gpuLikely = probe.gpus.length > 0 || !!(jobs?.asked && jobs.failed);
  const variant = gpuLikely && gpuMode !== 'cpu' ? 'cuda12' : 'cpu';
  // On a cluster, jobs of a CPU partition and of a GPU one share the workspace while they run:
  // each variant has its own folder, so installing one never rewrites the other under a job.
  const toolName = jobs && variant !== 'cpu' ? `tool-${variant}` : 'tool';
  const installed = o.pipePath ? undefined : await installPipe({ ...o, toolName, ...(nodeBinDir ? { nodeBinDir } : {}) }, variant);
  const bin = installed?.bin ?? path.posix.join(o.pipePath!, 'bin/pipe.js');

  let cpuReason: string | undefined;
  if (gpuMode === 'required' && jobs?.failed && !probe.gpus.length) cpuReason = `the GPU probe job could not run (${jobs.failed})`;
  else if (gpuMode === 'required' && !probe.gpus.length) cpuReason = `nvidia-smi lists no GPU on ${jobs ? `a compute node of ${jobs.where}` : 'the host'}`;
  else if (jobs?.asked && !jobs.failed && !probe.gpus.length && gpuMode !== 'cpu')
    cpuReason = `the jobs ask for ${jobs.asked} but nvidia-smi lists no GPU on a compute node of ${jobs.where}`;
  else if (probe.gpus.length && gpuMode !== 'cpu') {
    if (installed && !installed.cudaProvider) {
      cpuReason = installed.cudaFailed
        ? `ONNX Runtime's CUDA provider could not be installed (${installed.cudaFailed})`
        : "ONNX Runtime's CUDA provider is not installed";
    } else if (!installed && !here.pipeCuda)
      cpuReason = `the pipe at ${o.pipePath} has no CUDA provider for ONNX Runtime (run \`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js\` there)`;
    else if (!probe.cuda12)
      cpuReason =
        'no CUDA 12 runtime (libcudart.so.12) under /usr/local/cuda-12* or the system libraries: ONNX Runtime 1.x is built for CUDA 12 (install cuda-toolkit-12 beside the default CUDA)';
    else if (!probe.cudnn) cpuReason = "libcudnn.so.9 not found (cuDNN 9 for CUDA 12), which ONNX Runtime's CUDA provider needs";
  }

  const libs = [...new Set([probe.cuda12, probe.cudnn].filter((d): d is string => !!d))];
  const env = [
    ...(nodeBinDir ? [`PATH=${shq(nodeBinDir)}:"$PATH"`] : []),
    ...(libs.length && probe.gpus.length ? [`LD_LIBRARY_PATH=${shq(libs.join(':'))}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`] : []),
    ...(probe.gpus[0] ? [`PIPE_GPU_NAME=${shq(probe.gpus[0])}`] : []),
    // Why tfjs cannot use the GPU (backend.ts puts it in the stage's device report).
    ...(installed?.tfjsGpuFailed ? [`PIPE_TFJS_GPU_FAILED=${shq(installed.tfjsGpuFailed)}`] : []),
  ]
    .map((a) => `export ${a}; `)
    .join('');
  return { bin, env, gpus: probe.gpus, gpuWhere, ...(cpuReason ? { cpuReason } : {}), ...(jobs?.asked && gpuMode !== 'cpu' ? { gpuAsked: jobs.asked } : {}) };
}

/** The bin/ of the Node to use, or undefined for the host's own node on PATH; installs one when needed. */
async function nodeFor(o: PrepareOptions, probe: HostProbe, version: string): Promise<string | undefined> {
  if (nodeSuitable(probe.node) && (probe.npm || o.pipePath)) return undefined;
  if (probe.bootstrapped) return probe.bootstrapped;
  if (probe.os !== 'Linux')
    throw new StageError(
      `host ${o.where} has no Node >= ${MIN_NODE_MAJOR} and runs ${probe.os || 'an unknown OS'}: pipe installs Node only on Linux hosts`,
      'install Node.js there',
    );
  const distUrl = o.nodeDistUrl ?? NODE_DIST_URL;
  const found = probe.node ? `Node ${probe.node}${probe.npm ? '' : ' without npm'}` : 'no Node';
  o.log.info(`host ${o.where} has ${found}: installing Node v${version} (${probe.arch}) from ${distUrl} for pipe`);
  const started = Date.now();
  const r = await sshRun(o.target, bootstrapScript(o.root, version, distUrl, probe.arch), { signal: o.signal });
  if (r.exitCode === 255) throw o.lost('installing Node');
  if (r.exitCode !== 0) {
    const why =
      r.stderr
        .split('\n')
        .filter((l) => l.startsWith('pipe: '))
        .pop()
        ?.slice('pipe: '.length) ??
      r.stderr.trim().split('\n').pop() ??
      `exit ${r.exitCode}`;
    throw new StageError(
      `installing Node on ${o.where} failed: ${why}`,
      'set `node_dist_url` on the provision stage to a reachable mirror, or install Node.js >= 20 on the host',
    );
  }
  o.log.info(`installed Node v${version} on ${o.where} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return `${nodeHome(o.root, version, probe.arch)}/bin`;
}
