import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { endMessageFor } from '../job-end.js';
import type { Logger } from '../logger.js';
import type { Models, StackJobDoc } from '../models/index.js';
import { liveJobs } from '../live-jobs.js';
import { jobChannel } from '../names.js';
import { recordStackLife } from '../stack-life.js';
import type { EndMessage } from '../types.js';
import type { EndReason } from './end-reasons.js';
import { queueAfterEnd } from './queue.js';
import { type EndPath, endableFrom, type FinalStatus } from './transitions.js';

/** How a job ended: its final status, why (when the status alone does not say), and what went wrong. */
export interface JobOutcome {
  status: FinalStatus;
  reason?: EndReason;
  error?: string;
}

export interface EndJobDeps {
  models: Pick<Models, 'StackJob' | 'Resource' | 'LiveJob'>;
  /** Where the job's `end` message is published. */
  publisher: Pick<Redis, 'publish'>;
  /** JOB_LIFECYCLE_QUEUE: where the after-end reactions are queued. */
  lifecycle: Pick<Queue, 'add'>;
  logger: Logger;
}

/** What the `run` path records with the end: the run's result, and its own steps before the `end` is published. */
export interface RunRecord {
  /** Fields of the result written with the status (outputs, summary, tails, lastSeq, …). */
  result: Record<string, unknown>;
  finishedAt: Date;
  /** Before the `end` message: the stack's life on its resource. */
  afterWrite(job: StackJobDoc): Promise<void>;
  /** Publishes the `end` (after the run's last line). */
  publish(message: EndMessage): void;
  /** Runs the write through the run's outage tolerance (retried while the store is away). */
  store<T>(write: () => Promise<T>): Promise<T>;
}

/**
 * Ends a job, whichever path ends it, in this order: the status written (only from a status its path
 * may end it from, TRANSITIONS: a job another path ended first stays as that path left it), the
 * stack's life on its resource (a run cut short may have changed it half-way: `failed`), the `end`
 * message (after every record a watcher reads), then its after-end reactions queued (after-end.ts).
 * Returns the ended job, or undefined when it was not in a status this path ends.
 */
export async function endJob(
  deps: EndJobDeps,
  jobId: string,
  outcome: JobOutcome,
  via: EndPath,
  run?: RunRecord,
): Promise<StackJobDoc | undefined> {
  const from = endableFrom(via, outcome.status);
  const finishedAt = run?.finishedAt ?? new Date();
  const filter = run
    ? // A repeat of the run's own write (its first answer lost) finds its own finishedAt.
      { _id: jobId, $or: [{ status: { $in: from } }, { status: outcome.status, finishedAt }] }
    : { _id: jobId, status: { $in: from } };
  const write = () =>
    deps.models.StackJob.findOneAndUpdate(
      filter,
      { $set: { ...outcome, finishedAt, ...run?.result } },
      { returnDocument: 'after' },
    ).lean<StackJobDoc>();
  const job = await (run ? run.store(write) : write());
  if (!job) return undefined;
  // No longer live; an entry left (the store away now) is dropped by the next check that finds it ended.
  await liveJobs(deps.models)
    .forget(jobId)
    .catch((err: Error) => deps.logger.warn({ err: err.message, jobId }, 'the live entry of an ended job could not be dropped'));
  if (run) await run.afterWrite(job);
  else if (from.includes('running'))
    await recordStackLife(deps.models, job, { status: outcome.status, at: finishedAt }).catch((err: Error) =>
      deps.logger.warn({ err: err.message, jobId }, 'the stack state could not be recorded'),
    );
  const end = endMessageFor(job);
  if (run) run.publish(end);
  else
    await deps.publisher.publish(jobChannel(jobId), JSON.stringify(end)).catch((err: Error) =>
      // Watchers still finish: the gateway reads the ended job on its next look.
      deps.logger.warn({ err: err.message, jobId }, 'the end of a job could not be published'),
    );
  await queueWithRetries(() => queueAfterEnd(deps.lifecycle, { jobId, via })).catch(async (err: Error) => {
    // Left for a reconciler's next full scan (requeueAfterEnd): the store took the end a moment ago.
    deps.logger.warn({ err: err.message, jobId }, "a job's after-end work could not be queued; a reconciler queues it later");
    await deps.models.StackJob.updateOne({ _id: jobId }, { $set: { afterEndPending: via } }).catch((markErr: Error) =>
      deps.logger.error(
        { err: markErr.message, jobId },
        "a job's after-end reactions (compensation, recovery, remediation, webhooks) are lost: neither queued nor marked",
      ),
    );
  });
  return job;
}

/** A job whose end could not queue its after-end work: its id and the path that ended it. */
export interface PendingAfterEnd {
  _id: string;
  afterEndPending: EndPath;
}

/**
 * Queues the after-end work of jobs whose end could not queue it (marked `afterEndPending`, found by
 * the reconcilers' full scans), then drops their mark. Returns the ids queued.
 */
export async function requeueAfterEnd(
  deps: Pick<EndJobDeps, 'models' | 'lifecycle' | 'logger'>,
  pending: readonly PendingAfterEnd[],
): Promise<string[]> {
  const queued: string[] = [];
  for (const { _id, afterEndPending: via } of pending) {
    await queueAfterEnd(deps.lifecycle, { jobId: _id, via });
    await deps.models.StackJob.updateOne({ _id }, { $unset: { afterEndPending: 1 } });
    queued.push(_id);
  }
  if (queued.length > 0) deps.logger.info({ jobs: queued.length }, 'after-end work queued late for jobs whose end could not queue it');
  return queued;
}

/** Redis answers a moment later after a blip: three tries over ~0.7 s before the work is given up (and logged). */
async function queueWithRetries(queue: () => Promise<void>): Promise<void> {
  for (const waitMs of [100, 600]) {
    try {
      return await queue();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
  await queue();
}
