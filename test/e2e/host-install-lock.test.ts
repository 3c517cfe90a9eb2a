// Two pipe runs installing onto the same host at once (two clones of a project, two CI jobs, one
// GPU box) take turns: the host's install lock (runner/hosts/install-lock.ts) lets one sync and
// `npm ci` while the other waits and then finds it installed. A run killed (kill -9) while it
// holds the lock frees it: its ssh session ends with it, and the waiting run goes on. Each test
// installs pipe on the loopback host for real (1.5 min on 2 busy cores), hence the long timeouts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { lockScript } from '../../runner/hosts/install-lock.js';
import { killGroup, spawnPipe, waitGroupGone, type Spawned } from './faults.js';
import { Rig } from './rig.js';
import { pipeline } from '../helpers/remote-host-pipeline.js';
import { startSshd, sshdUnavailable } from '../servers/sshd.js';

const skip = sshdUnavailable();
const WAITING = /train \| waiting for another pipe's install on 127\.0\.0\.1 to finish \(pipe pid \d+ on \S+ since \S+\)/;
const INSTALLED = /installed pipe's dependencies on 127\.0\.0\.1/g;

/** Resolves with the first of `runs` whose stderr matches `re`. */
async function firstMatching(runs: readonly Spawned[], re: RegExp, timeoutMs: number): Promise<number | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const i = runs.findIndex((r) => re.test(r.stderr()));
    if (i >= 0) return i;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/**
 * Two projects placing stages on one host dir (outside both: each run syncs its project there),
 * both run at once; `check` judges the two runs (a's first). Their data differ: the same stage
 * key run by two runs at once on one host dir would share its job folder there (not what this
 * test is about).
 */
async function twoRunsOnOneHost(check: (runs: Spawned[], rigs: readonly [Rig, Rig]) => Promise<void>): Promise<void> {
  const sshd = await startSshd();
  const a = await Rig.create();
  const b = await Rig.create();
  try {
    const ws = await mkdtemp(path.join(os.tmpdir(), 'pipe-shared-host-'));
    after(() => rm(ws, { recursive: true, force: true }));
    for (const rig of [a, b]) await rig.write('notes.txt', 'project file\n');
    await a.write('p.yaml', pipeline(sshd, ws));
    await b.write('p.yaml', pipeline(sshd, ws).replace('echo hello world > data.txt', 'echo hello there > data.txt'));
    await check([spawnPipe(a.dir, ['run', 'p.yaml']), spawnPipe(b.dir, ['run', 'p.yaml'])], [a, b]);
  } finally {
    await sshd.close();
    await a.cleanup();
    await b.cleanup();
  }
}

test('the install lock script waits for the holder and says whom it waits for', () => {
  const s = lockScript('/srv/pipe', "pipe pid 1 on box since now's", 60);
  assert.match(s, /exec 9>>'\/srv\/pipe\/install\.lock'/);
  assert.match(s, /if ! flock -n 9; then echo "waiting=\$\(cat '\/srv\/pipe\/install\.lock\.owner'/);
  assert.match(s, /flock -w 60 9/);
  assert.match(s, /echo 'pipe pid 1 on box since now'\\''s' > '\/srv\/pipe\/install\.lock\.owner'/);
  assert.match(s, /exec cat >\/dev\/null$/, 'held until stdin closes');
});

test('two runs installing pipe onto the same host at once: one installs, the other waits for it and reuses it', { skip, timeout: 600_000 }, async () => {
  await twoRunsOnOneHost(async (runs, [a, b]) => {
    const [ra, rb] = await Promise.all(runs.map((r) => r.done));
    const both = `${ra!.stderr}\n----\n${rb!.stderr}`;
    assert.equal(ra!.code, 0, both);
    assert.equal(rb!.code, 0, both);
    assert.equal(both.match(INSTALLED)?.length, 1, `one install for both runs:\n${both}`);
    assert.equal([ra!, rb!].filter((r) => WAITING.test(r.stderr)).length, 1, `the other run waited:\n${both}`);
    assert.equal(await a.read('.pipe/latest/remote/shout/loud.txt'), 'HELLO WORLD\nPROJECT FILE\n');
    assert.equal(await b.read('.pipe/latest/remote/shout/loud.txt'), 'HELLO THERE\nPROJECT FILE\n');
  });
});

test('a run killed while it holds the host install lock frees it: the waiting run installs and finishes', { skip, timeout: 600_000 }, async () => {
  await twoRunsOnOneHost(async (runs, [a, b]) => {
    const waiter = await firstMatching(runs, WAITING, 120_000);
    assert.ok(waiter !== undefined, `neither run waited:\n${runs.map((r) => r.stderr()).join('\n----\n')}`);
    const holder = runs[1 - waiter]!;
    killGroup(holder.child.pid);
    await holder.done;
    assert.ok(await waitGroupGone(holder.child.pid, 10_000));
    const r = await runs[waiter]!.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await [a, b][waiter]!.read('.pipe/latest/remote/shout/loud.txt'), ['HELLO WORLD\nPROJECT FILE\n', 'HELLO THERE\nPROJECT FILE\n'][waiter]);
  });
});
