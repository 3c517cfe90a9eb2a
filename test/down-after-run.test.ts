// Issue 15 item 10: `pipe down FILE` stops what `pipe run` started, also when the provider came
// from the command line: the README's own sequence, `run ... --set
// stages.host.with.provider=ec2` then a plain `down`, against the local EC2 stand-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ec2Server, useFakeAwsEnv, startSshStub, FAKE_SECRET, FAKE_ACCESS_KEY } from './servers/ec2-server.js';
import { Rig } from './e2e/rig.js';

let restoreEnv: () => Promise<void>;
let ssh: Awaited<ReturnType<typeof startSshStub>>;

before(async () => {
  restoreEnv = await useFakeAwsEnv(); // the spawned pipe inherits the fake credentials and fast waits
  ssh = await startSshStub();
});
after(async () => {
  await ssh.close();
  await restoreEnv();
});

test('run --set stages.host.with.provider=ec2, then a plain down FILE stops that instance; hosts FILE lists it', { timeout: 120_000 }, async () => {
  const server = await Ec2Server.start({ publicIp: '127.0.0.1', publicDns: '' });
  const rig = await Rig.create();
  try {
    await rig.write('p.yaml', 'name: gpu\nstages:\n  host:\n    uses: provision\n    with: { provider: local }\n');
    const set = (kv: string): string[] => ['--set', `stages.host.with.${kv}`];
    const run = await rig.run([
      'run',
      'p.yaml',
      ...set('provider=ec2'),
      ...set(`endpoint=${server.url}`),
      ...set(`ssh_port=${ssh.port}`),
      ...set('ssh_wait_seconds=5'),
      ...set('key_name=pipe-test'),
      ...set('ssh_key=/keys/id_test'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const launched = [...server.instances.values()].filter((i) => i.state === 'running' || i.state === 'pending');
    assert.equal(launched.length, 1, 'the run launched one instance');

    const hosts = await rig.run(['hosts', 'p.yaml']);
    assert.equal(hosts.code, 0, hosts.stderr);
    assert.match(hosts.stdout, new RegExp(`${launched[0]!.id}\\s+gpu\\s+host\\s+running`));

    const down = await rig.run(['down', 'p.yaml']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, new RegExp(`stopping ${launched[0]!.id} .*stage host`));
    assert.notEqual(server.instances.get(launched[0]!.id)?.state, 'running');
    for (const text of [run.stdout, run.stderr, hosts.stdout, down.stdout, down.stderr]) {
      assert.ok(!text.includes(FAKE_SECRET) && !text.includes(FAKE_ACCESS_KEY), 'credentials in the output');
    }
  } finally {
    await rig.cleanup();
    await server.close();
  }
});
