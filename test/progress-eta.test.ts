// The ETA of a resumed piece of work counts only what is left, at the pace of this attempt: the
// images an interrupted attempt already did took no time now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Output } from '../runner/output.js';

/** An Output writing plain lines into an array. */
function plainOutput(): { output: Output; lines: string[] } {
  const lines: string[] = [];
  const stream = { write: (s: string) => (lines.push(s), true), isTTY: false, columns: 120 } as unknown as NodeJS.WriteStream;
  return { output: new Output({ stream, live: false, color: false }), lines };
}

/** Seconds of the last "ETA ..." printed (formatDuration's forms: 120ms, 12.3s, 1m05s, 1h02m). */
function lastEta(lines: readonly string[]): number {
  const t = [...lines.join('').matchAll(/ETA (\S+)/g)].pop()?.[1];
  assert.ok(t, `no ETA in:\n${lines.join('')}`);
  const forms: [RegExp, (m: RegExpExecArray) => number][] = [
    [/^(\d+)ms$/, (m) => Number(m[1]) / 1000],
    [/^(\d+(?:\.\d+)?)s$/, (m) => Number(m[1])],
    [/^(\d+)m(\d+)s$/, (m) => Number(m[1]) * 60 + Number(m[2])],
    [/^(\d+)h(\d+)m$/, (m) => Number(m[1]) * 3600 + Number(m[2]) * 60],
  ];
  for (const [re, seconds] of forms) {
    const m = re.exec(t);
    if (m) return seconds(m);
  }
  assert.fail(`unreadable ETA ${t}`);
}

test('after a resume at 800 of 1000 images, 10 more in ~1.2 s leave an ETA of ~23 s, not a fraction of a second', async () => {
  const { output, lines } = plainOutput();
  const bar = output.progress('finetune', 'frozen outputs: train', 1000, 800);
  await sleep(1200);
  bar.update(810);
  const eta = lastEta(lines);
  // 190 images left at 10 per 1.2 s: about 23 s (generous bounds for a busy machine).
  assert.ok(eta > 15 && eta < 60, `ETA ${eta} s:\n${lines.join('')}`);
  assert.match(lines.join(''), /810\/1000 \(81%\)/);
});

test('without a resume the ETA is unchanged: 100 of 1000 in ~1.2 s leave ~11 s', async () => {
  const { output, lines } = plainOutput();
  const bar = output.progress('finetune', 'frozen outputs: train', 1000);
  await sleep(1200);
  bar.update(100);
  const eta = lastEta(lines);
  assert.ok(eta > 8 && eta < 40, `ETA ${eta} s:\n${lines.join('')}`);
});

test('in plain mode the closing line is not printed twice when the last tick already showed it', async () => {
  const { output, lines } = plainOutput();
  const bar = output.progress('finetune', 'epochs', 2);
  bar.tick(1, 'loss 0.5'); // the first tick prints
  await sleep(5100); // past the plain-line interval: the last tick prints too
  bar.tick(1, 'loss 0.2');
  bar.done();
  const closing = lines.filter((l) => l.includes('2/2 (100%)'));
  assert.equal(closing.length, 1, lines.join(''));
});
