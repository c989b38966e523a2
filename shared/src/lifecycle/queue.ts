import type { Queue } from 'bullmq';
import type { EndPath } from './transitions.js';

export { JOB_LIFECYCLE_QUEUE } from '../names.js';

/** One job's after-end work: its id and the path that ended it. */
export interface AfterEndWork {
  jobId: string;
  via: EndPath;
}

/**
 * Queues a job's after-end reactions, once per job (the BullMQ id is derived from it), retried with
 * backoff: every reaction is idempotent, so a retry after a partial failure does each at most once.
 */
export async function queueAfterEnd(queue: Pick<Queue, 'add'>, work: AfterEndWork): Promise<void> {
  await queue.add('after-end', work, {
    jobId: `after-end.${work.jobId}`,
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: 1_000,
    removeOnFail: 10_000,
  });
}
