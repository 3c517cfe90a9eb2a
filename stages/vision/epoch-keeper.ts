// Which epoch's weights a training run keeps (`keep: best | last`, judged on `monitor`), and
// when it stops early (`patience`). Its state is a pure function of the history so far, so a run
// resumed from a checkpoint rebuilds it from the checkpoint's history and decides as the
// uninterrupted run did. The training loop keeps the best epoch's checkpoint on disk and restores
// it at the end (train.ts).

export type KeepPolicy = 'best' | 'last';
export type Monitor = 'val_loss' | 'val_accuracy';

export const KEEP_PARAM_SCHEMA: Record<string, Record<string, unknown>> = {
  keep: {
    enum: ['best', 'last'],
    default: 'best',
    description:
      "Which epoch's weights the model keeps: `best` (the epoch with the best `monitor` value, as Keras' ModelCheckpoint(save_best_only)) or `last`. " +
      'Without validation numbers (valid: 0) there is nothing to judge by: the last epoch, with a warning.',
  },
  monitor: {
    enum: ['val_loss', 'val_accuracy'],
    default: 'val_loss',
    description: 'What `keep: best` and `patience` judge an epoch by: lowest `val_loss` or highest `val_accuracy`.',
  },
  patience: {
    type: 'integer',
    minimum: 0,
    default: 0,
    description: 'Early stopping: stop when `monitor` has not improved for this many epochs (0: off, train all `epochs`). Needs validation after every epoch.',
  },
};

/** One epoch's numbers, as the history holds them. */
export interface MonitoredEpoch {
  readonly epoch: number;
  readonly val_loss?: number;
  readonly val_accuracy?: number;
}

/** Which epoch the model holds, and why (history.json, finetune.json, the report). */
export interface KeptEpoch {
  readonly epoch: number;
  readonly policy: KeepPolicy;
  readonly monitor?: Monitor;
  readonly value?: number;
  readonly reason: string;
}

/** Recorded in history.json when patience ended training before `epochs`. */
export interface EarlyStop {
  readonly epoch: number;
  readonly best_epoch: number;
  readonly patience: number;
  readonly reason: string;
}

export interface KeeperOptions {
  readonly keep: KeepPolicy;
  readonly monitor: Monitor;
  /** 0: off. */
  readonly patience: number;
}

export class EpochKeeper {
  private bestEpoch: number | null = null;
  private bestValue = NaN;
  private lastEpoch = 0;
  private sinceBest = 0;

  constructor(private readonly o: KeeperOptions) {}

  /** A keeper that has seen `epochs` (a resumed run's history). */
  static replay(o: KeeperOptions, epochs: readonly MonitoredEpoch[]): EpochKeeper {
    const k = new EpochKeeper(o);
    for (const e of epochs) k.observe(e);
    return k;
  }

  /** Takes an epoch's numbers; true when it is the best so far (its checkpoint is worth keeping). */
  observe(e: MonitoredEpoch): boolean {
    this.lastEpoch = e.epoch;
    const value = e[this.o.monitor];
    if (value === undefined || !Number.isFinite(value)) return false; // not validated: neither better nor worse
    // Strictly better only: on a tie the earlier epoch stays (as Keras).
    const better = this.bestEpoch === null || (this.o.monitor === 'val_loss' ? value < this.bestValue : value > this.bestValue);
    if (better) {
      this.bestEpoch = e.epoch;
      this.bestValue = value;
      this.sinceBest = 0;
    } else {
      this.sinceBest++;
    }
    return better;
  }

  /** The best epoch so far (null: none validated). */
  get best(): number | null {
    return this.bestEpoch;
  }

  /** Patience ran out: the last `patience` validated epochs did not improve on the best. */
  shouldStop(): boolean {
    return this.o.patience > 0 && this.bestEpoch !== null && this.sinceBest >= this.o.patience;
  }

  earlyStop(): EarlyStop {
    return {
      epoch: this.lastEpoch,
      best_epoch: this.bestEpoch!,
      patience: this.o.patience,
      reason: `${this.o.monitor} did not improve on epoch ${this.bestEpoch}'s for ${this.sinceBest} epochs (patience ${this.o.patience})`,
    };
  }

  /** The epoch to keep once training ends after `lastEpoch`, and why. */
  kept(lastEpoch: number, why: { validated: boolean }): KeptEpoch {
    if (this.o.keep === 'last') return { epoch: lastEpoch, policy: 'last', reason: 'keep: last' };
    if (this.bestEpoch === null) {
      return {
        epoch: lastEpoch,
        policy: 'best',
        reason: why.validated
          ? `keep: best, but no epoch has a ${this.o.monitor}: the last epoch`
          : 'keep: best, but there is no validation set (valid: 0): the last epoch',
      };
    }
    const what = this.o.monitor === 'val_loss' ? 'lowest' : 'highest';
    return {
      epoch: this.bestEpoch,
      policy: 'best',
      monitor: this.o.monitor,
      value: this.bestValue,
      reason: `${what} ${this.o.monitor} (${this.bestValue.toFixed(4)})`,
    };
  }
}
