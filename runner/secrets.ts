// Secrets a stage needs: environment variables that the pipeline declares (`secrets: [NAME]`, on
// a stage or at the top for every stage) or that a stage type declares (Stage.secrets, e.g.
// fetch-kaggle's credentials). Their values are read from the environment pipe runs in when the
// stage starts and go only into that stage's process environment: never into the cache key,
// meta.json, run records, logs or a remote. Their names are recorded (meta.json, the run record)
// so `pipe status` can say "needs API_TOKEN, not set".
//
// On a `runs_on` host the values travel as one JSON line on the ssh session's stdin, which
// `pipe exec` reads before the stage starts (`secretsLine` / `readSecretsLine`): never a file on
// the host, never a command line that `ps` would show. Any launcher that can feed a process's
// stdin (ssh today, a batch scheduler's job step later) can reuse this hand-off.
import type { Readable } from 'node:stream';
import type { Logger, SecretNeed, Stage } from './types.js';
import { StageError } from './types.js';
import type { Diagnostic, Pipeline, StageSpec } from './pipeline.js';

/** What an environment variable's name may be (POSIX shell names). */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A name under `env:` that probably holds a credential. */
const SECRET_LIKE = /TOKEN|KEY|SECRET|PASSWORD|PASSWD/i;
/** Far more than any set of credentials: a runner that sends garbage is not read forever. */
const MAX_LINE = 1024 * 1024;

export type Env = Readonly<Record<string, string | undefined>>;

/** What a stage needs: each name the pipeline declares for it (all required), then its type's own. */
export function needsOf(stage: Stage<any> | undefined, spec: StageSpec): SecretNeed[] {
  return [...(spec.secrets ?? []).map((s) => ({ anyOf: [[s.name]] })), ...(stage?.secrets ?? [])];
}

/** Every variable name a stage may be given, sorted: what is recorded instead of values. */
export function secretNames(stage: Stage<any> | undefined, spec: StageSpec): string[] {
  return [...new Set(needsOf(stage, spec).flatMap((n) => n.anyOf.flat()))].sort();
}

/** An empty variable counts as not set (`KAGGLE_API_TOKEN=` switches a token off). */
const isSet = (env: Env, name: string): boolean => Boolean(env[name]);

/** "API_TOKEN", or "KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY". */
export function describeNeed(need: SecretNeed): string {
  return need.anyOf.map((set) => set.join(' and ')).join(', or ');
}

/** Why a need is not met: "API_TOKEN is not set", with what is half there for alternatives. */
function unmet(need: SecretNeed, env: Env): string | undefined {
  if (need.optional || need.anyOf.some((set) => set.every((n) => isSet(env, n)))) return undefined;
  if (need.anyOf.length === 1 && need.anyOf[0]!.length === 1) return `${need.anyOf[0]![0]} is not set`;
  const half = need.anyOf.filter((set) => set.some((n) => isSet(env, n)));
  const detail = half.map((set) => `${set.filter((n) => isSet(env, n)).join(' and ')} set without ${set.filter((n) => !isSet(env, n)).join(' and ')}`);
  return `needs ${describeNeed(need)}, none of them set${detail.length ? ` (${detail.join('; ')})` : ''}`;
}

export interface UnsetSecret {
  readonly stage: string;
  /** `file:line:col: path: ...` where the pipeline declares it, or the stage type that needs it. */
  readonly message: string;
  /** Short form for `pipe status`: "API_TOKEN". */
  readonly names: string;
}

/** The required secrets of a stage that the environment does not hold, each located. */
export function unsetSecrets(pipeline: Pipeline, stage: Stage<any> | undefined, spec: StageSpec, env: Env): UnsetSecret[] {
  const out: UnsetSecret[] = [];
  for (const s of spec.secrets ?? []) {
    if (isSet(env, s.name)) continue;
    const pos = pipeline.positionOf(s.path);
    const at = `${pipeline.displayPath}${pos ? `:${pos.line}:${pos.col}` : ''}: ${s.path}`;
    const who = s.path.startsWith('stages.') ? `stage ${spec.id} declares it` : 'declared for every stage';
    out.push({ stage: spec.id, names: s.name, message: `${at}: ${s.name} is not set in the environment pipe runs in (${who})` });
  }
  for (const need of stage?.secrets ?? []) {
    const why = unmet(need, env);
    if (why) out.push({ stage: spec.id, names: describeNeed(need), message: `${pipeline.displayPath}: stages.${spec.id}: ${stage!.name} ${why}` });
  }
  return out;
}

