// Runs that share an ssh host (the real loopback sshd): two clones of one pipeline running the
// same stage (same key) on one host at once, each with its own project files and its own job;
// and the calls of a run sharing one ssh connection (ControlMaster), which a master killed
// outright or a host's limit on sessions per connection does not break.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rig, REPO, runTwoClonesAtOnce } from './rig.js';
import { pipeline } from '../helpers/remote-host-pipeline.js';
import { startSshd, sshdUnavailable, type Sshd } from '../servers/sshd.js';
import { destination, rsyncUp, sshOptions, sshRun, type SshTarget } from '../../runner/hosts/ssh.js';
import { controlDir } from '../../runner/hosts/ssh-share.js';

const skip = sshdUnavailable();

const keyOf = async (r: Rig, stage: string): Promise<string> => path.basename(path.dirname(await readlink(r.path(`.pipe/latest/remote/${stage}`))));

test(
  "two clones of one pipeline run the same stage on one ssh host at once: each reads its own project files and gets its own output, neither removes the other's job",
  { skip },
  async () => {
    const sshd = await startSshd();
    const workspace = await mkdtemp(path.join(os.tmpdir(), 'pipe-shared-ws-'));
    const a = await Rig.create();
    const b = await Rig.create();
    try {
      // The stage waits for a file the test writes once both runs have started theirs; then it
      // reads its project's notes.txt (the other clone's sync of the same project name meanwhile
      // would show there) and writes its output (the other's job starting in the same folder
      // would have emptied it).
      const [ra, rb] = await runTwoClonesAtOnce([a, b], path.join(workspace, 'go'), (work) => pipeline(sshd, workspace, { pipePath: REPO, work }));
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(rb.code, 0, rb.stderr);
      assert.equal(await keyOf(a, 'train'), await keyOf(b, 'train'), 'one stage key: the same job for the host');
      assert.equal(await a.read('.pipe/latest/remote/train/out.txt'), 'HELLO WORLD\nclone a\n');
      assert.equal(await b.read('.pipe/latest/remote/train/out.txt'), 'HELLO WORLD\nclone b\n');
      assert.equal(await a.read('.pipe/latest/remote/shout/loud.txt'), 'HELLO WORLD\nCLONE A\n');
      // Each clone has its own project folder on the host; every job folder was removed after its fetch.
      assert.deepEqual(
        (await readdir(path.join(workspace, 'projects'))).map((n) => n.replace(/-[0-9a-f]{16}$/, '-ID')),
        ['remote-ID', 'remote-ID'],
      );
      assert.deepEqual(await readdir(path.join(workspace, 'jobs')), []);
    } finally {
      await sshd.close();
      await a.cleanup();
      await b.cleanup();
      await rm(workspace, { recursive: true, force: true });
    }
  },
);

/** The pid of the master serving `t`, if one runs (`ssh -O check`). */
function masterPid(t: SshTarget): number | undefined {
  const r = spawnSync('ssh', [...sshOptions(t), '-O', 'check', destination(t)], { encoding: 'utf8' });
  const pid = /Master running \(pid=(\d+)\)/.exec(r.stderr)?.[1];
  return pid ? Number(pid) : undefined;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function targetOf(sshd: Sshd, knownHosts: string): SshTarget {
  return { address: '127.0.0.1', user: 'root', port: sshd.port, key: sshd.userKey, knownHosts };
}

test(
  'the calls of stages on an ssh host share one connection, which outlives the run without holding it; a master killed outright is replaced; the sockets are private',
  { skip },
  async () => {
    const sshd = await startSshd();
    const rig = await Rig.create();
    try {
      await rig.write('notes.txt', 'project file\n');
      await rig.write('p.yaml', pipeline(sshd, rig.path('ws'), { pipePath: REPO }));
      const r = await rig.run(['run', 'p.yaml']);
      assert.equal(r.code, 0, r.stderr);
      // Two placed stages, each a dozen ssh and rsync calls (hello, probe, syncs, job, fetch,
      // cleanup): one connection, where each call used to open its own.
      assert.equal(sshd.accepted(), 1, `connections accepted by the host: ${sshd.accepted()}`);
      const folder = controlDir()!;
      assert.equal((await stat(folder)).mode & 0o777, 0o700);
      assert.ok(!folder.includes(rig.path('.pipe')));
      // The run has exited, its master lives on for the next one (ControlPersist).
      const t = targetOf(sshd, path.join(await import('node:fs/promises').then((f) => f.realpath(rig.path('.pipe'))), 'ssh', 'known_hosts'));
      const master = masterPid(t);
      assert.ok(master, 'a master serves the next run');

      // Killed outright (a crash, the OOM killer): its socket stays behind, unanswered.
      process.kill(master, 'SIGKILL');
      for (let i = 0; i < 50 && alive(master); i++) await new Promise((res) => setTimeout(res, 100));
      assert.ok((await readdir(folder)).length > 0, 'the dead master left its socket');
      const again = await rig.run(['run', 'p.yaml', '--only', 'train', '--force']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(sshd.accepted(), 2, 'one new connection: the stale socket was replaced by a new master');
      const next = masterPid(t);
      assert.ok(next && next !== master);

      // The host going away ends its master: nothing is left running here.
      await sshd.close();
      for (let i = 0; i < 50 && alive(next); i++) await new Promise((res) => setTimeout(res, 100));
      assert.ok(!alive(next), 'the master ended with its connection');
    } finally {
      await sshd.close();
      await rig.cleanup();
    }
  },
);

test('a host that allows one session per connection: a call the shared connection is refused is made on a connection of its own', { skip }, async () => {
  const sshd = await startSshd({ config: ['MaxSessions 1'] });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-share-'));
  try {
    const t = targetOf(sshd, path.join(dir, 'known_hosts'));
    assert.equal((await sshRun(t, 'true')).exitCode, 0);
    assert.ok(masterPid(t), 'a master runs');
    // One session held open through the master, and a second call beside it.
    const lines: string[] = [];
    const held = sshRun(t, 'sleep 2; echo held', { onLine: (l) => lines.push(l) });
    await new Promise((res) => setTimeout(res, 700));
    const beside = await sshRun(t, 'echo beside', { onLine: (l) => lines.push(l) });
    assert.equal(beside.exitCode, 0, beside.stderr);
    assert.equal((await held).exitCode, 0);
    assert.deepEqual(lines, ['beside', 'held']);
    assert.equal(sshd.accepted(), 2, 'the refused call opened a connection of its own');
  } finally {
    await sshd.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a host without flock (macOS has none) syncs a folder unlocked rather than failing', { skip }, async () => {
  const sshd = await startSshd({ hide: ['/usr/bin/flock'] });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-noflock-'));
  try {
    const t = targetOf(sshd, path.join(dir, 'known_hosts'));
    assert.notEqual((await sshRun(t, 'flock -V')).exitCode, 0, 'flock is hidden on the host');
    await writeFile(path.join(dir, 'a.txt'), 'sent\n');
    await rsyncUp(t, dir, path.join(dir, 'there'), { delete: true, exclude: ['there'], lock: path.join(dir, 'sync.lock') });
    assert.deepEqual(await readdir(path.join(dir, 'there')), ['a.txt', 'known_hosts']);
  } finally {
    await sshd.close();
    await rm(dir, { recursive: true, force: true });
  }
});
