// `pipe gc` and old runs: the views and logs of each pipeline's runs beyond its newest N are
// removed, the run records (history) stay, and --dry-run only lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { Rig } from './rig.js';

const PIPELINE = `name: gcruns
stages:
  a:
    uses: command
    with: { workdir: out, run: "echo hi > out.txt" }
`;

const dirs = async (rig: Rig, sub: string): Promise<string[]> =>
  (await readdir(rig.path(sub), { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();

test("gc removes the logs and run views of a pipeline's runs older than its newest --keep-runs, keeps every run record", async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    for (let i = 0; i < 3; i++) assert.equal((await rig.run(['run', 'p.yaml', '--force'])).code, 0);
    // The run ids, oldest first by start time (ids name the second only: three quick runs can share one).
    const logs = (await rig.runRecords()).map((r) => String(r.find((e) => e['type'] === 'run-start')?.['runId']));
    assert.equal(logs.length, 3);
    assert.deepEqual(await dirs(rig, '.pipe/logs'), [...logs].sort());
    // A run view of the oldest run (as a report stage would leave), and one whose record is gone.
    await mkdir(rig.path(`.pipe/runs/${logs[0]}/report`), { recursive: true });
    await writeFile(rig.path(`.pipe/runs/${logs[0]}/report/index.html`), '<p>old</p>');
    await mkdir(rig.path('.pipe/runs/20200101-000000-gone/report'), { recursive: true });

    const dry = await rig.run(['gc', 'p.yaml', '--keep-runs', '1', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`would remove logs/${logs[0]}`));
    assert.match(dry.stdout, new RegExp(`would remove runs/${logs[0]}`));
    assert.equal((await dirs(rig, '.pipe/logs')).length, 3);

    const gc = await rig.run(['gc', 'p.yaml', '--keep-runs', '1']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(await dirs(rig, '.pipe/logs'), [logs[2]]);
    assert.deepEqual(await dirs(rig, '.pipe/runs'), []);
    assert.match(gc.stdout, /removed runs\/20200101-000000-gone/);
    // The history is intact.
    assert.equal((await rig.runRecords()).length, 3);
    const list = await rig.run(['runs', 'p.yaml']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.match(/^\d{8}-\d{6}-\w+/gm)?.length, 3, list.stdout);

    // The default keeps 10: nothing more to remove.
    const again = await rig.run(['gc', 'p.yaml']);
    assert.doesNotMatch(again.stdout, /removed (logs|runs)\//);
    const bad = await rig.run(['gc', 'p.yaml', '--keep-runs', 'many']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--keep-runs: 'many' is not a whole number/);
  } finally {
    await rig.cleanup();
  }
});
