// The heavy fault runs behind `npm run torture` (not part of `npm test`):
//   - crash: >= 50 kill -9s of the runner at random moments (50 MB file, 2,000 small files,
//     a slow stage), each followed by verify --all, a recovering run and a byte comparison
//   - concurrency: rounds of 8 runs at once of one pipeline and of 4 pipelines on one cache
//   - concurrency + crash: 4 runs at once on one cache, one of them killed -9 mid-way
//   - fuzz: the YAML front end with many more cases (in-process and through the binary)
//   - disk full: the tmpfs tests
// Usage: node dist/bench/torture.js [--kills N] [--concurrent N] [--rounds N] [--fuzz N]
//        [--fuzz-cli N] [--seed N] [--only crash,concurrency,kill-one,fuzz,disk-full,remote]
// Prints every seed; exit 1 when anything failed.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  crashCampaign,
  phaseSummary,
  concurrentPipeline,
  concurrentRuns,
  spawnPipe,
  runPipe,
  waitForOutput,
  waitGroupGone,
  waitStageProcessesGone,
  killStageProcesses,
  killGroup,
  verifyAll,
  entryShapeProblems,
  listDir,
  countOf,
  mulberry32,
  seedFromEnv,
  sleep,
} from '../test/e2e/faults.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Args {
  kills: number;
  concurrent: number;
  rounds: number;
  fuzz: number;
  fuzzCli: number;
  seed: number;
  only?: Set<string>;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { kills: 50, concurrent: 8, rounds: 3, fuzz: 20_000, fuzzCli: 300, seed: seedFromEnv() };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    const num = (): number => {
      if (value === undefined || !/^\d+$/.test(value)) throw new Error(`${flag}: expected a number`);
      i++;
      return Number(value);
    };
    switch (flag) {
      case '--kills':
        args.kills = num();
        break;
      case '--concurrent':
        args.concurrent = num();
        break;
      case '--rounds':
        args.rounds = num();
        break;
      case '--fuzz':
        args.fuzz = num();
        break;
      case '--fuzz-cli':
        args.fuzzCli = num();
        break;
      case '--seed':
        args.seed = num();
        break;
      case '--only':
        args.only = new Set((value ?? '').split(','));
        i++;
        break;
      default:
        throw new Error(`unknown argument ${flag}`);
    }
  }
  return args;
}

const results: { name: string; ok: boolean; summary: string; ms: number }[] = [];

