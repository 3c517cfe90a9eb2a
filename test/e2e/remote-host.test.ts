// A stage placed on another host with `runs_on`, over a real sshd on loopback: a second
// directory plays the remote machine's workspace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { Rig, REPO, collect } from './rig.js';
import { pipeline } from '../helpers/remote-host-pipeline.js';
import { startSshd, sshdUnavailable } from '../servers/sshd.js';

const skip = sshdUnavailable();

test('runs_on without pipe_path: pipe installs itself on the host once, the artifact equals a local run, nothing is sent twice', { skip }, async () => {
  const sshd = await startSshd();
  const rig = await Rig.create();
  const local = await Rig.create();
  try {
    const workspace = rig.path('remote-workspace');
    await rig.write('notes.txt', 'project file\n');
    await rig.write('p.yaml', pipeline(sshd, workspace));
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /train \| running on 127\.0\.0\.1/);
    assert.match(r.stderr, /train \| remote-log-line/);
    // The default path: pipe synced and installed on the host, once for both placed stages.
    assert.equal(r.stderr.match(/installed pipe's dependencies on 127\.0\.0\.1/g)?.length, 1, r.stderr);
    assert.equal(await rig.read('.pipe/latest/remote/shout/loud.txt'), 'HELLO WORLD\nPROJECT FILE\n');
    assert.equal(await rig.read('.pipe/latest/remote/after/copy.txt'), 'HELLO WORLD\nproject file\n');
    // The work happened in the remote workspace; its job dir is cleaned after the fetch.
    assert.ok((await readdir(path.join(workspace, 'store'))).some((n) => n.endsWith('.complete')));
    assert.deepEqual(await readdir(path.join(workspace, 'jobs')), []);

    // The same pipeline without placement gives the same key and the same bytes.
    await local.write('notes.txt', 'project file\n');
    await local.write('p.yaml', pipeline(sshd, workspace, { remote: false }).replace('name: remote', 'name: remote'));
    assert.equal((await local.run(['run', 'p.yaml'])).code, 0);
    const keyOf = async (r: Rig): Promise<string> => path.basename(path.dirname(await readlink(r.path('.pipe/latest/remote/train'))));
    const manifest = async (r: Rig): Promise<string> => readFile(path.join(r.path('.pipe/cache'), await keyOf(r), 'manifest.json'), 'utf8');
    assert.equal(await manifest(rig), await manifest(local));

    // Forced again: the input is already on the host, so nothing is sent.
    const again = await rig.run(['run', 'p.yaml', '--only', 'train', '--force']);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /sending input/);
    // A later run reuses the install.
    assert.doesNotMatch(again.stderr, /installed pipe's dependencies/);
  } finally {
    await sshd.close();
    await rig.cleanup();
    await local.cleanup();
  }
});

test('runs_on: the host dropping mid-stage fails the stage clearly and leaves the cache clean', { skip }, async () => {
  const sshd = await startSshd();
  const rig = await Rig.create();
  try {
    await rig.write('notes.txt', 'x\n');
    await rig.write('p.yaml', pipeline(sshd, rig.path('ws'), { slow: true, pipePath: REPO }));
    const child = rig.spawn(['run', 'p.yaml']);
    const done = collect(child);
    await new Promise<void>((resolve) => child.stderr!.on('data', (d: Buffer) => d.toString().includes('train | started') && resolve()));
    sshd.killAll();
    const r = await done;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /✗ train connection to host 127\.0\.0\.1 lost while the stage ran/);
    assert.match(r.stderr, /- after skipped: upstream train failed/);
    assert.deepEqual(await readdir(rig.path('.pipe/tmp')), []);
    const verify = await rig.run(['verify', 'p.yaml', '--all']);
    assert.match(verify.stdout, /0 corrupt/);
    const status = JSON.parse((await rig.run(['status', 'p.yaml', '--json'])).stdout) as { stages: { stage: string; state: string }[] };
    assert.equal(status.stages.find((s) => s.stage === 'train')?.state, 'never-run');
  } finally {
    await sshd.close();
    await rig.cleanup();
  }
});

test('runs_on a host whose Node has no npm: pipe sets out to install its own Node, and an unreachable download is a clear message', { skip }, async () => {
  const sshd = await startSshd({ hide: ['/usr/bin/npm'] });
  const rig = await Rig.create();
  try {
    await rig.write('notes.txt', 'x\n');
    // Nothing listens on port 9: the download fails at once (and offline).
    await rig.write('p.yaml', pipeline(sshd, rig.path('ws'), { hostParams: ['node_dist_url: http://127.0.0.1:9/dist'] }));
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /train \| host 127\.0\.0\.1 has Node v[\d.]+ without npm: installing Node v[\d.]+ \(x64\) from http:\/\/127\.0\.0\.1:9\/dist/);
    assert.match(
      r.stderr,
      /✗ train installing Node on 127\.0\.0\.1 failed: downloading http:\/\/127\.0\.0\.1:9\/dist\/v[\d.]+\/SHASUMS256\.txt failed \(exit \d+\) \(set `node_dist_url`/,
    );
    assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
  } finally {
    await sshd.close();
    await rig.cleanup();
  }
});
