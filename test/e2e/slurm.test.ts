// Stages as jobs on a real one-node Slurm cluster (test/servers/slurm.ts): the same artifact as a
// local run, a failing job, a job past its time limit, Ctrl-C (scancel), a requeue, a re-run that
// finds its job still queued, a sweep fanned out as concurrent jobs, and the login node reached
// over the real loopback sshd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rig, REPO, collect, runTwoClonesAtOnce, waitForStderr as waitFor } from './rig.js';
import { slurmPipeline, type SlurmPipelineOptions } from '../helpers/slurm-pipeline.js';
import { startSlurm, slurmUnavailable, type Slurm } from '../servers/slurm.js';
import { startSshd, sshdUnavailable } from '../servers/sshd.js';

const skip = slurmUnavailable();
let slurm: Slurm;

before(async () => {
  if (!skip) slurm = await startSlurm();
});
after(async () => {
  await slurm?.close();
});

// The cluster's "shared filesystem" is this disk: pipe's workspace there, outside the project.
const workspaces: string[] = [];
after(async () => {
  for (const w of workspaces) await rm(w, { recursive: true, force: true });
});

async function setup(opts: SlurmPipelineOptions = {}): Promise<Rig> {
  const rig = await Rig.create();
  const workspace = await mkdtemp(path.join(os.tmpdir(), 'pipe-slurm-ws-'));
  workspaces.push(workspace);
  await rig.write('notes.txt', 'project file\n');
  await rig.write('p.yaml', slurmPipeline(workspace, opts));
  return rig;
}

/** The workspace of a rig's pipeline (its provision stage's remote_dir). */
async function workspaceOf(rig: Rig): Promise<string> {
  return /remote_dir: (\S+)/.exec(await rig.read('p.yaml'))![1]!;
}

const run = (rig: Rig, args: string[]) => rig.run(args, slurm.env());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function jobState(id: string): string {
  return /JobState=(\S+)/.exec(slurm.cmd(['scontrol', 'show', 'job', '-o', id]))?.[1] ?? 'gone';
}

function queued(): string[] {
  return slurm.cmd(['squeue', '-h', '-o', '%i|%j|%T']).trim().split('\n').filter(Boolean);
}

async function metaOf(rig: Rig, stage: string): Promise<Record<string, any>> {
  const entry = path.dirname(await realpath(rig.path(`.pipe/latest/cluster/${stage}`)));
  return JSON.parse(await readFile(path.join(entry, 'meta.json'), 'utf8')) as Record<string, any>;
}

/**
 * Requeues a running job and lets it start again at once. Slurm holds a requeued job (BeginTime)
 * for a reason: slurmd revokes the killed attempt's launch credential with one-second resolution,
 * and a relaunch within that second fails ("Job credential revoked", exit 1:0). So the release
 * comes in the next second after the job is back in the queue.
 */
async function requeueAndRelease(id: string): Promise<void> {
  slurm.cmd(['scontrol', 'requeue', id]);
  for (let i = 0; i < 50 && jobState(id) !== 'PENDING'; i++) await sleep(100);
  await sleep(1100);
  slurm.cmd(['scontrol', 'update', `JobId=${id}`, 'StartTime=now']);
}

