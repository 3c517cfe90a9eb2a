// The stage contract and the shapes the runner passes around. Stages depend on this file and on
// runner/stage-api.ts (the helpers the runner lends them: hashing, bounded parallel map, run
// history, an artifact's origin) only; everything else in runner/ is the runner's business
// (caching, atomicity, logging, placement). docs/architecture.md, "The wall".

/** What an artifact holds; input ports are typed by it and the validator checks that kinds match. */
export type ArtifactKind =
  | 'host' // provision: where stages run
  | 'files' // raw files: fetch-kaggle, images, synth-images, command (default)
  | 'dataset' // split: train/valid/sample/test folders, one per class, plus split.json
  | 'model' // finetune: model.json + weights, classes.json, history.json, preprocess.json
  | 'evaluation' // evaluate: predictions.csv, metrics.json, analysis.json, submission.csv
  | 'report' // report: index.html, report.md, metrics.json
  | 'any'; // a port that takes any kind (command stage inputs, report extras)

export const ARTIFACT_KINDS: readonly ArtifactKind[] = ['host', 'files', 'dataset', 'model', 'evaluation', 'report', 'any'];

/** True when an upstream artifact of kind `produced` may feed a port that expects `port`. */
export function kindFits(port: ArtifactKind, produced: ArtifactKind): boolean {
  return port === 'any' || produced === 'any' || port === produced;
}

/** A JSON Schema (draft-07 subset that ajv understands); `default`s are applied before `run`. */
export type JsonSchema = Record<string, unknown>;

export interface InputPort {
  readonly kind: ArtifactKind;
  readonly required?: boolean; // default true
  readonly description?: string;
}

/** One file of an artifact, as listed in its manifest. */
export interface ManifestEntry {
  readonly path: string; // relative, '/'-separated
  readonly size: number;
  readonly sha256: string;
}

/** What meta.json holds: how an artifact was made. Never secrets. */
export interface ArtifactMeta {
  readonly key: string;
  readonly contentHash: string;
  readonly stage: string; // stage id in the pipeline, e.g. "finetune"
  readonly uses: string; // built-in stage name, e.g. "finetune-vgg16"
  readonly version: number;
  readonly params: Record<string, unknown>;
  readonly inputs: Record<string, string>; // port -> content hash
  readonly createdAt: string;
  readonly durationMs: number;
  readonly runId: string;
  readonly host: string;
  readonly metrics?: Record<string, number>;
  /** Whatever the stage returned in StageResult.meta (backend, engine, counts...). */
  readonly info?: Record<string, unknown>;
  /** The stage's verdict on this output (StageResult.verdict): a cache hit fails the run again when it failed. */
  readonly verdict?: Verdict;
  /** Names of the environment variables the stage was given as secrets (runner/secrets.ts); never their values. */
  readonly secrets?: readonly string[];
}

/**
 * A judgement on a valid output, such as evaluate's metric gate: the output itself is good data
 * (it is committed, cached and read downstream); the verdict says whether it is good enough.
 */
export interface Verdict {
  readonly passed: boolean;
  /** One line: what was checked and how it came out ("gate failed: accuracy 0.61 is below 0.95"). */
  readonly message: string;
}

