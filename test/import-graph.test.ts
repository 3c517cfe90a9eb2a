// bench/import-graph.ts counts the cycles that only `import type` closes (lint's no-cycle does
// not see them), apart from load-order cycles and those through `import()`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { importGraph } from '../bench/import-graph.js';

test('import-graph: a cycle closed by `import type` is counted in cycles_with_types, not in cycles_static', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pipe-import-graph-'));
  try {
    await mkdir(path.join(root, 'runner'), { recursive: true });
    await mkdir(path.join(root, 'stages'), { recursive: true });
    await writeFile(path.join(root, 'runner', 'a.ts'), "import { b } from './b.js';\nexport interface A { n: number }\nexport const a = b;\n");
    await writeFile(path.join(root, 'runner', 'b.ts'), "import type { A } from './a.js';\nexport const b = 1;\nexport type B = A;\n");
    await writeFile(path.join(root, 'runner', 'c.ts'), "export const c = async () => import('./d.js');\n");
    await writeFile(path.join(root, 'runner', 'd.ts'), "import { c } from './c.js';\nexport const d = c;\n");
    const g = await importGraph(root);
    assert.equal(g['cycles_static'], 0);
    assert.equal(g['cycles_with_types'], 1);
    assert.deepEqual(g['cycle_members_with_types'], [['runner/a.ts', 'runner/b.ts']]);
    assert.equal(g['cycles_any_import'], 2);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