export const SET_HINT = 'set it in the environment of `pipe run`, e.g. export NAME=...; its value reaches the stage only and is never stored';

/** Fails a stage that is about to start without its secrets: a StageError naming each variable. */
export function checkSecrets(pipeline: Pipeline, stage: Stage<any>, spec: StageSpec, env: Env = process.env): void {
  const unset = unsetSecrets(pipeline, stage, spec, env);
  if (unset.length) throw new StageError(unset.map((u) => u.message).join('; '), SET_HINT);
}

/**
 * The values to hand to a stage that runs on another host: every declared variable that is set.
 * An optional credential with none of its variables set here is said once: the stage there
 * then depends on files of that host (~/.kaggle/...), which may well be what the user meant.
 */
export function secretsForHost(stage: Stage<any> | undefined, spec: StageSpec, log?: Logger, env: Env = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of secretNames(stage, spec)) if (isSet(env, name)) out[name] = env[name]!;
  for (const need of stage?.secrets ?? []) {
    if (need.optional && !need.anyOf.some((set) => set.every((n) => isSet(env, n)))) {
      log?.info(`${describeNeed(need)}: none set here, so none is sent; on the host, ${stage!.name} looks for its own credential files`);
    }
  }
  return out;
}

/** For meta.json: the names (never the values), when there are any. */
export function secretsMeta(stage: Stage<any> | undefined, spec: StageSpec): { secrets?: string[] } {
  const names = secretNames(stage, spec);
  return names.length ? { secrets: names } : {};
}

/** The line the runner writes on the stdin of `pipe exec`: the values, as one JSON object. */
export function secretsLine(values: Readonly<Record<string, string>>): string {
  return `${JSON.stringify(values)}\n`;
}

/**
 * `pipe exec`'s side: the first line of `input`, checked to hold only `names` with string
 * values. Throws when the runner sent none (an old runner, a closed stdin).
 */
export async function readSecretsLine(input: Readable, names: readonly string[]): Promise<Record<string, string>> {
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.includes('\n') || text.length > MAX_LINE) break;
  }
  const end = text.indexOf('\n');
  if (end < 0) throw new StageError('the runner sent no secrets on stdin (is pipe on this host older than the runner?)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(0, end));
  } catch {
    throw new StageError('the secrets line on stdin is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new StageError('the secrets line on stdin is not a JSON object');
  const allowed = new Set(names);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (!allowed.has(k) || typeof v !== 'string')
      throw new StageError(`the secrets line on stdin holds ${allowed.has(k) ? `a non-string ${k}` : `an undeclared ${k}`}`);
    out[k] = v;
  }
  return out;
}

/** Whether a variable name under `env:` looks like it holds a credential. */
export function looksSecret(name: string): boolean {
  return SECRET_LIKE.test(name);
}

/**
 * Warnings (not errors: it may be a public test key) for a value written under a stage's `env:`
 * whose name looks like a credential: it is a param, stored in meta.json and the run record.
 */
export function literalSecretWarnings(pipeline: Pipeline): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const spec of pipeline.stages.values()) {
    const env = spec.with['env'];
    if (env === null || typeof env !== 'object' || Array.isArray(env)) continue;
    for (const [name, value] of Object.entries(env as Record<string, unknown>)) {
      if (!looksSecret(name) || value === '' || value === undefined) continue;
      const path = `stages.${spec.id}.with.env.${name}`;
      const pos = pipeline.positionOf(path);
      out.push({
        file: pipeline.displayPath,
        ...(pos ? { pos } : {}),
        path,
        message:
          `warning: ${name} looks like a secret written into the pipeline: its value is stored in meta.json, the run record and what \`pipe push\` uploads. ` +
          `Declare it instead (\`secrets: [${name}]\` on the stage) and set it in the environment pipe runs in`,
      });
    }
  }
  return out;
}
