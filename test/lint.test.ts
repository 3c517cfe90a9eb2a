// The lint encodes the architecture (docs/architecture.md): a stage that imports a private
// runner module, or two files that import each other, fail `npm run lint`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function lint(code: string, filePath: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT, ignore: false });
  const [r] = await eslint.lintText(code, { filePath: path.join(ROOT, filePath) });
  return (r?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId}: ${m.message}`);
}

test('lint: a stage importing runner/cache.ts (statically or with import()) is refused; types.ts and stage-api.ts are fine', async () => {
  const bad = await lint("import { Cache } from '../runner/cache.js';\nexport const c = Cache;\n", 'stages/wall-fixture.ts');
  assert.equal(bad.length, 1, bad.join('\n'));
  assert.match(bad[0]!, /^no-restricted-imports: .*runner\/types\.js or runner\/stage-api\.js/);
  const deep = await lint("export const load = () => import('../../runner/cache.js');\n", 'stages/vision/wall-fixture.ts');
  assert.equal(deep.length, 1, deep.join('\n'));
  assert.match(deep[0]!, /^no-restricted-syntax: /);
  const typed = await lint("export type C = import('../runner/cache.js').Cache;\n", 'stages/wall-fixture.ts');
  assert.equal(typed.length, 1, typed.join('\n'));
  assert.match(typed[0]!, /^no-restricted-syntax: /);
  const ok = await lint(
    "import { StageError } from '../runner/types.js';\nimport { mapLimit } from '../runner/stage-api.js';\nexport const x = [StageError, mapLimit, () => import('../runner/stage-api.js')];\n",
    'stages/wall-fixture.ts',
  );
  assert.deepEqual(ok, []);
  const runner = await lint("import { Cache } from './cache.js';\nexport const c = Cache;\n", 'runner/wall-fixture.ts');
  assert.deepEqual(runner, [], 'the runner itself may import its modules');
});

test('lint: an import cycle between two files is refused', async () => {
  const eslint = new ESLint({ cwd: ROOT, ignore: false });
  const results = await eslint.lintFiles([path.join(ROOT, 'test/fixtures/lint/cycle-a.ts')]);
  const rules = results.flatMap((r) => r.messages.map((m) => m.ruleId));
  assert.deepEqual(rules, ['import-x/no-cycle']);
});

test('lint: the runner imports no stage outside the CLI openers and generators', async () => {
  const bad = await lint("import { registry } from '../stages/registry.js';\nexport const r = registry;\n", 'runner/wall-fixture.ts');
  assert.equal(bad.length, 1, bad.join('\n'));
  assert.match(bad[0]!, /^no-restricted-imports: .*The runner is handed its stages/);
  const opener = await lint("import { registry } from '../stages/registry.js';\nexport const r = registry;\n", 'runner/open.ts');
  assert.deepEqual(opener, []);
});
