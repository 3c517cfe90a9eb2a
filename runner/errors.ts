// One top-level catch maps ExitError to its code and message; anything else is a bug
// ("internal error, please report") printed without alarming stack traces unless PIPE_DEBUG.
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export class ExitError extends Error {
  override readonly name = 'ExitError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
