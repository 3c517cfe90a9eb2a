// Fault injection for the end-to-end tests and the torture script: kill -9 the real `pipe`
// binary at random moments, run several at once on one cache, and check what is left behind.
// The normal suite (crash.test.ts, concurrency.test.ts) and bench/torture.ts share this code;
// only the counts and sizes differ.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, mkdir, writeFile, utimes, stat, rm, mkdtemp, realpath } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PIPE_BIN, type RunResult } from './rig.js';
import { mulberry32 } from '../../stages/random.js';
export { mulberry32 };

// ---------------------------------------------------------------------------------------------
// Seeded randomness: every campaign prints its seed; PIPE_FAULT_SEED=<n> replays one.

export type Rng = () => number;

export function seedFromEnv(name = 'PIPE_FAULT_SEED'): number {
  const v = process.env[name];
  if (v !== undefined && /^\d+$/.test(v)) return Number(v) >>> 0;
  return (Date.now() ^ (process.pid << 8)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Running the binary. Each run is the leader of its own process group, so that after a kill -9
// of the runner alone we can still see (and wait for) the stage processes it left behind.

export interface Spawned {
  readonly child: ChildProcess;
  readonly done: Promise<RunResult>;
  /** stderr so far (plain, CI=true output). */
  stderr(): string;
}

export function spawnPipe(cwd: string, args: readonly string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(process.execPath, [PIPE_BIN, ...args], {
    cwd,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', COUNTERS: path.join(cwd, 'counters'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<RunResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

export async function runPipe(
  cwd: string,
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<RunResult & { ms: number; timedOut: boolean }> {
  const started = Date.now();
  const s = spawnPipe(cwd, args, env);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(s.child.pid);
  }, timeoutMs);
  const r = await s.done;
  clearTimeout(timer);
  return { ...r, ms: Date.now() - started, timedOut };
}

export function groupAlive(pgid: number | undefined): boolean {
  if (!pgid) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function killGroup(pgid: number | undefined): void {
  if (!pgid) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Wait until every process of a group has exited; false if some were still there at the deadline. */
export async function waitGroupGone(pgid: number | undefined, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/**
 * Stage processes started by runs under `dir` (their environment has PIPE_OUT=<dir>/...), found
 * through /proc whatever process group they are in. Linux only: elsewhere, none.
 */
export async function stageProcesses(dir: string): Promise<number[]> {
  const prefix = `PIPE_OUT=${dir}${path.sep}`;
  const pids: number[] = [];
  for (const p of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if ((await readFile(`/proc/${p}/environ`, 'latin1')).split('\0').some((e) => e.startsWith(prefix))) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export async function waitStageProcessesGone(dir: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while ((await stageProcesses(dir)).length > 0) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Kill what is left of the stage processes under `dir` (test cleanup). */
export async function killStageProcesses(dir: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const pids = await stageProcesses(dir);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves when `pattern` appears in the run's stderr (or the run ends first: false). */
export function waitForOutput(s: Spawned, pattern: RegExp, timeoutMs = 30_000): Promise<boolean> {
  return new Promise((resolve) => {
    if (pattern.test(s.stderr())) return resolve(true);
    const timer = setTimeout(() => finish(false), timeoutMs);
    const onData = (): void => {
      if (pattern.test(s.stderr())) finish(true);
    };
    const finish = (v: boolean): void => {
      clearTimeout(timer);
      s.child.stderr!.off('data', onData);
      resolve(v);
    };
    // Our own listener runs after the accumulating one (registered first in spawnPipe).
    s.child.stderr!.on('data', onData);
    void s.done.then(() => finish(pattern.test(s.stderr())));
  });
}

// ---------------------------------------------------------------------------------------------
// What a cache looks like from the outside.

/**
 * A kill -9 leaves the dead run's per-key lock directories behind, and proper-lockfile only takes
 * them over once they are 20 s old (runner/cache.ts `stale: 20_000`): every kill would then cost
 * the next run up to 20 s of silent waiting. That is reported as a bug and tested on its own
 * (crash.test.ts, "does not wait for the dead run's lock"); the campaigns back-date the dead
 * run's locks so that they stay bounded. PIPE_FAULT_HONEST_LOCKS=1 turns this off.
 */
export async function backdateDeadLocks(cacheRoot: string): Promise<number> {
  if (process.env.PIPE_FAULT_HONEST_LOCKS === '1') return 0;
  const dir = path.join(cacheRoot, 'locks');
  let n = 0;
  const old = new Date(Date.now() - 120_000);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.lock')) continue;
    await utimes(path.join(dir, name), old, old).catch(() => undefined);
    n++;
  }
  return n;
}

export async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

/** sha256 of every file under a directory (following a top-level symlink), by relative path. */
export async function treeHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else {
        const h = createHash('sha256');
        for await (const chunk of createReadStream(path.join(dir, r))) h.update(chunk as Buffer);
        out[r] = h.digest('hex');
      }
    }
  };
  await walk('');
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * One digest of the files of every stage under latest/<pipeline>/, for byte-for-byte comparison.
 * A committed entry is immutable (and `pipe verify --all` re-hashes it every round), so the
 * digest of an entry already hashed is taken from `memo` (keyed by the entry's real path).
 */
export async function latestDigest(
  cacheRoot: string,
  pipeline: string,
  stages: readonly string[],
  memo?: Map<string, string>,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of stages) {
    const dir = path.join(cacheRoot, 'latest', pipeline, s);
    const real = await realpath(dir);
    let digest = memo?.get(real);
    if (digest === undefined) {
      digest = createHash('sha256')
        .update(JSON.stringify(await treeHashes(dir)))
        .digest('hex');
      memo?.set(real, digest);
    }
    out[s] = digest;
  }
  return out;
}

/**
 * Problems with the committed entries that `pipe verify` does not look at: every name under
 * cache/ must be a 64-hex key holding meta.json (whose key is that name), manifest.json and data/.
 */
export async function entryShapeProblems(cacheRoot: string): Promise<string[]> {
  const problems: string[] = [];
  const dir = path.join(cacheRoot, 'cache');
  for (const name of await listDir(dir)) {
    if (!/^[0-9a-f]{64}$/.test(name)) {
      problems.push(`cache/${name}: not a key`);
      continue;
    }
    try {
      const meta = JSON.parse(await readFile(path.join(dir, name, 'meta.json'), 'utf8')) as { key?: string };
      if (meta.key !== name) problems.push(`cache/${name}/meta.json: key ${meta.key}`);
      JSON.parse(await readFile(path.join(dir, name, 'manifest.json'), 'utf8'));
      if (!(await stat(path.join(dir, name, 'data'))).isDirectory()) problems.push(`cache/${name}/data: not a directory`);
    } catch (e) {
      problems.push(`cache/${name}: ${(e as Error).message}`);
    }
  }
  return problems;
}

export interface VerifyJson {
  verified: number;
  corrupt: number;
  entries: { key: string; label: string; problems: { path: string; problem: string }[] }[];
}

export async function verifyAll(
  cwd: string,
  pipelineFile: string,
  extra: readonly string[] = [],
): Promise<{ code: number | null; report?: VerifyJson; raw: string }> {
  const r = await runPipe(cwd, ['verify', pipelineFile, '--all', '--json', ...extra]);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as VerifyJson, raw: r.stdout + r.stderr };
  } catch {
    return { code: r.code, raw: r.stdout + r.stderr };
  }
}

export const STACK_TRACE = /^\s+at .+(:\d+:\d+\)?|\(node:.*\))$/m;

// ---------------------------------------------------------------------------------------------
// The crash campaign.

export interface CrashSizes {
  /** Small files written by the `many` stage. */
  readonly manyFiles: number;
  /** Bytes of the one file written by the `big` stage. */
  readonly bigBytes: number;
  /** Seconds the `slow` stage sleeps. */
  readonly slowSeconds: number;
}

export const CRASH_STAGES = ['many', 'big', 'slow', 'combine', 'final'] as const;
type Salts = Record<'many' | 'big' | 'slow', number>;

/** A pipeline of command stages: many small files, one large file, a slow one, two that join. */
export function crashPipeline(sizes: CrashSizes, salts: Salts): string {
  return `name: crash
params:
  salt_many: ${salts.many}
  salt_big: ${salts.big}
  salt_slow: ${salts.slow}
stages:
  many:
    uses: command
    with:
      workdir: out
      run: 'i=0; while [ $i -lt ${sizes.manyFiles} ]; do d=d/$((i % 40)); [ -d $d ] || mkdir -p $d; echo "$i \${params.salt_many}" > $d/f$i.txt; i=$((i+1)); done'
  big:
    uses: command
    with:
      workdir: out
      run: 'yes "big \${params.salt_big}" | head -c ${sizes.bigBytes} > big.bin'
  slow:
    uses: command
    with:
      workdir: out
      run: 'echo slow start; sleep ${sizes.slowSeconds}; echo "slow \${params.salt_slow}" > s.txt'
  combine:
    uses: command
    inputs: { many: many, big: big, slow: slow }
    with:
      workdir: out
      run: '(cd "$PIPE_IN_MANY" && find d -type f | sort | xargs cat) | sha256sum > sums.txt; sha256sum < "$PIPE_IN_BIG/big.bin" >> sums.txt; cat "$PIPE_IN_SLOW/s.txt" >> sums.txt; mkdir -p parts; split -l 1 sums.txt parts/p'
  final:
    uses: command
    inputs: { sums: combine }
    with:
      workdir: out
      run: 'cat "$PIPE_IN_SUMS/sums.txt" > final.txt; ls "$PIPE_IN_SUMS/parts" >> final.txt; echo done >> final.txt'
`;
}

export interface CrashOptions {
  readonly kills: number;
  readonly seed: number;
  readonly sizes: CrashSizes;
  /** Stop after this many rounds even if fewer kills landed (runs that finished before the kill). */
  readonly maxRounds?: number;
  readonly log?: (line: string) => void;
  /** Work directory (default: a new temp dir, removed at the end). */
  readonly dir?: string;
}

export interface CrashRound {
  readonly round: number;
  readonly delayMs: number;
  readonly killed: boolean;
  /** What the killed run was doing: the stages it had started and not finished, or a phase. */
  readonly phase: string;
  readonly orphans: boolean;
  readonly recoveryMs: number;
}

export interface CrashReport {
  readonly seed: number;
  readonly rounds: CrashRound[];
  readonly kills: number;
  readonly failures: string[];
}

function runningStages(stderr: string): string {
  if (!/pipe run /.test(stderr)) return 'startup';
  const running = new Set<string>();
  for (const line of stderr.split('\n')) {
    const start = /▶ (\S+) running/.exec(line);
    if (start) running.add(start[1]!);
    const end = /[✓✗] (\S+) /.exec(line);
    if (end) running.delete(end[1]!);
  }
  if (running.size > 0) return [...running].sort().join('+');
  return /\d+ stages?: /.test(stderr) ? 'exiting' : 'between stages';
}

/**
 * Rounds of: change a random non-empty subset of the leaf stages' salts; run the pipeline in a
 * reference dir without interruption (at the same time as the next step); run it in the crash dir
 * and kill -9 the runner (only the runner: its stage processes live on, as after an OOM kill) at
 * a random moment after a random event of the run; wait for those orphans; then `pipe verify
 * --all` must find nothing corrupt, every entry must be whole, and the next `pipe run` must
 * succeed, leave .pipe/tmp empty and produce the reference's bytes, stage by stage. `pipe gc`
 * then drops the entries latest/ no longer points at, so that verify --all stays bounded.
 */
export async function crashCampaign(opts: CrashOptions): Promise<CrashReport> {
  const log = opts.log ?? (() => undefined);
  const rng = mulberry32(opts.seed);
  const base = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'pipe-crash-')));
  const crashDir = path.join(base, 'crash');
  const refDir = path.join(base, 'ref');
  for (const d of [crashDir, refDir]) await mkdir(path.join(d, 'counters'), { recursive: true });
  const salts: Salts = { many: 0, big: 0, slow: 0 };
  const digests = new Map<string, string>();
  const rounds: CrashRound[] = [];
  const failures: string[] = [];
  let kills = 0;
  const maxRounds = opts.maxRounds ?? opts.kills * 2 + 5;
  try {
    for (let round = 1; kills < opts.kills && round <= maxRounds && failures.length === 0; round++) {
      const fail = (what: string): void => {
        failures.push(`round ${round} (seed ${opts.seed}): ${what}`);
      };
      // A non-empty random subset of the leaves changes: the rest stays cached.
      const leaves = (['many', 'big', 'slow'] as const).filter(() => rng() < 0.5);
      if (leaves.length === 0) leaves.push((['many', 'big', 'slow'] as const)[Math.floor(rng() * 3)]!);
      for (const l of leaves) salts[l] = round;
      const text = crashPipeline(opts.sizes, salts);
      await writeFile(path.join(crashDir, 'p.yaml'), text);
      await writeFile(path.join(refDir, 'p.yaml'), text);

      // The reference run goes on at the same time, in its own dir with its own cache.
      const refRun = runPipe(refDir, ['run', 'p.yaml']);
      // Kill at a random moment: shortly after a random event of the run (a stage starts, a
      // stage has committed) so that kills spread over the stages and their commits, and now
      // and then during start-up. Only stages downstream of a change run this round.
      const s = spawnPipe(crashDir, ['run', 'p.yaml']);
      const willRun = CRASH_STAGES.filter((st) => round === 1 || st === 'combine' || st === 'final' || (leaves as readonly string[]).includes(st));
      // `final` takes a few ms: kills in it come from "combine done" + a delay. After its commit
      // the run only prints its summary: no anchor there.
      const anchors = willRun.filter((st) => st !== 'final').flatMap((st) => [`▶ ${st} running`, `✓ ${st} \\d`]);
      const early = rng() < 0.1;
      const anchor = early ? 'spawn' : anchors[Math.floor(rng() * anchors.length)]!;
      // Mostly soon after the event (fast stages take ~100 ms), sometimes well into it.
      const delayMs = Math.floor(early ? rng() * 400 : rng() ** 2 * 250);
      const reached = early || (await waitForOutput(s, new RegExp(anchor)));
      let phase = 'finished before the kill';
      const timer = reached
        ? setTimeout(() => {
            phase = runningStages(s.stderr());
            try {
              process.kill(s.child.pid!, 'SIGKILL');
            } catch {
              // it had just exited
            }
          }, delayMs)
        : undefined;
      const r = await s.done;
      clearTimeout(timer);
      const ref = await refRun;
      if (ref.code !== 0) {
        fail(`reference run failed (${ref.code}): ${ref.stderr}`);
        break;
      }
      const expected = await latestDigest(path.join(refDir, '.pipe'), 'crash', CRASH_STAGES, digests);
      const killed = r.signal === 'SIGKILL';
      if (killed) kills++;
      else if (r.code !== 0) fail(`the run to be killed failed on its own (${r.code}): ${r.stderr}`);
      // Its stage processes are orphans now; let them end (sleep, writes into the dead temp dir).
      // They are found by their environment: they may or may not share the runner's group.
      const orphans = groupAlive(s.child.pid) || (await stageProcesses(crashDir)).length > 0;
      if (!(await waitGroupGone(s.child.pid, 60_000)) || !(await waitStageProcessesGone(crashDir, 60_000))) {
        killGroup(s.child.pid);
        await killStageProcesses(crashDir);
        fail('the killed run left processes running for more than 60 s');
      }
      const cacheRoot = path.join(crashDir, '.pipe');
      await backdateDeadLocks(cacheRoot);

      const tVerify = Date.now();
      const v = await verifyAll(crashDir, 'p.yaml');
      const verifyMs = Date.now() - tVerify;
      if (v.code !== 0 || !v.report || v.report.corrupt !== 0) fail(`pipe verify --all after the kill: exit ${v.code}: ${v.raw}`);
      const shape = await entryShapeProblems(cacheRoot);
      if (shape.length > 0) fail(`half-made cache entries after the kill: ${shape.join('; ')}`);

      const next = await runPipe(crashDir, ['run', 'p.yaml'], {}, 90_000);
      if (next.code !== 0) fail(`the run after the kill exited ${next.code}${next.timedOut ? ' (timed out)' : ''}: ${next.stderr}`);
      const leftover = await listDir(path.join(cacheRoot, 'tmp'));
      if (leftover.length > 0) fail(`.pipe/tmp not empty after the next run: ${leftover.join(', ')}`);
      if (next.code === 0) {
        const got = await latestDigest(cacheRoot, 'crash', CRASH_STAGES, digests);
        for (const st of CRASH_STAGES) {
          if (got[st] !== expected[st]) fail(`stage ${st}: output differs from the uninterrupted run`);
        }
      }
      // Drop what the latest run no longer points at, so that verify --all stays bounded; gc
      // after a crash (its own sweep included) is part of what is tested.
      const gc = await runPipe(crashDir, ['gc', 'p.yaml']);
      if (gc.code !== 0) fail(`pipe gc after the recovery exited ${gc.code}: ${gc.stderr}${gc.stdout}`);
      const row: CrashRound = { round, delayMs, killed, phase, orphans, recoveryMs: next.ms };
      rounds.push(row);
      log(
        `round ${round}: changed ${leaves.join('+')}, ${killed ? `killed ${delayMs} ms after ${anchor.replace('\\d', 'done')}, during ${phase}` : `finished before the kill (${anchor.replace('\\d', 'done')} ${reached ? 'seen' : 'not seen'}, +${delayMs} ms)`}${orphans ? ', orphans waited for' : ''}; verify ${v.report?.verified ?? '?'} entries ok in ${verifyMs} ms; reference run ${ref.ms} ms; next run ${next.ms} ms; gc ${gc.ms} ms`,
      );
    }
    if (failures.length === 0 && kills < opts.kills)
      failures.push(`only ${kills} of ${opts.kills} kills landed in ${rounds.length} rounds (seed ${opts.seed})`);
  } finally {
    await killStageProcesses(base);
    if (!opts.dir) await rm(base, { recursive: true, force: true, maxRetries: 5 });
  }
  return { seed: opts.seed, rounds, kills, failures };
}

export function phaseSummary(rounds: readonly CrashRound[]): string {
  const byPhase = new Map<string, number>();
  for (const r of rounds) if (r.killed) byPhase.set(r.phase, (byPhase.get(r.phase) ?? 0) + 1);
  return [...byPhase]
    .sort((a, b) => b[1] - a[1])
    .map(([p, n]) => `${p}: ${n}`)
    .join(', ');
}

// ---------------------------------------------------------------------------------------------
// Concurrent runs on one cache.

/** A pipeline whose `shared` stage is identical (same key) in every pipeline made by this. */
export function concurrentPipeline(name: string, salt: string, files = 300): string {
  const count = (c: string): string => `echo run >> "$COUNTERS/${c}"`;
  return `name: ${name}
stages:
  shared:
    uses: command
    with:
      workdir: out
      run: '${count(`shared-${salt}`)}; mkdir d; i=0; while [ $i -lt ${files} ]; do echo "$i ${salt}" > d/$i.txt; i=$((i+1)); done; sleep 0.3'
  own:
    uses: command
    inputs: { src: shared }
    with:
      workdir: out
      run: '${count(`own-${name}-${salt}`)}; ls "$PIPE_IN_SRC/d" | wc -l > n.txt; echo ${name} >> n.txt; sleep 0.2'
  last:
    uses: command
    inputs: { own: own, shared: shared }
    with:
      workdir: out
      run: '${count(`last-${name}-${salt}`)}; cat "$PIPE_IN_OWN/n.txt" > out.txt; cat "$PIPE_IN_SHARED/d/0.txt" >> out.txt'
`;
}

export async function countOf(dir: string, name: string): Promise<number> {
  try {
    return (await readFile(path.join(dir, 'counters', name), 'utf8')).split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

export interface ConcurrentOutcome {
  readonly results: (RunResult & { ms: number; timedOut: boolean })[];
  readonly counts: Record<string, number>;
  readonly verify: { code: number | null; report?: VerifyJson; raw: string };
  readonly shape: string[];
  readonly tmpLeft: string[];
}

/**
 * Start `runs` `pipe run`s at once on one cache dir, cycling through the given pipelines (files
 * in `dir`, written by the caller), then count how often each stage computed and verify.
 */
export async function concurrentRuns(
  dir: string,
  cacheDir: string,
  files: readonly string[],
  runs: number,
  counters: readonly string[],
): Promise<ConcurrentOutcome> {
  await mkdir(path.join(dir, 'counters'), { recursive: true });
  const results = await Promise.all(
    Array.from({ length: runs }, (_, i) => runPipe(dir, ['run', files[i % files.length]!, '--cache-dir', cacheDir, '-j', '2'], {}, 120_000)),
  );
  const counts: Record<string, number> = {};
  for (const c of counters) counts[c] = await countOf(dir, c);
  const verify = await verifyAll(dir, files[0]!, ['--cache-dir', cacheDir]);
  return { results, counts, verify, shape: await entryShapeProblems(cacheDir), tmpLeft: await listDir(path.join(cacheDir, 'tmp')) };
}