// The tests mostly wait on Slurm: they share the cluster at once.
describe('Slurm', { concurrency: 4 }, () => {
  test(
    'a stage run as a Slurm job gives the artifact of a local run (same key, same manifest); its job id is in meta.json and the run record',
    { skip },
    async () => {
      const rig = await setup();
      const local = await setup({ slurm: false });
      try {
        const r = await run(rig, ['run', 'p.yaml']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /cluster \| Slurm cluster pipetest via this machine; partition debug \(default\): up/);
        const id = /train \| submitted Slurm job (\d+) to cluster pipetest/.exec(r.stderr)?.[1];
        assert.ok(id, r.stderr);
        assert.match(r.stderr, new RegExp(`train \\| Slurm job ${id} (running|ran) on ${slurm.node}`));
        assert.match(r.stderr, /train \| job-log-line/, 'the job log is streamed back');
        // No GPU asked: no probe job, and nothing about GPUs recorded.
        assert.doesNotMatch(r.stderr, /GPU probe|probe job/);
        assert.doesNotMatch(slurm.cmd(['scontrol', 'show', 'job', '-o']), /JobName=pipe-gpu-probe/);
        assert.equal(JSON.parse(await rig.read('.pipe/latest/cluster/cluster/host.json')).slurm.gpuProbe, undefined);
        assert.equal(await rig.read('.pipe/latest/cluster/after/copy.txt'), 'HELLO WORLD\nproject file\n');

        const meta = await metaOf(rig, 'train');
        assert.equal(meta['info'].slurm.jobId, id);
        assert.equal(meta['info'].slurm.state, 'COMPLETED');
        assert.equal(meta['info'].slurm.node, slurm.node);
        const finish = (await rig.runRecords()).flat().find((e) => e['type'] === 'stage-finish' && e['stage'] === 'train');
        assert.equal(finish?.['slurmJob'], `pipetest:${id}`);

        assert.equal((await run(local, ['run', 'p.yaml'])).code, 0);
        const manifest = async (x: Rig): Promise<string> =>
          readFile(path.join(path.dirname(await realpath(x.path('.pipe/latest/cluster/train'))), 'manifest.json'), 'utf8');
        const keyOf = async (x: Rig): Promise<string> => path.basename(path.dirname(await realpath(x.path('.pipe/latest/cluster/train'))));
        assert.equal(await keyOf(rig), await keyOf(local));
        assert.equal(await manifest(rig), await manifest(local));

        // The job dir is cleaned after the fetch, and a second run is a cache hit (no job).
        assert.deepEqual(await readdir(path.join(await workspaceOf(rig), 'jobs')), []);
        const again = await run(rig, ['run', 'p.yaml']);
        assert.equal(again.code, 0, again.stderr);
        assert.doesNotMatch(again.stderr, /submitted Slurm job/);
      } finally {
        await rig.cleanup();
        await local.cleanup();
      }
    },
  );

  test("a Slurm job that fails: the stage fails with the command's error and the job id; downstream is skipped", { skip }, async () => {
    const rig = await setup({ work: 'echo about-to-fail; exit 3' });
    try {
      const r = await run(rig, ['run', 'p.yaml']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`✗ train command failed \\(exit code 3\\) \\(Slurm job \\d+ on ${slurm.node}\\)`));
      assert.match(r.stderr, /train \| about-to-fail/);
      assert.match(r.stderr, /- after skipped: upstream train failed/);
      assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
    } finally {
      await rig.cleanup();
    }
  });

  test('a Slurm job past its time limit is killed by Slurm and the stage says so', { skip, timeout: 90_000 }, async () => {
    // Slurm's smallest `time` is one minute; once the job runs its limit is cut to 0, which
    // slurmctld's time-limit sweep (every 30 s) enforces: the same TIMEOUT a long stage gets.
    const rig = await setup({ work: 'echo started; sleep 300', hostParams: ['time: "1"'] });
    try {
      const child = rig.spawn(['run', 'p.yaml'], slurm.env());
      const done = collect(child);
      const [, id] = await waitFor(child, /Slurm job (\d+) running on/);
      slurm.cmd(['scontrol', 'update', `JobId=${id}`, 'TimeLimit=0']);
      const r = await done;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`✗ train Slurm job ${id} on ${slurm.node} exceeded its time limit \\([^)]+\\) and was killed`));
      assert.equal(jobState(id!), 'TIMEOUT');
    } finally {
      await rig.cleanup();
    }
  });

  test('Ctrl-C cancels the Slurm job (scancel): it is gone from squeue', { skip }, async () => {
    const rig = await setup({ work: 'echo started; sleep 300' });
    try {
      const child = rig.spawn(['run', 'p.yaml'], slurm.env());
      const done = collect(child);
      const [, id] = await waitFor(child, /Slurm job (\d+) running on/);
      child.kill('SIGINT');
      const r = await done;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, new RegExp(`train \\| cancelled Slurm job ${id} \\(scancel\\)`));
      for (let i = 0; i < 50 && jobState(id!) === 'COMPLETING'; i++) await sleep(100);
      assert.equal(jobState(id!), 'CANCELLED');
      assert.deepEqual(
        queued().filter((l) => l.startsWith(`${id}|`)),
        [],
      );
    } finally {
      await rig.cleanup();
    }
  });

  test("pipe hosts FILE lists the pipeline's queued and running jobs; pipe down FILE cancels them (and the waiting run says so)", { skip }, async () => {
    const rig = await setup({ work: 'echo started; sleep 300' });
    try {
      const child = rig.spawn(['run', 'p.yaml'], slurm.env());
      const done = collect(child);
      const [, id] = await waitFor(child, /Slurm job (\d+) running on/);
      const hosts = await run(rig, ['hosts', 'p.yaml']);
      assert.equal(hosts.code, 0, hosts.stderr);
      assert.match(hosts.stdout, new RegExp(`slurm:${id} +cluster +train +running +slurm job \\(debug\\)`));
      assert.match(hosts.stdout, /1 queued or running: `pipe down FILE` cancels them/);
      const down = await run(rig, ['down', 'p.yaml']);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, new RegExp(`cancelled Slurm job ${id} \\(stage train, was running\\) on this machine`));
      const r = await done;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`✗ train Slurm job ${id} on ${slurm.node} was cancelled`));
      assert.match((await run(rig, ['hosts', 'p.yaml'])).stdout, /no queued or running Slurm jobs of pipeline cluster/);
    } finally {
      await rig.cleanup();
    }
  });

  test('a requeued Slurm job (scontrol requeue) is followed through its second attempt to the result', { skip }, async () => {
    const rig = await setup({ work: 'echo attempt; sleep 3; tr a-z A-Z < "$PIPE_IN_SRC/data.txt" > out.txt' });
    try {
      const child = rig.spawn(['run', 'p.yaml'], slurm.env());
      const done = collect(child);
      const [, id] = await waitFor(child, /Slurm job (\d+) running on/);
      await requeueAndRelease(id!);
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`train \\| Slurm job ${id} was requeued \\(restart 1\\): it runs again from the start`));
      assert.match(r.stderr, /train \| attempt/);
      assert.equal(await rig.read('.pipe/latest/cluster/train/out.txt'), 'HELLO WORLD\n');
      assert.equal((await metaOf(rig, 'train'))['info'].slurm.restarts, 1);
    } finally {
      await rig.cleanup();
    }
  });

  test("a requeued job whose second attempt dies without a word is not reported with the killed first attempt's error", { skip }, async () => {
    // The first attempt runs until the requeue kills it (its pipe exec says "interrupted"); the
    // second kills its own pipe exec (the command's parent) at once, so it leaves no error line.
    const rig = await setup({ work: 'if [ "$SLURM_RESTART_COUNT" = 1 ]; then kill -9 $PPID; sleep 5; fi; echo attempt; sleep 60' });
    try {
      const child = rig.spawn(['run', 'p.yaml'], slurm.env());
      const done = collect(child);
      // Its line arrives while the job runs (the log's newest line is not held back for the next one).
      const [, id] = await waitFor(child, /submitted Slurm job (\d+)[\s\S]*train \| attempt/);
      await requeueAndRelease(id!);
      const r = await done;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`train \\| Slurm job ${id} was requeued \\(restart 1\\)`));
      assert.match(r.stderr, new RegExp(`✗ train Slurm job ${id} on ${slurm.node} failed \\(FAILED, exit code `));
      assert.doesNotMatch(r.stderr, /✗ train interrupted/);
    } finally {
      await rig.cleanup();
    }
  });

  test('a run that loses its connection leaves the job running; a re-run finds it by its key and waits for it', { skip }, async () => {
    // The job waits for a file the test writes once the re-run has found it.
    const rig = await setup({ work: 'echo started; while [ ! -f GO_FILE ]; do sleep 0.2; done; tr a-z A-Z < "$PIPE_IN_SRC/data.txt" > out.txt' });
    try {
      await rig.write('p.yaml', (await rig.read('p.yaml')).replace('GO_FILE', rig.path('go')));
      const child = rig.spawn(['run', 'p.yaml'], slurm.env());
      const done = collect(child);
      const [, id] = await waitFor(child, /Slurm job (\d+) running on/);
      child.kill('SIGKILL');
      await done;
      assert.equal(jobState(id!), 'RUNNING');
      const again = rig.spawn(['run', 'p.yaml'], slurm.env());
      const finished = collect(again);
      await waitFor(again, new RegExp(`train \\| Slurm job ${id} of an earlier run is still queued or running for this key: waiting for it`));
      await rig.write('go', '');
      const r = await finished;
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /submitted Slurm job/);
      assert.equal(await rig.read('.pipe/latest/cluster/train/out.txt'), 'HELLO WORLD\n');
    } finally {
      await rig.cleanup();
    }
  });

  test(
    'a sweep of 4 on Slurm with --sweep-parallel 2: two jobs run at once (by their own start and end times), the shared upstream runs once',
    { skip, timeout: 120_000 },
    async () => {
      const rig = await setup({
        params: 'params:\n  lr: 1',
        work: 'sleep 3; echo "lr=${params.lr}" > out.txt',
      });
      try {
        await rig.write(
          'p.yaml',
          (await rig.read('p.yaml')).replace("run: 'echo hello world > data.txt'", `run: 'echo run >> "$COUNTERS/data"; echo hello world > data.txt'`),
        );
        const r = await run(rig, ['run', 'p.yaml', '--sweep', 'params.lr=1,2,3,4', '--sweep-parallel', '2']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /sweep: 4 combinations, up to 2 at once as Slurm jobs/);
        assert.equal(await rig.count('data'), 1, 'the shared upstream ran once');
        // Every train job's own start and end (Slurm's clock, 1 s resolution) from its meta.json.
        const spans: { start: number; end: number; lr: string }[] = [];
        for (const key of await readdir(rig.path('.pipe/cache'))) {
          const meta = JSON.parse(await readFile(rig.path('.pipe/cache', key, 'meta.json'), 'utf8').catch(() => '{}')) as Record<string, any>;
          if (meta['stage'] !== 'train') continue;
          const s = meta['info'].slurm;
          spans.push({ start: Date.parse(s.startTime), end: Date.parse(s.endTime), lr: await readFile(rig.path('.pipe/cache', key, 'data/out.txt'), 'utf8') });
        }
        assert.deepEqual(spans.map((s) => s.lr.trim()).sort(), ['lr=1', 'lr=2', 'lr=3', 'lr=4']);
        const overlapAt = (t: number): number => spans.filter((s) => s.start <= t && t < s.end).length;
        const most = Math.max(...spans.map((s) => overlapAt(s.start)));
        assert.equal(most, 2, `two jobs at once, never more: ${JSON.stringify(spans)}`);
      } finally {
        await rig.cleanup();
      }
    },
  );

  test(
    'two clones of one pipeline run the same stage as Slurm jobs in one workspace at once: each has its own job, project files and output',
    { skip },
    async () => {
      const a = await setup();
      const b = await Rig.create();
      try {
        // Each job waits until both have started, then reads its clone's notes.txt and writes its
        // output: one job folder or project folder for both would show in either.
        const workspace = await workspaceOf(a);
        const [ra, rb] = await runTwoClonesAtOnce([a, b], path.join(workspace, 'go'), (work) => slurmPipeline(workspace, { work }), slurm.env());
        assert.equal(ra.code, 0, ra.stderr);
        assert.equal(rb.code, 0, rb.stderr);
        assert.equal(await a.read('.pipe/latest/cluster/after/copy.txt'), 'HELLO WORLD\nclone a\n');
        assert.equal(await b.read('.pipe/latest/cluster/after/copy.txt'), 'HELLO WORLD\nclone b\n');
        assert.deepEqual(await readdir(path.join(workspace, 'jobs')), []);
      } finally {
        await a.cleanup();
        await b.cleanup();
      }
    },
  );

  test('the cluster reached through its login node over ssh (the real loopback sshd)', { skip: skip ?? sshdUnavailable() }, async () => {
    const sshd = await startSshd({ env: slurm.env() });
    const rig = await setup({ login: sshd, hostParams: [`pipe_path: ${REPO}`] });
    try {
      const r = await run(rig, ['run', 'p.yaml']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /cluster \| SSH answers on the login node 127\.0\.0\.1/);
      assert.match(r.stderr, /cluster \| Slurm cluster pipetest via root@127\.0\.0\.1/);
      assert.match(r.stderr, /train \| submitted Slurm job \d+ to cluster pipetest/);
      assert.equal(await rig.read('.pipe/latest/cluster/after/copy.txt'), 'HELLO WORLD\nproject file\n');
    } finally {
      await sshd.close();
      await rig.cleanup();
    }
  });
});
