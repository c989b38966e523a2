import type { Redis } from 'ioredis';
import type { Models, StackJobDoc } from './models/index.js';
import { jobChannel } from './names.js';
import { recordStackLife } from './stack-life.js';
import type { EndMessage, JobStatus } from './types.js';

/** What an `end` message is made of: an ended job as stored, or the result its runner is writing. */
export type EndedJob = Pick<StackJobDoc, '_id' | 'status' | 'error' | 'reason' | 'summary' | 'lastSeq' | 'finishedAt' | 'updatedAt'> & {
  exitCode?: number | null;
};

/** The `end` message of an ended job, as the gateway and every publisher of it build it. */
export function endMessageFor(job: EndedJob): EndMessage {
  return {
    type: 'end',
    jobId: job._id,
    status: job.status as JobStatus,
    exitCode: job.exitCode ?? null,
    ...(job.error ? { error: job.error } : {}),
    ...(job.reason ? { reason: job.reason } : {}),
    summary: (job.summary as Record<string, number>) ?? {},
    lastSeq: job.lastSeq ?? 0,
    ts: (job.finishedAt ?? job.updatedAt).toISOString(),
  };
}

/**
 * Ends a job that did not end through its own run (cancelled while queued, its runner lost, its run
 * crashed): moves it from `from` to `status` with a reason and an error, then publishes its end so
 * watchers finish. Returns the ended job, or undefined if it was no longer in `from`.
 */
export async function endJobOutsideRun(
  models: Pick<Models, 'StackJob' | 'Resource'>,
  publisher: Pick<Redis, 'publish'>,
  jobId: string,
  /** The status it must be in (any of several: a waiting job claimed in Redis may have moved between them). */
  from: JobStatus | readonly JobStatus[],
  outcome: { status: JobStatus; reason: string; error: string },
): Promise<StackJobDoc | undefined> {
  const job = await models.StackJob.findOneAndUpdate(
    { _id: jobId, status: typeof from === 'string' ? from : { $in: [...from] } },
    { $set: { ...outcome, finishedAt: new Date() } },
    { returnDocument: 'after' },
  ).lean<StackJobDoc>();
  if (!job) return undefined;
  // A run cut short may have changed the stack half-way: its resource shows it `failed`.
  if (from === 'running')
    await recordStackLife(models, job, { status: outcome.status, at: job.finishedAt ?? new Date() }).catch(() => undefined);
  await publisher.publish(jobChannel(jobId), JSON.stringify(endMessageFor(job))).catch(() => undefined);
  return job;
}
