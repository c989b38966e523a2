import { type JobStatus, WAITING_STATUSES } from '../types.js';

/**
 * Every move a job's status can make, as one table. A job is created `queued`; a gated job's
 * preview moves it to `awaiting_approval`, its approvers to `approved` or `rejected`; a runner moves
 * it to `running` (a gated job only from `approved`), and its run to an end. Final statuses move
 * nowhere: what is written to an ended job after its end (recovery, compensation) is an amendment.
 */
export const TRANSITIONS = {
  queued: ['running', 'awaiting_approval', 'cancelled', 'failed'],
  awaiting_approval: ['approved', 'rejected', 'expired', 'cancelled', 'failed'],
  approved: ['running', 'stale', 'cancelled', 'failed'],
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
  rejected: [],
  expired: [],
  stale: [],
} as const satisfies Record<JobStatus, readonly JobStatus[]>;

/** The statuses a job ends in. */
export type FinalStatus = 'succeeded' | 'failed' | 'cancelled' | 'rejected' | 'expired' | 'stale';

export function canMove(from: JobStatus, to: JobStatus): boolean {
  return (TRANSITIONS[from] as readonly JobStatus[]).includes(to);
}

/**
 * The paths that end a job: the statuses each takes a job from, and those it ends it in. `run`: the
 * runner, once its run ended; `crash`: the runner, when it failed while running or ending the job;
 * `start`: the runner, when a job cannot be claimed for a reason retrying would not mend;
 * `reconciler`: any runner, for a job whose runner stopped beating; `cancel`: the API, for a job not
 * started (cancelled, superseded, rejected, its gated job's preview gone); `gate`: the runner's
 * approval gate (expired, stale, no preview).
 */
export const END_PATHS = {
  run: { from: ['running'], to: ['succeeded', 'failed', 'cancelled'] },
  crash: { from: ['running'], to: ['failed'] },
  start: { from: ['queued', 'approved'], to: ['failed'] },
  reconciler: { from: ['running'], to: ['failed'] },
  cancel: { from: WAITING_STATUSES, to: ['cancelled', 'rejected', 'failed'] },
  gate: { from: WAITING_STATUSES, to: ['expired', 'stale', 'failed'] },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: readonly FinalStatus[] }>;
export type EndPath = keyof typeof END_PATHS;

/** Paths that end a job its run did not end: what it changed is not known (no state version recorded). */
export const CUT_SHORT_PATHS: readonly EndPath[] = ['crash', 'reconciler'];

/**
 * The statuses `via` may end a job in `status` from (those of its path the table allows). Throws
 * when none: a path ending a job in a status it does not end in, or the table forbids, is a bug,
 * refused before any write.
 */
export function endableFrom(via: EndPath, status: FinalStatus): JobStatus[] {
  const path = END_PATHS[via];
  const from = (path.to as readonly FinalStatus[]).includes(status)
    ? (path.from as readonly JobStatus[]).filter((s) => canMove(s, status))
    : [];
  if (from.length === 0) throw new Error(`a job cannot end ${status} through the ${via} path (END_PATHS, TRANSITIONS)`);
  return from;
}
