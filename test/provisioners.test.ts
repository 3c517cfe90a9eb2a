// The runner names no stage type: `pipe hosts`, `pipe down` and `pipe sweep` find the stages
// that make hosts by what their Stage declares (`provisionsHosts`), in the file and in the run
// records, whatever the type is called.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipelineLocations } from '../runner/commands/hosts.js';
import { provisioningSpecs } from '../runner/hosts/provisioners.js';
import type { StageSpec } from '../runner/pipeline.js';
import type { Stage } from '../runner/types.js';

const stageType = (name: string, provisionsHosts: boolean): Stage<any> => ({
  name,
  version: 1,
  description: `${name}, for the test.`,
  params: { type: 'object', additionalProperties: true, properties: {} },
  inputs: {},
  output: 'host',
  ...(provisionsHosts ? { provisionsHosts: true } : {}),
  async run() {},
});
const spec = (id: string, uses: string, w: Record<string, unknown>): StageSpec => ({ id, uses, with: w, inputs: {}, needs: [] });

test('host-provisioning stages are the ones whose Stage says so, under any type name, in the file and in the run records', async () => {
  const cacheRoot = await mkdtemp(path.join(os.tmpdir(), 'pipe-provisioners-'));
  try {
    const cloud = stageType('my-cloud', true);
    const lookalike = stageType('provision', false);
    const pipeline = {
      name: 'p',
      stages: new Map([
        ['gpu', spec('gpu', 'my-cloud', { provider: 'ec2', region: 'eu-west-1' })],
        ['other', spec('other', 'provision', { provider: 'ec2', region: 'us-east-1' })],
      ]),
      stageImpls: new Map([
        ['gpu', cloud],
        ['other', lookalike],
      ]),
    };
    assert.deepEqual(
      provisioningSpecs(pipeline).map((s) => s.id),
      ['gpu'],
    );
    // A run that had --set stages.gpu.with.region=ap-south-1: its record counts too.
    await mkdir(path.join(cacheRoot, 'runs'), { recursive: true });
    const start = {
      type: 'run-start',
      pipeline: 'p',
      stages: {
        gpu: { uses: 'my-cloud', with: { provider: 'ec2', region: 'ap-south-1' } },
        other: { uses: 'provision', with: { provider: 'ec2', region: 'sa-east-1' } },
      },
    };
    await writeFile(path.join(cacheRoot, 'runs', 'r1.jsonl'), `${JSON.stringify(start)}\n`);
    assert.deepEqual(await pipelineLocations(pipeline, cacheRoot), [
      { region: 'eu-west-1', stages: ['gpu'] },
      { region: 'ap-south-1', stages: ['gpu'] },
    ]);
    // The provisioning stage removed from the file since: its recorded hosts are still found
    // (by the types the pipeline was loaded with), so `pipe down` can still stop them.
    const removed = {
      name: 'p',
      stages: new Map(),
      stageImpls: new Map(),
      stageTypes: new Map([
        ['my-cloud', cloud],
        ['provision', lookalike],
      ]),
    };
    assert.deepEqual(await pipelineLocations(removed, cacheRoot), [{ region: 'ap-south-1', stages: ['gpu'] }]);
  } finally {
    await rm(cacheRoot, { recursive: true, force: true });
  }
});
