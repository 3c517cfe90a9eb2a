// The types of a frozen-features set: what a caller asks for (FeatureRequest), what the entry's
// index says (FeatureIndex) and what the caller gets (FeatureSet). Their own module so that
// features.ts, feature-compute.ts and feature-reader.ts share them without importing each other.
import type { Progress } from '../../runner/types.js';
import type { FrozenEngine } from './frozen.js';
import type { Fit, PreprocessMode } from './images.js';
import type { DerivedFn } from './tfjs-engine.js';

export interface PreprocessSpec {
  readonly mode: PreprocessMode;
  /** [height, width] */
  readonly size: readonly [number, number];
  readonly fit: Fit;
}

export interface FeatureIndex {
  readonly version: number;
  readonly count: number;
  /** Per image, without the batch dimension. */
  readonly shape: readonly number[];
  readonly dtype: 'float32';
  readonly files: readonly string[];
  readonly engine: Readonly<Record<string, unknown>>;
  readonly seconds: number;
  /** What a row depends on besides the image (feature-reuse.ts), and each row's image sha256 (null: undecodable). */
  readonly family?: string;
  readonly sha256?: readonly (string | null)[];
  /** With `skipUndecodable`: the files that did not decode (file -> reason); their rows are meaningless. */
  readonly undecodable?: Readonly<Record<string, string>>;
  /** How many rows the build computed (the others were copied from earlier sets). */
  readonly computed?: number;
  /** Augmented sets: rows per file; row `copy * files.length + i` is variant `copy` of file i. */
  readonly copies?: number;
}

/** Augmented variants of every file instead of the files themselves (./augment.ts). */
export interface VariantRequest {
  /** What decides the variants' pixels: part of the cache key. */
  readonly key: unknown;
  readonly copies: number;
  /** Variant `copy` of the image at absolute path `file` (`rel` in the dataset), HWC RGB uint8 at the input size. */
  decode(file: string, rel: string, copy: number): Promise<Uint8Array>;
}

export interface FeatureRequest {
  readonly derived: DerivedFn;
  /** What the outputs depend on besides the images (see featureKey). */
  readonly frozen: string;
  readonly cut: string;
  readonly architecture: string;
  /** The dataset artifact's content hash. */
  readonly datasetHash: string;
  readonly datasetDir: string;
  /** Name of the split in split.json ('train', 'valid', 'sample/train', 'test'...). */
  readonly split: string;
  /** Dataset-relative files, in row order. */
  readonly files: readonly string[];
  readonly preprocess: PreprocessSpec;
  /** Opened only when the outputs must be computed; the caller disposes it. */
  readonly engine: () => Promise<FrozenEngine>;
  readonly batchSize: number;
  readonly concurrency?: number;
  readonly progress: (label: string, total?: number, resumed?: number) => Progress;
  readonly log: (message: string) => void;
  readonly signal: AbortSignal;
  /** Keep partial outputs here (ctx.workDir) so an interrupted computation resumes. */
  readonly resumeDir?: string;
  /** Compute augmented variants of the files (copy-major rows) instead of the files. */
  readonly variants?: VariantRequest;
  /**
   * A file that does not decode is listed in the index's `undecodable` (with the reason a lone
   * decode check gives) and gets a meaningless row, instead of failing the pass: the frozen
   * pass is the decode check, so each photo is decoded once (predict on an unchecked folder).
   * Not with `variants`.
   */
  readonly skipUndecodable?: boolean;
}

export interface FeatureSet {
  readonly dir: string;
  readonly index: FeatureIndex;
  /** Whether this call built the entry (false: reused). */
  readonly built: boolean;
  /** Images this call ran through the frozen part (0 when every row was cached or copied). */
  readonly computed: number;
}
