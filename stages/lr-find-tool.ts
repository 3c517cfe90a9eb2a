// `pipe lr-find FILE --stage NAME` for the fine-tuning stages: the stage's own run prepares the
// network, the frozen outputs (from the cache) and the head as for training; a request carried on
// the context makes it run the learning-rate range test (vision/lr-range.ts) instead of training,
// so the test sees exactly what training would. Nothing is committed.
import type { StageContext, StageResult, StageTool } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import type { RangeTestOptions, RangeTestResult } from './vision/lr-range.js';

/** fastai's lr_find range; 200 steps (it takes 100). */
const DEFAULTS: RangeTestOptions = { steps: 200, startLr: 1e-7, endLr: 10 };

const REQUEST = Symbol('lr-find');

export interface LrFindRequest {
  readonly options: RangeTestOptions;
  done(result: RangeTestResult): void;
}

/** The range test asked of this run, if any (runFinetune runs it instead of training). */
export function lrFindRequest(ctx: StageContext<unknown>): LrFindRequest | undefined {
  return (ctx as unknown as { [REQUEST]?: LrFindRequest })[REQUEST];
}

function positive(args: Readonly<Record<string, unknown>>, name: string, fallback: number, integer = false): number {
  const v = args[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new StageError(`lr-find: --${name} must be a positive ${integer ? 'integer' : 'number'}, not '${String(v)}'`);
  return n;
}

export function lrFindTool<P>(run: (ctx: StageContext<P>) => Promise<StageResult | void>): StageTool<P> {
  return {
    async call(ctx, args) {
      const options: RangeTestOptions = {
        steps: positive(args, 'steps', DEFAULTS.steps, true),
        startLr: positive(args, 'start', DEFAULTS.startLr),
        endLr: positive(args, 'end', DEFAULTS.endLr),
      };
      if (options.steps < 10) throw new StageError('lr-find: --steps must be at least 10');
      if (options.endLr <= options.startLr) throw new StageError(`lr-find: --end (${options.endLr}) must be above --start (${options.startLr})`);
      let result: RangeTestResult | undefined;
      const request: LrFindRequest = { options, done: (r) => (result = r) };
      await run({ ...ctx, [REQUEST]: request } as StageContext<P>);
      if (!result) throw new Error('lr-find: the stage ran without the range test');
      const { rangeTable } = await import('./vision/lr-range.js');
      const { rangeTestSvg } = await import('./report/lr-plot.js');
      const r: RangeTestResult = result;
      return {
        lines: [
          rangeTable(r),
          r.stopped ? `stopped: ${r.stopped}` : `${r.points.length} steps without diverging: a larger --end may show where it does`,
          r.suggested === null
            ? 'no suggestion: the smoothed loss never falls (try a smaller --start, or more --steps)'
            : `suggested learning_rate: ${Number(r.suggested.toPrecision(2))} (steepest fall of the smoothed loss; a common choice is up to 10x below where it diverges)`,
        ],
        files: {
          'lr-find.svg': rangeTestSvg(r, 'Learning-rate range test'), // short: the legend shares the top line
          'lr-find.json': `${JSON.stringify({ ...r, options }, null, 2)}\n`,
        },
        data: r,
      };
    },
  };
}
