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
}

export interface HostRuntime {
  /** bin/pipe.js on the host. */
  readonly bin: string;
  /** `export VAR=value; ...` (shell-quoted), run before the stage's command. */
  readonly env: string;
  readonly gpus: readonly string[];
  /** Why pipe's engines compute on the CPU although the host has a GPU; absent otherwise. */
  readonly cpuReason?: string;
}

// Stages placed on the same host in one run share one look, one Node install and one pipe install.
const prepared = new Map<string, Promise<HostRuntime>>();

export async function prepareHost(o: PrepareOptions): Promise<HostRuntime> {
  const id = JSON.stringify([o.target.user, o.target.address, o.target.port, o.root, o.pipePath, o.nodeVersion, o.nodeDistUrl, o.gpu]);
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
      `host ${o.where} (${gpuList}) cannot compute on a GPU: ${runtime.cpuReason}`,
      '`gpu: required` on the provision stage; set `gpu: auto` to run on its CPU anyway',
    );
  }
  if (runtime.cpuReason) o.log.warn(`host ${o.where} has ${gpuList} but this stage computes on its CPU: ${runtime.cpuReason}`);
  return runtime;
}

async function prepare(o: PrepareOptions): Promise<HostRuntime> {
  const version = o.nodeVersion ?? NODE_VERSION;
  const lines: string[] = [];
  const r = await sshRun(o.target, probeScript(o.root, version), { signal: o.signal, onLine: (l) => lines.push(l) });
  if (r.exitCode === 255) throw o.lost('looking at the host');
  const probe = parseProbe(lines);
  const nodeBinDir = await nodeFor(o, probe, version);
  const gpuMode = o.gpu ?? 'auto';
  const variant = probe.gpus.length && gpuMode !== 'cpu' ? 'cuda12' : 'cpu';
  const installed = o.pipePath ? undefined : await installPipe({ ...o, ...(nodeBinDir ? { nodeBinDir } : {}) }, variant);
  const bin = installed?.bin ?? path.posix.join(o.pipePath!, 'bin/pipe.js');

  let cpuReason: string | undefined;
  if (gpuMode === 'required' && !probe.gpus.length) cpuReason = 'nvidia-smi lists no GPU on the host';
  else if (probe.gpus.length && gpuMode !== 'cpu') {
    if (installed && !installed.cudaProvider) {
      cpuReason = installed.cudaFailed
        ? `ONNX Runtime's CUDA provider could not be installed (${installed.cudaFailed})`
        : "ONNX Runtime's CUDA provider is not installed";
    } else if (!probe.cuda12)
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
  return { bin, env, gpus: probe.gpus, ...(cpuReason ? { cpuReason } : {}) };
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
