// Shared by the remote-cache tests: a committed artifact made of given files, and the
// environment a child `pipe` needs to reach the test S3 server (and nothing from this machine).
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Cache, MetaDraft } from '../../runner/cache.js';
import type { Artifact } from '../../runner/types.js';
import { S3_ACCESS_KEY_ID, type S3Server } from '../servers/s3.js';

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Commits `files` (relative path -> content) as an artifact of `stage` under a random key. */
export async function commitFiles(cache: Cache, stage: string, files: Record<string, Buffer | string>, draft: Partial<MetaDraft> = {}): Promise<Artifact> {
  const tmp = await cache.makeTemp(stage);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(tmp, 'data', rel)), { recursive: true });
    await writeFile(path.join(tmp, 'data', rel), content);
  }
  return cache.commit(tmp, {
    kind: 'files',
    key: sha256(`${stage}:${Math.random()}`),
    stage,
    uses: 'command',
    version: 1,
    params: {},
    inputs: {},
    createdAt: new Date().toISOString(),
    durationMs: 5,
    runId: 'run-1',
    host: 'gpu-host',
    ...draft,
  });
}

/** A child's environment: only the test server's S3 settings, none inherited from the machine. */
export function s3ChildEnv(server: S3Server, secret: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: S3_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: server.endpoint,
    AWS_ENDPOINT_URL: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_MAX_ATTEMPTS: '1',
    PIPE_REMOTE: `s3://${server.bucket}/${prefix}`,
    PIPE_CACHE_DIR: '',
    ...extra,
  };
}
