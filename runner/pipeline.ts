// The validated pipeline: what the front end (load + validate) hands to the graph, the cache
// and the executor. It keeps the source positions so any later pass can point at the YAML, and
// the Stage object each stage's `uses:` named, so the runner never looks stage types up itself.
import type { Stage } from './types.js';

/** 1-based line and column in the pipeline file. */
export interface SourcePos {
  readonly line: number;
  readonly col: number;
}

/** A located problem; `path` is the JSON path in the document ("stages.split.with.valid"). */
export interface Diagnostic {
  readonly file: string; // as the user named it (relative to cwd when possible)
  readonly pos?: SourcePos;
  readonly path: string;
  readonly message: string;
  /** Further places that belong to the same problem (each edge of a cycle, a duplicate key). */
  readonly related?: readonly { readonly pos?: SourcePos; readonly path: string; readonly message: string }[];
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly Diagnostic[] };

export interface StageSpec {
  readonly id: string;
  readonly uses: string;
  /** Params with `${...}` substituted, overrides applied and schema defaults filled in. */
  readonly with: Readonly<Record<string, unknown>>;
  /** port -> upstream stage id */
  readonly inputs: Readonly<Record<string, string>>;
  /** Pure ordering dependencies. */
  readonly needs: readonly string[];
  /** Stage id of a provision stage this one runs on (placement: not part of the cache key). */
  readonly runsOn?: string;
  /**
   * JSON paths of the `with` scalars that hold a `${params.…}` ("stages.train.with.epochs"):
   * the run history shows a change there as the pipeline param's, not a second one.
   */
  readonly paramRefs?: readonly string[];
  /**
   * Environment variables declared under `secrets:` (the stage's, then the pipeline's), each
   * with the JSON path where it was written ("stages.train.secrets[0]", "secrets[1]").
   */
  readonly secrets?: readonly DeclaredSecret[];
}

export interface DeclaredSecret {
  readonly name: string;
  readonly path: string;
}

export interface Pipeline {
  /** Absolute path of the pipeline file. */
  readonly file: string;
  /** The path as shown in messages (relative to cwd when inside it). */
  readonly displayPath: string;
  /** Absolute directory of the pipeline file: relative paths in params resolve against it. */
  readonly dir: string;
  readonly name: string;
  /** Effective pipeline params (after -p / --params-file). */
  readonly params: Readonly<Record<string, unknown>>;
  /** In file order. */
  readonly stages: ReadonlyMap<string, StageSpec>;
  /**
   * Stage id -> the Stage object its `uses:` names, from the registry the pipeline was loaded
   * with (the built-in stages for the CLI; any others in a test or an embedding program).
   */
  readonly stageImpls: ReadonlyMap<string, Stage<any>>;
  /**
   * Every stage type the pipeline could name (the registry it was loaded with): what earlier runs
   * recorded is judged by it, e.g. a host-provisioning stage since removed from the file.
   */
  readonly stageTypes?: ReadonlyMap<string, Stage<any>>;
  readonly cache?: { readonly remote?: string; readonly dir?: string };
  /** The YAML source text, for printing the offending line under a diagnostic. */
  readonly source: string;
  /** Position of the node at a JSON path ("stages.split.with.valid"), or its nearest ancestor. */
  positionOf(path: string): SourcePos | undefined;
}
