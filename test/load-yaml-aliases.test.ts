// Aliases are checked against their anchors in one pass over the document. The YAML library's
// Alias.resolve walks the document from its start for each alias: a pipeline file with a few
// thousand aliases (or a few dozen beside deep nesting, as the fuzz test once drew) took seconds
// to be refused, against the front end's bound of about a second for any file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml } from '../runner/load-yaml.js';

test('an alias before its anchor, or with none, is refused and located; one after its anchor is read', () => {
  const bad = parseYaml('name: x\nfirst: *late\nlater: &late 1\nother: *none\n', 'p.yaml');
  assert.deepEqual(
    bad.errors.map((e) => [e.path, e.pos?.line, e.message]),
    [
      ['first', 2, "unknown alias '*late': no anchor '&late' before it"],
      ['other', 4, "unknown alias '*none': no anchor '&none' before it"],
    ],
  );
  const good = parseYaml('name: x\nbase: &b { lr: 0.1 }\nuse: *b\nlist: [&one 1, *one]\n', 'p.yaml');
  assert.deepEqual(good.errors, []);
  assert.deepEqual(good.value, { name: 'x', base: { lr: 0.1 }, use: { lr: 0.1 }, list: [1, 1] });
});

test('thousands of aliases beside deep nesting are answered in well under a second each', () => {
  const deep = '{a: '.repeat(90) + '1' + '}'.repeat(90);
  const aliases = Array.from({ length: 8000 }, () => '*v').join(', ');
  const text = `name: x\nanchor: &v 1\ndeep: ${deep}\nlist: [${aliases}]\n`;
  const started = performance.now();
  const r = parseYaml(text, 'p.yaml');
  const ms = performance.now() - started;
  assert.ok(/aliases expand too much/.test(r.errors[0]?.message ?? ''), JSON.stringify(r.errors));
  assert.ok(ms < 1500, `took ${ms.toFixed(0)} ms`); // about 7 s when each alias walked the document
});