/** A committed, immutable artifact in the cache. */
export interface Artifact {
  readonly kind: ArtifactKind;
  readonly key: string;
  readonly contentHash: string;
  /** Absolute path of the artifact's files (read-only for consumers). */
  readonly dir: string;
  readonly meta: ArtifactMeta;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

/** Progress of one long piece of work: a bar on a TTY, periodic plain lines otherwise. */
export interface Progress {
  /** Advance by n units (default 1); `status` is a short suffix such as "loss 0.31". */
  tick(n?: number, status?: string): void;
  /** Set the absolute position. */
  update(done: number, status?: string): void;
  /** Change the total once it is known (e.g. from a Content-Length). */
  setTotal(total: number): void;
  done(status?: string): void;
}

/** One upstream stage of the stage being run (transitively), for stages that summarise a run. */
export interface LineageEntry {
  readonly stage: string;
  readonly uses: string;
  readonly artifact: Artifact;
}

export interface StageContext<P> {
  /** Resolved `with:` params, defaults applied, `${...}` substituted. */
  readonly params: P;
  readonly inputs: Readonly<Record<string, Artifact>>;
  /** The stage's id in the pipeline ("finetune"). */
  readonly stageId: string;
  readonly pipelineName: string;
  /** Directory of the pipeline file: relative paths in params resolve against it. */
  readonly pipelineDir: string;
  /** Write the artifact's files here and only here. Starts empty. */
  readonly outDir: string;
  /**
   * A directory that survives an interrupted or failed attempt of this same stage key (same
   * params and inputs) and is deleted once the artifact is committed: checkpoints, partial
   * downloads.
   */
  readonly workDir: string;
  readonly log: Logger;
  /**
   * `resumed`: units an earlier, interrupted attempt already did (a resume): the bar starts there
   * and the ETA counts only what is left, at the pace of this attempt.
   */
  progress(label: string, total?: number, resumed?: number): Progress;
  readonly signal: AbortSignal;
  /**
   * A content-addressed sub-artifact owned by the runner's cache (e.g. cached frozen-layer
   * features, downloaded weight files): `build` fills `dir` once per distinct `key`; later calls
   * with an equal key return the committed directory without building. Atomic like artifacts.
   */
  derived(name: string, key: unknown, build: (dir: string) => Promise<void>): Promise<string>;
  /** Every upstream stage, transitively, in dependency order. */
  readonly lineage: readonly LineageEntry[];
  readonly runId: string;
}

export interface StageResult {
  /** Headline numbers (accuracy, log_loss ...): go to meta.json and the run record. */
  readonly metrics?: Record<string, number>;
  /** Extra facts for meta.json: backend, engine, counts. Never secrets. */
  readonly meta?: Record<string, unknown>;
  /** One line shown after the stage finishes. */
  readonly summary?: string;
  /**
   * A verdict on the output (a metric gate). A failed verdict does not fail the stage: the runner
   * commits and caches the artifact, points latest/ at it and runs the stages downstream as usual
   * (a report shows the failing run), then counts it as a failure of the run (exit 1). It is kept
   * in meta.json, so a later run that finds the artifact in the cache fails again, computing
   * nothing. meta.json is not part of the content hash that downstream keys see: a stage whose
   * readers show the verdict also writes it into its own files (evaluate's gate.json).
   */
  readonly verdict?: Verdict;
}

export interface Stage<P = Record<string, unknown>> {
  readonly name: string;
  /** Bump when the stage's output changes for the same params and inputs. */
  readonly version: number;
  readonly description: string;
  /** Schema of `with:`; must set additionalProperties: false and document every property. */
  readonly params: JsonSchema;
  readonly inputs: Readonly<Record<string, InputPort>>;
  /**
   * Ports that `inputs` may name beyond the declared ones (the command stage takes any port
   * name, of any kind). Undeclared ports are an error when this is not set.
   */
  readonly extraInputs?: InputPort;
  /** Output kind, or a function of the (resolved) params for stages like `command`. */
  readonly output: ArtifactKind | ((params: P) => ArtifactKind);
  /** 'never': run every time (provision re-checks the real world). Default 'content'. */
  readonly cache?: 'content' | 'never';
  /**
   * This stage makes the hosts `runs_on` stages run on (its artifact is a host, host.json):
   * `pipe hosts` and `pipe down` look for the instances and jobs it made, from its params
   * (`provider`, `region`, `endpoint`, `address`) as the file and earlier runs had them.
   */
  readonly provisionsHosts?: boolean;
  /**
   * Param names whose values are placement or secrets, not data: left out of the cache key.
   * (e.g. fetch-kaggle's endpoint: a mirror serves the same bytes.)
   */
  readonly keyExclude?: readonly string[];
  /**
   * Credentials the stage reads from the environment (runner/secrets.ts): checked before it
   * starts, handed to a `runs_on` host over the ssh session's stdin, never stored. Not params:
   * their values are in no key, meta.json, record or log; their names are recorded.
   */
  readonly secrets?: readonly SecretNeed[];
  /**
   * Extra material for the cache key that params alone do not capture: e.g. the content
   * hash of a local folder named by a param, or of the `deps` files of a command stage.
   * Must be cheap on a no-op run (use the stat cache: `cachedFileHash`/`hashFiles` of runner/stage-api.ts).
   */
  keyExtra?(params: P, pipelineDir: string): Promise<unknown>;
  /**
   * Local files or folders its params name that must be there before anything runs (a data
   * folder, a weights file): one problem per param (`param` relative to `with`), so that
   * `pipe validate`, `run` and `status` report a typo'd path located, as a user error.
   */
  checkPaths?(params: P, pipelineDir: string): Promise<readonly PathProblem[]>;
  /**
   * The files this stage reads from input `port`: glob patterns relative to the input
   * artifact's data dir (`*`, `?`, `**`; a pattern matching a folder covers what is below it;
   * see runner/reads.ts). Undefined (or no method): everything. `pipe run --pull` downloads only
   * the matching files of an upstream artifact that every running reader declares, so an
   * undeclared read finds the file missing: declare only what the stage surely reads.
   * `params` are the resolved params, as `run` gets them.
   */
  reads?(params: P, port: string): readonly string[] | undefined;
  /**
   * This run's view of the stage's artifact (e.g. the report with the run's id, timings and
   * origins), written by `pipe run` to .pipe/runs/<run-id>/<stage>/ outside the cache: the
   * artifact holds only what its inputs determine, the view what this run did. Returns file
   * name -> content (`index.html` is the one `pipe run` prints), or undefined for none.
   */
  runView?(artifact: Artifact, run: RunViewFacts): Promise<Readonly<Record<string, string>> | undefined>;
  run(ctx: StageContext<P>): Promise<StageResult | void>;
  /**
   * Commands the stage offers beside `run`, by name (`pipe lr-find` calls `lr-find`). A tool gets
   * a context like run's, on the stage's cached inputs; nothing it writes is committed.
   */
  readonly tools?: Readonly<Record<string, StageTool<P>>>;
}

export interface StageTool<P = Record<string, unknown>> {
  call(ctx: StageContext<P>, args: Readonly<Record<string, unknown>>): Promise<StageToolResult>;
}

/** What a tool hands its command: lines to print, files to write (name -> text), and JSON data. */
export interface StageToolResult {
  readonly lines: readonly string[];
  readonly files: Readonly<Record<string, string>>;
  readonly data: unknown;
}

/**
 * One credential a stage needs: alternatives, each a set of variables that go together (a token,
 * or a user name and a key); one whole set must be set (non-empty).
 */
export interface SecretNeed {
  readonly anyOf: readonly (readonly string[])[];
  /**
   * The stage can also find this credential elsewhere (a file such as ~/.kaggle/access_token on
   * the machine that runs it): none set is not an error; what is set is passed on.
   */
  readonly optional?: boolean;
}

/** A local path a stage's param names that is missing or of the wrong kind. */
export interface PathProblem {
  readonly param: string;
  readonly message: string;
}

/** Thrown by stages for expected failures: printed as one clean line, no stack trace. */
export class StageError extends Error {
  override readonly name = 'StageError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** What a stage's `runView` is told of the run: its id, start, pipe's version and the lineage. */
export interface RunViewFacts {
  readonly runId: string;
  /** ISO time the run started. */
  readonly startedAt: string;
  readonly pipeVersion: string;
  /** The artifact's upstream stages as this run had them, in dependency order, the stage itself last. */
  readonly lineage: readonly { readonly stage: string; readonly artifact: Artifact }[];
  /** The pipeline's recent runs (runner/report-history.ts), newest first, when there are several. */
  readonly earlierRuns?: import('./report-history.js').RecentRuns;
}
