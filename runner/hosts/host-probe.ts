// What a host offers pipe, asked in one ssh round trip: its architecture, a working Node (and
// npm), a Node pipe bootstrapped there earlier, its NVIDIA GPUs (`nvidia-smi -L`) and where the
// CUDA 12 / cuDNN 9 libraries that ONNX Runtime's CUDA provider links against live (the GPU AMIs
// default to CUDA 13, with 12.x kept beside it).
import { shq } from './ssh.js';

/** The oldest Node major pipe runs on (package.json engines). */
export const MIN_NODE_MAJOR = 20;
/** The Node LTS pipe installs for itself on a host without a suitable one. */
export const NODE_VERSION = '24.22.3'; // the LTS the CI suite also runs on
export const NODE_DIST_URL = 'https://nodejs.org/dist';

export interface HostProbe {
  /** Node's name for the CPU architecture ('x64', 'arm64'), or uname's when Node has none. */
  readonly arch: string;
  readonly os: string;
  /** `node -v` of the node on PATH, when it runs. */
  readonly node?: string;
  readonly npm: boolean;
  /** bin/ of a Node pipe installed under its directory, when present and working. */
  readonly bootstrapped?: string;
  /** GPU names from `nvidia-smi -L`. */
  readonly gpus: readonly string[];
  /** Folders holding libcudart.so.12 and libcudnn.so.9, when found. */
  readonly cuda12?: string;
  readonly cudnn?: string;
  /** The pipe at `pipe_path` has ONNX Runtime's CUDA provider (asked only with a pipe_path). */
  readonly pipeCuda: boolean;
}

const ARCH: Record<string, string> = { x86_64: 'x64', amd64: 'x64', aarch64: 'arm64', arm64: 'arm64' };

/** The folder of the Node pipe installs under its remote root. */
export function nodeHome(root: string, version: string, arch: string): string {
  return `${root}/node/node-v${version}-linux-${arch}`;
}

/**
 * The GPU part of the probe: `gpu=<name>` per GPU `nvidia-smi -L` lists, and the folders of the
 * CUDA 12 / cuDNN 9 libraries. Also run alone on a Slurm compute node (slurm/gpu-probe.ts), where
 * the login node's answer would say nothing about the GPUs a job gets.
 */
export function gpuProbeLines(): string[] {
  const libDirs =
    '/usr/local/cuda-12*/lib64 /usr/local/cuda-12*/lib /usr/local/cuda-12*/targets/*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64';
  return [
    'command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | sed -n "s/^GPU [0-9]*: \\(.*\\) (UUID.*$/gpu=\\1/p; s/^GPU [0-9]*: \\([^(]*\\)$/gpu=\\1/p"',
    `for d in ${libDirs}; do [ -e "$d/libcudart.so.12" ] && echo "cuda12=$d"; [ -e "$d/libcudnn.so.9" ] && echo "cudnn=$d"; done`,
  ];
}

/** Where onnxruntime-node keeps the CUDA provider it downloads (linux x64 only), under a pipe installation. */
export const ORT_CUDA_LIB = 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so';

/** `pipePath`: an existing pipe installation, asked whether it has ONNX Runtime's CUDA provider. */
export function probeScript(root: string, version: string, pipePath?: string): string {
  return [
    'echo "os=$(uname -s)"',
    'echo "arch=$(uname -m)"',
    'v=$(node -v 2>/dev/null) && echo "node=$v"',
    'npm --version >/dev/null 2>&1 && echo "npm=yes"',
    `for b in ${shq(`${root}/node/node-v${version}-linux-`)}*/bin; do "$b/node" -v >/dev/null 2>&1 && echo "bootstrapped=$b"; done`,
    ...gpuProbeLines(),
    ...(pipePath ? [`[ -e ${shq(`${pipePath}/${ORT_CUDA_LIB}`)} ] && echo "pipe-cuda=yes"`] : []),
    'true',
  ].join('\n');
}

export function parseProbe(lines: readonly string[]): HostProbe {
  const get = (k: string): string[] => lines.filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1).trim());
  const uname = get('arch')[0] ?? '';
  const node = get('node')[0];
  const bootstrapped = get('bootstrapped')[0];
  const cuda12 = get('cuda12')[0];
  const cudnn = get('cudnn')[0];
  return {
    arch: ARCH[uname] ?? uname,
    os: get('os')[0] ?? '',
    ...(node ? { node } : {}),
    npm: get('npm').length > 0,
    ...(bootstrapped ? { bootstrapped } : {}),
    gpus: get('gpu').filter(Boolean),
    ...(cuda12 ? { cuda12 } : {}),
    ...(cudnn ? { cudnn } : {}),
    pipeCuda: get('pipe-cuda').length > 0,
  };
}

/** Whether the host's own Node can run pipe (and install it: npm is needed only without pipe_path). */
export function nodeSuitable(version: string | undefined): boolean {
  const major = Number(/^v?(\d+)\./.exec(version ?? '')?.[1]);
  return major >= MIN_NODE_MAJOR;
}

/**
 * Download the official release tarball for the host's architecture, check it against the
 * release's SHASUMS256.txt, unpack it into nodeHome. Errors are one stderr line starting "pipe: ".
 */
export function bootstrapScript(root: string, version: string, distUrl: string, arch: string): string {
  const name = `node-v${version}-linux-${arch}`;
  const base = `${distUrl.replace(/\/+$/, '')}/v${version}`;
  const fail = (msg: string): string => `{ echo ${shq(`pipe: ${msg}`)} >&2; exit 90; }`;
  return [
    `mkdir -p ${shq(`${root}/node`)} && cd ${shq(`${root}/node`)} || ${fail(`cannot create ${root}/node`)}`,
    'fetch() { if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 2 -o "$2" "$1"; elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"; else return 127; fi; }',
    `fetch ${shq(`${base}/SHASUMS256.txt`)} SHASUMS256.txt.part; rc=$?`,
    `[ $rc -eq 127 ] && ${fail('neither curl nor wget is installed, needed to download Node')}`,
    // The URL is checked by provision's schema (no quotes, $ or backslashes): safe in double quotes.
    `[ $rc -eq 0 ] || { echo "pipe: downloading ${base}/SHASUMS256.txt failed (exit $rc)" >&2; exit 90; }`,
    `want=$(awk '$2 == "${name}.tar.gz" { print $1 }' SHASUMS256.txt.part)`,
    `[ -n "$want" ] || ${fail(`${base}/SHASUMS256.txt does not list ${name}.tar.gz`)}`,
    `fetch ${shq(`${base}/${name}.tar.gz`)} ${name}.tar.gz.part || ${fail(`downloading ${base}/${name}.tar.gz failed`)}`,
    `got=$(sha256sum ${name}.tar.gz.part | cut -d' ' -f1)`,
    `if [ "$got" != "$want" ]; then rm -f ${name}.tar.gz.part; echo "pipe: ${name}.tar.gz from ${base} does not match its SHASUMS256.txt (expected $want, got $got)" >&2; exit 90; fi`,
    `rm -rf ${name}.part && mkdir ${name}.part && tar -xzf ${name}.tar.gz.part -C ${name}.part --strip-components=1 || ${fail(`unpacking ${name}.tar.gz failed`)}`,
    `${name}.part/bin/node -v >/dev/null 2>&1 || ${fail(`the downloaded ${name}/bin/node does not run on this host`)}`,
    `rm -rf ${name} && mv ${name}.part ${name} && rm -f ${name}.tar.gz.part SHASUMS256.txt.part`,
  ].join('\n');
}
