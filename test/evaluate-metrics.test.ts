import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analysisViews, computeMetrics, gateFailures, logLoss, predictionsCsv, submissionCsv, type Prediction } from '../stages/evaluate-metrics.js';
import { evaluateSource } from '../stages/vision/train.js';

const classes = ['cat', 'dog'];
// Hand-checked set: 3 of 5 right; confusion [[1,1],[1,2]].
const valid: Prediction[] = [
  { file: 'valid/cat/a.jpg', label: 0, probs: [0.9, 0.1] }, // cat, right
  { file: 'valid/cat/b.jpg', label: 0, probs: [0.4, 0.6] }, // dog, wrong
  { file: 'valid/dog/c.jpg', label: 1, probs: [0.2, 0.8] }, // dog, right
  { file: 'valid/dog/d.jpg', label: 1, probs: [0.7, 0.3] }, // cat, wrong
  { file: 'valid/dog/e.jpg', label: 1, probs: [0.45, 0.55] }, // dog, right
];
const testSet: Prediction[] = [
  { file: 'test/unknown/10.jpg', label: -1, probs: [0.99, 0.01] },
  { file: 'test/unknown/2.jpg', label: -1, probs: [0.5, 0.5] },
  { file: 'test/unknown/1.jpg', label: -1, probs: [0.001, 0.999] },
];

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} != ${b}`);

test('accuracy, log loss, confusion and per-class figures match hand computation', () => {
  const m = computeMetrics([...valid, ...testSet], classes, 'valid', testSet.length);
  assert.equal(m.count, 5);
  assert.equal(m.test_count, 3);
  close(m.accuracy, 0.6, 'accuracy');
  // -(ln .9 + ln .4 + ln .8 + ln .3 + ln .55) / 5
  close(m.log_loss, (0.1053605157 + 0.9162907319 + 0.2231435513 + 1.2039728043 + 0.5978370008) / 5, 'log_loss');
  assert.deepEqual(m.confusion, [
    [1, 1],
    [1, 2],
  ]);
  close(m.per_class['cat']!.precision, 0.5, 'cat precision');
  close(m.per_class['cat']!.recall, 0.5, 'cat recall');
  close(m.per_class['cat']!.f1, 0.5, 'cat f1');
  assert.equal(m.per_class['cat']!.support, 2);
  close(m.per_class['dog']!.precision, 2 / 3, 'dog precision');
  close(m.per_class['dog']!.recall, 2 / 3, 'dog recall');
  close(m.per_class['dog']!.f1, 2 / 3, 'dog f1');
  assert.equal(m.per_class['dog']!.support, 3);
  assert.deepEqual(m.classes, classes);
});

test('log loss clips certainty; undefined precision is 0', () => {
  const m = computeMetrics([{ file: 'x', label: 1, probs: [1, 0] }], classes, 'valid', 0);
  close(m.log_loss, -Math.log(1e-15), 'clipped log loss');
  assert.equal(m.per_class['dog']!.precision, 0); // nothing predicted dog
  assert.equal(m.per_class['cat']!.recall, 0); // no true cats
});

test("analysis: the lesson's views per class", () => {
  const a = analysisViews(valid, classes, 4);
  const ids = (id: string) => a.views.find((v) => v.id === id)!.items.map((i) => i.file.split('/').pop());
  assert.deepEqual(
    a.views.map((v) => v.id),
    ['correct-cat', 'wrong-cat', 'uncertain-cat', 'correct-dog', 'wrong-dog', 'uncertain-dog'],
  );
  assert.deepEqual(ids('correct-cat'), ['a.jpg']);
  assert.deepEqual(ids('wrong-cat'), ['d.jpg']); // predicted cat, truly a dog
  assert.deepEqual(ids('uncertain-cat'), ['b.jpg', 'a.jpg']);
  assert.deepEqual(ids('correct-dog'), ['c.jpg', 'e.jpg']);
  assert.deepEqual(ids('wrong-dog'), ['b.jpg']);
  assert.deepEqual(ids('uncertain-dog'), ['e.jpg', 'd.jpg', 'c.jpg']);
  const d = a.views.find((v) => v.id === 'wrong-cat')!;
  assert.equal(d.kind, 'wrong');
  assert.equal(d.class, 'cat');
  assert.deepEqual(d.items[0], { file: 'valid/dog/d.jpg', label: 'dog', predicted: 'cat', probability: 0.7, probs: { cat: 0.7, dog: 0.3 } });
  assert.equal(analysisViews(valid, classes, 1).views.find((v) => v.id === 'uncertain-dog')!.items.length, 1);
});

test('predictions.csv: one row per image, test rows without label and correctness', () => {
  const csv = predictionsCsv([...valid.slice(0, 2), testSet[0]!, { file: 'valid/cat/a,b.jpg', label: 0, probs: [0.6, 0.4] }], classes);
  assert.equal(
    csv,
    [
      'file,label,p_cat,p_dog,predicted,correct',
      'valid/cat/a.jpg,cat,0.9,0.1,cat,true',
      'valid/cat/b.jpg,cat,0.4,0.6,dog,false',
      'test/unknown/10.jpg,,0.99,0.01,cat,',
      '"valid/cat/a,b.jpg",cat,0.6,0.4,cat,true',
      '',
    ].join('\n'),
  );
});

test('submission.csv: id,label = clipped P(dog), ids sorted numerically', () => {
  assert.equal(submissionCsv(testSet, classes, [0.02, 0.98]), 'id,label\n1,0.98\n2,0.5\n10,0.02\n');
  assert.equal(submissionCsv(testSet, classes, [0.05, 0.95]), 'id,label\n1,0.95\n2,0.5\n10,0.05\n');
});

test('gates: accuracy is a minimum, log loss a maximum', () => {
  assert.deepEqual(gateFailures({ accuracy: 0.96, log_loss: 0.1 }, { accuracy: 0.95, log_loss: 0.2 }), []);
  const failed = gateFailures({ accuracy: 0.6, log_loss: 0.61 }, { accuracy: 0.95, log_loss: 0.2 });
  assert.deepEqual(failed, ['accuracy 0.6000 is below the gate 0.95', 'log_loss 0.6100 is above the gate 0.2']);
  assert.equal(gateFailures({ accuracy: Number.NaN, log_loss: 0 }, { accuracy: 0.5 }).length, 1);
});

test("finetune's val_loss and evaluate's log_loss are one definition: the same rows give the same number, a confident mistake included", async () => {
  // Row 0 is a confident mistake (P(true) = 1e-12): where two clippings (1e-7, 1e-15) part ways.
  const rows = Float32Array.from([1e-12, 1 - 1e-12, 0.9, 0.1, 0.3, 0.7, 0.6, 0.4]);
  const labels = Int32Array.from([0, 0, 1, 1]);
  const source = { count: 4, shape: [1], labels, rows: async (idx: readonly number[]) => new Float32Array(idx.length) };
  let at = 0;
  const predict = async (_x: Float32Array, n: number): Promise<Float32Array> => rows.slice(at * 2, (at += n) * 2);
  const val = await evaluateSource(predict, source, 3);
  const preds: Prediction[] = [0, 1, 2, 3].map((i) => ({ file: `${i}.jpg`, label: labels[i]!, probs: [rows[2 * i]!, rows[2 * i + 1]!] }));
  const logLossOfEvaluate = logLoss(preds);
  assert.ok(logLossOfEvaluate > 7, `the confident mistake counts in full: ${logLossOfEvaluate}`);
  assert.ok(Math.abs(val.loss - logLossOfEvaluate) < 1e-9, `val_loss ${val.loss} vs log_loss ${logLossOfEvaluate}`);
  assert.equal(val.accuracy, 0.5);
});