async function section(name: string, args: Args, body: () => Promise<{ ok: boolean; summary: string }>): Promise<void> {
  if (args.only && !args.only.has(name)) return;
  console.log(`\n== ${name}`);
  const started = Date.now();
  let r: { ok: boolean; summary: string };
  try {
    r = await body();
  } catch (e) {
    r = { ok: false, summary: `threw: ${(e as Error)?.stack ?? String(e)}` };
  }
  const ms = Date.now() - started;
  results.push({ name, ...r, ms });
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${name}: ${r.summary} (${(ms / 1000).toFixed(0)} s)`);
}

async function crash(args: Args): Promise<{ ok: boolean; summary: string }> {
  console.log(`seed ${args.seed} (replay: PIPE_FAULT_SEED=${args.seed} or --seed ${args.seed})`);
  const report = await crashCampaign({
    kills: args.kills,
    seed: args.seed,
    sizes: { manyFiles: 2000, bigBytes: 50_000_000, slowSeconds: 1 },
    log: (l) => console.log(`  ${l}`),
  });
  for (const f of report.failures) console.log(`  FAILURE ${f}`);
  const recovery = report.rounds.map((r) => r.recoveryMs).sort((a, b) => a - b);
  const median = recovery[Math.floor(recovery.length / 2)] ?? 0;
  return {
    ok: report.failures.length === 0,
    summary: `${report.kills} kills survived in ${report.rounds.length} rounds (killed during: ${phaseSummary(report.rounds)}); next run median ${median} ms, max ${recovery.at(-1) ?? 0} ms`,
  };
}

async function concurrency(args: Args): Promise<{ ok: boolean; summary: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-torture-conc-'));
  const failures: string[] = [];
  let runs = 0;
  try {
    for (let round = 1; round <= args.rounds; round++) {
      for (const mode of ['same', 'mixed'] as const) {
        const salt = `${mode}${round}`;
        const names = mode === 'same' ? ['p'] : ['p1', 'p2', 'p3', 'p4'];
        for (const n of names) await writeFile(path.join(dir, `${n}-${salt}.yaml`), concurrentPipeline(n, salt, 1000));
        const counters = [`shared-${salt}`, ...names.flatMap((n) => [`own-${n}-${salt}`, `last-${n}-${salt}`])];
        const o = await concurrentRuns(
          dir,
          path.join(dir, 'cache'),
          names.map((n) => `${n}-${salt}.yaml`),
          args.concurrent,
          counters,
        );
        runs += o.results.length;
        const problems: string[] = [];
        o.results.forEach((r, i) => {
          if (r.code !== 0) problems.push(`run ${i} exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr.slice(-500)}`);
        });
        for (const [c, n] of Object.entries(o.counts)) if (n !== 1) problems.push(`${c} computed ${n} times`);
        if (o.verify.code !== 0 || o.verify.report?.corrupt !== 0) problems.push(`verify: ${o.verify.raw}`);
        if (o.shape.length) problems.push(...o.shape);
        if (o.tmpLeft.length) problems.push(`tmp left: ${o.tmpLeft.join(', ')}`);
        const slowest = Math.max(...o.results.map((r) => r.ms));
        console.log(`  round ${round} ${mode}: ${o.results.length} runs at once, slowest ${slowest} ms, ${problems.length ? problems.join('; ') : 'ok'}`);
        failures.push(...problems.map((p) => `round ${round} ${mode}: ${p}`));
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    ok: failures.length === 0,
    summary: `${runs} runs, ${args.concurrent} at a time${failures.length ? `; ${failures.length} problems: ${failures.slice(0, 3).join(' | ')}` : ''}`,
  };
}

/** 4 runs at once on one cache; one is killed -9 (runner only) while the others wait or work. */
async function killOne(args: Args): Promise<{ ok: boolean; summary: string }> {
  const rng = mulberry32(args.seed ^ 0xc0ffee);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-torture-kill1-'));
  const failures: string[] = [];
  let survivors = 0;
  const waits: number[] = [];
  try {
    await mkdir(path.join(dir, 'counters'));
    for (let round = 1; round <= Math.max(2, args.rounds); round++) {
      const salt = `k${round}`;
      for (const n of ['p1', 'p2']) await writeFile(path.join(dir, `${n}.yaml`), concurrentPipeline(n, salt, 1000));
      const cache = path.join(dir, 'cache');
      const runs = [0, 1, 2, 3].map((i) => ({ i, s: spawnPipe(dir, ['run', i % 2 ? 'p2.yaml' : 'p1.yaml', '--cache-dir', cache, '-j', '2']) }));
      // The victim: the first run to start computing a stage (it holds that key's lock and the
      // others wait for it); killed a random moment later.
      const first = await Promise.race(runs.map(async (r) => ((await waitForOutput(r.s, /▶ \w+ running/, 30_000)) ? r : undefined)));
      const victim = first ?? runs[Math.floor(rng() * runs.length)]!;
      await sleep(Math.floor(rng() * 400));
      try {
        process.kill(victim.s.child.pid!, 'SIGKILL');
      } catch {
        // finished already
      }
      const started = Date.now();
      for (const r of runs) {
        const res = await r.s.done;
        if (r === victim) continue;
        survivors++;
        if (res.code !== 0) failures.push(`round ${round}: run ${r.i} exit ${res.code}: ${res.stderr.slice(-400)}`);
      }
      waits.push(Date.now() - started);
      await waitGroupGone(victim.s.child.pid, 30_000);
      await waitStageProcessesGone(dir, 30_000);
      killGroup(victim.s.child.pid);
      await killStageProcesses(dir);
      const v = await verifyAll(dir, 'p1.yaml', ['--cache-dir', cache]);
      if (v.code !== 0 || v.report?.corrupt !== 0) failures.push(`round ${round}: verify ${v.raw}`);
      const shape = await entryShapeProblems(cache);
      if (shape.length) failures.push(`round ${round}: ${shape.join('; ')}`);
      for (const n of ['p1', 'p2']) {
        const next = await runPipe(dir, ['run', `${n}.yaml`, '--cache-dir', cache]);
        if (next.code !== 0) failures.push(`round ${round}: next run of ${n} exit ${next.code}: ${next.stderr.slice(-400)}`);
      }
      const shared = await countOf(dir, `shared-${salt}`);
      if (shared < 1 || shared > 2) failures.push(`round ${round}: shared computed ${shared} times (1, or 2 when the victim was computing it)`);
      const left = await listDir(path.join(cache, 'tmp'));
      if (left.length) failures.push(`round ${round}: tmp left: ${left.join(', ')}`);
      console.log(`  round ${round}: victim run ${victim.i}; survivors done ${waits.at(-1)} ms after the kill; shared computed ${shared}x`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    ok: failures.length === 0,
    summary: `${survivors} surviving runs finished; longest wait after a kill ${Math.max(...waits)} ms${failures.length ? `; ${failures.join(' | ')}` : ''}`,
  };
}

function nodeTest(file: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', path.join(DIST, file)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function fuzz(args: Args): Promise<{ ok: boolean; summary: string }> {
  const r = await nodeTest('test/fuzz-yaml.test.js', {
    PIPE_FUZZ_RUNS: String(args.fuzz),
    PIPE_FUZZ_CLI_RUNS: String(args.fuzzCli),
    PIPE_FUZZ_SEED: String(args.seed | 0),
  });
  const counts = r.out
    .split('\n')
    .filter((l) => /^# fuzz/.test(l))
    .map((l) => l.slice(2));
  for (const c of counts) console.log(`  ${c}`);
  if (r.code !== 0) printFailures(r.out);
  return { ok: r.code === 0, summary: counts.join('; ') };
}

/** The first lines of a failed test run that say what failed. */
function printFailures(out: string): void {
  console.log(
    out
      .split('\n')
      .filter((l) => /not ok|error/.test(l))
      .slice(0, 20)
      .join('\n'),
  );
}

async function diskFull(): Promise<{ ok: boolean; summary: string }> {
  const r = await nodeTest('test/e2e/disk-full.test.js', {});
  const pass = /# pass (\d+)/.exec(r.out)?.[1] ?? '?';
  const skipped = /# skipped (\d+)/.exec(r.out)?.[1] ?? '?';
  if (r.code !== 0) printFailures(r.out);
  return { ok: r.code === 0, summary: `${pass} passed, ${skipped} skipped` };
}

/** The ssh host dropping mid-stage (a real sshd on loopback), several times over. */
async function remoteDrops(rounds: number): Promise<{ ok: boolean; summary: string }> {
  let passed = 0;
  for (let i = 0; i < rounds; i++) {
    const r = await nodeTest('test/e2e/remote-host.test.js', {});
    if (/# skipped [1-9]/.test(r.out)) return { ok: true, summary: 'skipped: no sshd here' };
    if (r.code === 0) passed++;
    else printFailures(r.out);
  }
  return { ok: passed === rounds, summary: `${passed}/${rounds} rounds of remote runs with the host killed mid-stage` };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.log(
    `pipe torture: seed ${args.seed}, ${args.kills} kills, ${args.concurrent} concurrent runs x ${args.rounds} rounds, ${args.fuzz} + ${args.fuzzCli} fuzz cases`,
  );
  await section('crash', args, () => crash(args));
  await section('concurrency', args, () => concurrency(args));
  await section('kill-one', args, () => killOne(args));
  await section('fuzz', args, () => fuzz(args));
  await section('disk-full', args, () => diskFull());
  await section('remote', args, () => remoteDrops(Math.max(1, args.rounds)));
  console.log('\n== summary');
  for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(12)} ${r.summary}`);
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

await main();
