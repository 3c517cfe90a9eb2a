// Each combination of a sweep prints the path of its own report, not latest/'s (which the sweep
// puts back as it was, so it shows none of the combinations), in-process and in parallel children.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Rig } from './rig.js';

// A report-kind stage: its index.html says which learning rate made it.
const PIPELINE = `name: sw
params:
  lr: 0.1
stages:
  page:
    uses: command
    with:
      kind: report
      run: 'echo "lr \${params.lr}" > "$PIPE_OUT/index.html"'
`;

/** The `report:` paths printed, in order, and what each file says. */
async function printedReports(rig: Rig, text: string): Promise<{ printed: string; says: string }[]> {
  const paths = [...text.matchAll(/^report: (\S+)$/gm)].map((m) => m[1]!);
  return Promise.all(paths.map(async (p) => ({ printed: p, says: (await readFile(path.resolve(rig.dir, p), 'utf8')).trim() })));
}

for (const parallel of [1, 2]) {
  test(`a sweep (--sweep-parallel ${parallel}) prints each combination's own report path, and where it is linked`, async () => {
    const rig = await Rig.create();
    try {
      await rig.write('p.yaml', PIPELINE);
      const r = await rig.run(['run', 'p.yaml', '--sweep', 'params.lr=0.01,0.001', '--sweep-parallel', String(parallel)]);
      assert.equal(r.code, 0, r.stderr);
      const reports = await printedReports(rig, r.stderr + r.stdout);
      assert.deepEqual(reports.map((x) => x.says).sort(), ['lr 0.001', 'lr 0.01'], `each combination prints a report that is its own:\n${r.stderr}`);
      for (const x of reports) assert.doesNotMatch(x.printed, /latest/);
      const linked = [...r.stderr.matchAll(/^report \[(\d)\]: (\S+)$/gm)];
      assert.deepEqual(await Promise.all(linked.map(async (m) => [m[1], (await readFile(path.resolve(rig.dir, m[2]!), 'utf8')).trim()])), [
        ['1', 'lr 0.01'],
        ['2', 'lr 0.001'],
      ]);
      for (const m of linked) assert.match(m[2]!, /sweeps\/[^/]+\/\d-lr=[0-9.]+\/page\/index\.html$/);
    } finally {
      await rig.cleanup();
    }
  });
}

test('a plain run prints latest/ as the report path', async () => {
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', PIPELINE);
    const r = await rig.run(['run', 'p.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /^report: \.pipe\/latest\/sw\/page\/index\.html$/m);
  } finally {
    await rig.cleanup();
  }
});
