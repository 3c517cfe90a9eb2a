// The split stage's params: their own module so that split.ts and the parts under split/ share
// them without importing one another.

export interface SplitParams {
  from: string;
  /** Absent: 'random'. No schema default, so that pipelines written before it keep their cache keys. */
  layout?: 'random' | 'folders';
  folders?: { train?: string; valid?: string; test?: string };
  label_from: 'filename' | 'folder';
  label_pattern: string;
  valid: number;
  sample: { train: number; valid: number };
  test?: string;
  stratify: boolean;
  seed: number;
  extensions: string[];
  /** Absent: true. */
  dedupe?: boolean;
  /** Absent: no groups (a split made before it keeps its bytes). */
  group_pattern?: string;
}
