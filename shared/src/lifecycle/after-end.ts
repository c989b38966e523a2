import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Models, StackJobDoc } from '../models/index.js';
import type { StackQueue } from '../stack-queue.js';
import type { WaitingJobs } from '../dispatch/waiting-jobs.js';
import type { JobListIndex } from '../job-list-index.js';
import { type JobStatus, isFinalStatus } from '../types.js';
import { queueJobEndedEvent } from '../webhooks.js';
import { answerCompensation, compensate } from './compensation.js';
import { recoverJob } from './recovery.js';
import { remediateDrift } from './remediation.js';
import type { AfterEndWork } from './queue.js';
import type { EndPath } from './transitions.js';

export interface AfterEndDeps {
  models: Models;
  publisher: Pick<Redis, 'publish'>;
  /** Where jobs wait for the runner pool (retries, compensations, remediations are jobs like any other). */
  waiting: Pick<WaitingJobs, 'add' | 'forget' | 'settle' | 'untake'>;
  stacks: Pick<StackQueue, 'enqueue' | 'remove'>;
  /** The job list's index: every job queued is added to it. */
  jobList: Pick<JobListIndex, 'add' | 'remove'>;
  /** WEBHOOKS_QUEUE. */
  webhooks: Pick<Queue, 'add'>;
  logger: Logger;
}

/** One reaction to a job's end: it looks at the job as it ended (and the path that ended it) and decides alone whether it applies. */
interface Reaction {
  name: string;
  react(deps: AfterEndDeps, job: StackJobDoc, via: EndPath): Promise<unknown>;
}

/**
 * What follows every job's end, whichever path ended it, each reaction idempotent (a retry of the
 * work after a partial failure does each at most once) and each tried whatever the others do: the
 * job's webhook events (the fan-out reads the job when it runs); the failed up a compensating job
 * answers; the compensation of a failed up; the recovery of a run the infrastructure cut short; the
 * remediation of drift found. What must happen while the stack is still held (a gated job's plan,
 * the repair mark) is the runner's, before it lets the stack go.
 */
export const AFTER_END_REACTIONS: readonly Reaction[] = [
  { name: 'tell webhooks', react: (deps, job) => queueJobEndedEvent(deps.webhooks, job._id) },
  { name: 'answer the compensation it was', react: (deps, job) => answerCompensation(deps, job) },
  { name: 'compensate a failed up', react: (deps, job, via) => compensate(deps, job, via) },
  { name: 'recover a run cut short', react: (deps, job) => recoverJob(deps, job) },
  { name: 'remediate drift', react: (deps, job) => remediateDrift(deps, job) },
];

/**
 * Runs every after-end reaction for one ended job. One that fails does not keep the others from
 * running; the work then fails as a whole, to be tried again (the others, done, do nothing twice).
 */
export async function runAfterEnd(deps: AfterEndDeps, { jobId, via }: AfterEndWork): Promise<void> {
  const job = await deps.models.StackJob.findById(jobId).lean<StackJobDoc>();
  if (!job || !isFinalStatus(job.status as JobStatus)) return; // swept, or (a bug) not ended: nothing follows
  const failed: string[] = [];
  for (const reaction of AFTER_END_REACTIONS) {
    try {
      await reaction.react(deps, job, via);
    } catch (err) {
      failed.push(reaction.name);
      deps.logger.warn(
        { err: (err as Error).message, jobId, reaction: reaction.name },
        'an after-end reaction failed; the work is tried again',
      );
    }
  }
  if (failed.length > 0) throw new Error(`after-end reactions failed: ${failed.join(', ')}`);
}
