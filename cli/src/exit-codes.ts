/** What `pds` exits with: a job's outcome, or why it could not tell (docs/cli.md). */
export const EXIT = {
  succeeded: 0,
  failed: 1,
  usage: 2,
  cancelled: 3,
  auth: 4,
  gaveUp: 5,
  interrupted: 130,
} as const;

/** The exit code of a job that ended with `status`. */
export function exitCodeOfStatus(status: string): number {
  if (status === 'succeeded') return EXIT.succeeded;
  if (status === 'cancelled' || status === 'rejected') return EXIT.cancelled;
  return EXIT.failed; // failed, expired, stale
}

/** An error a person can act on: its message is printed as is (never a stack trace), then `pds` exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
    /** The API's HTTP status, when the API said no. */
    readonly status?: number,
    /** A 409 for a name already taken: the id of the object that has it (the API's `existingId`). */
    readonly existingId?: string,
  ) {
    super(message);
  }
}
