import {
  dropRunFiles,
  errors,
  type JobStatus,
  jobStackKey,
  type Operation,
  type StackJobDoc,
  tenantOf,
  WAITING_STATUSES,
  wakeDispatcher,
  liveJobs,
} from '@pds/shared';
import { endJob, type EndReason } from '@pds/shared/lifecycle';
import type { JobServiceDeps } from './jobs.js';

/** How the API ends jobs that have not started (cancel, supersede, reject), through the lifecycle's endJob. */
export function jobEnding({ models, queue, redis, stacks, waiting, lifecycleQueue, logger }: JobServiceDeps) {
  const ending = { models, publisher: redis, lifecycle: lifecycleQueue, logger };
  /**
   * Ends a queued job before it starts (`cancelled`, with `reason`): claims it in Redis (so a runner
   * starting it at the same moment cannot also win), takes it out of the queue and its stack's line,
   * and publishes its end. Returns the ended job, or undefined if it had already left `queued`.
   */
  async function cancelQueued(
    job: StackJobDoc,
    reason: Extract<EndReason, 'cancelled' | 'superseded' | 'rejected' | 'preview_failed'>,
    error: string,
    status: 'cancelled' | 'rejected' | 'failed' = 'cancelled',
  ) {
    const claimed = await stacks.claim(job._id, 'cancelled').catch((err: Error) => {
      throw errors.unavailable(`cannot cancel: Redis is unavailable: ${err.message}`);
    });
    if (!claimed) return undefined;
    // Claimed in Redis: no runner starts it now, so it ends from whichever waiting status it has reached.
    const cancelled = await endJob(ending, job._id, { status, reason, error }, 'cancel').catch(async (err: Error) => {
      // Not ended (the store away): the claim goes back, or no runner would ever start the job and
      // no cancel could end it; the caller hears the failure and may try again.
      await stacks.unclaim(job._id).catch(() => undefined);
      throw errors.unavailable(`cannot cancel: the job could not be ended: ${err.message}`);
    });
    if (!cancelled) return undefined;
    await dropRunFiles(models, job);
    // The runner (and the dispatcher) skip jobs that are no longer queued, so a failed removal only costs a look.
    await waiting.forget(job._id).catch(() => undefined);
    await queue.remove(job._id).catch(() => undefined);
    // Likewise its line entry: the runner that finds an ended job at the head of a line drops it.
    await stacks.remove(jobStackKey(job), job._id).catch(() => undefined);
    // A job that held its stack's line (awaiting approval) lets the next one go at once.
    if (job.status !== 'queued') await promoteNext(job);
    else await wakeDispatcher(redis); // the next in its stack's line may be first now
    // The preview of a gated job: without it the gated job has nothing to be approved on.
    if (job.planFor) {
      const gated = await models.StackJob.findById(job.planFor).lean<StackJobDoc>();
      if (gated && WAITING_STATUSES.includes(gated.status as JobStatus))
        await cancelQueued(gated, 'preview_failed', `its preview, job ${job._id}, was ${status}; nothing was applied`, 'failed');
    }
    return cancelled;
  }

  /** Wakes the job now first in a stack's line (it would otherwise wake when its wait runs out). */
  async function promoteNext(job: StackJobDoc): Promise<void> {
    // Only sooner: a parked job wakes by itself when its wait runs out, whatever fails here.
    const next = await stacks.next(jobStackKey(job)).catch(() => undefined);
    if (next) await (await queue.getJob(next).catch(() => undefined))?.promote().catch(() => undefined);
    await wakeDispatcher(redis); // a next job not handed to the runners yet is the dispatcher's to start
  }

  /**
   * Cancels (`superseded`) the jobs of an operation still waiting on the stack of `newer` and created
   * before it: with the `latest` policy, older `up`s; for any user's job, drift checks (they never
   * delay users).
   */
  async function supersede(newer: StackJobDoc, operation: Operation, why: string): Promise<void> {
    const waiting = await liveJobs(models).find(
      {
        tenantId: tenantOf(newer),
        stackFqdn: newer.stackFqdn,
        operation,
        _id: { $ne: newer._id },
        compensates: { $exists: false }, // a compensation puts the stack back; a newer up does not replace it
      },
      ['queued'],
    );
    for (const older of waiting) {
      if (older.createdAt > newer.createdAt) continue;
      await cancelQueued(older, 'superseded', why);
    }
  }

  return { cancelQueued, supersede };
}
