// host.json has one type, runner/hosts/host-file.ts's HostFile, which the runner reads to place
// a `runs_on` stage: the provision stage's record of it must be that same type (checked when
// this file compiles), and the readers agree on a local, a remote and a missing host.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HOST_FILE, isRemote, readHostFile, readPlacement, type HostFile } from '../runner/hosts/host-file.js';
import type { HostFile as PublicHostFile } from '../runner/stage-api.js';
import type { HostInfo } from '../stages/provision.js';

/** True only when A and B are assignable both ways: the same record. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const writerIsReader: Same<HostInfo, HostFile> = true;
const publicIsSame: Same<PublicHostFile, HostFile> = true;

test('host.json: what provision writes is what the runner reads; a local host stays here, a missing file places nothing', async () => {
  assert.ok(writerIsReader && publicIsSame);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-host-file-'));
  try {
    const local: HostInfo = { provider: 'local', address: 'localhost', cpu: 'x', cores: 2, memoryGb: 4, gpus: [], backend: 'wasm' };
    await writeFile(path.join(dir, HOST_FILE), JSON.stringify(local));
    assert.deepEqual(await readHostFile(dir), local);
    assert.equal(isRemote(await readPlacement(dir)), false);
    const ssh: HostFile = { ...local, provider: 'ssh', address: '10.0.0.7', sshUser: 'me', sshPort: 2222, sshKey: '/keys/id' };
    await writeFile(path.join(dir, HOST_FILE), JSON.stringify(ssh));
    const placed = await readPlacement(dir);
    assert.ok(isRemote(placed));
    assert.equal(placed.sshPort, 2222);
    assert.equal(await readPlacement(path.join(dir, 'nowhere')), undefined);
    await assert.rejects(readHostFile(path.join(dir, 'nowhere')), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
