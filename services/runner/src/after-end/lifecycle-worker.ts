import { type Logger, type Models, type StackQueue, type WaitingJobs, WEBHOOKS_QUEUE, type JobListIndex } from '@pds/shared';
import { type AfterEndWork, JOB_LIFECYCLE_QUEUE, runAfterEnd } from '@pds/shared/lifecycle';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

export interface LifecycleWorkerDeps {
  models: Models;
  publisher: Pick<Redis, 'publish'>;
  /** A `worker`-role connection: queueing waits through a Redis outage rather than drop the work. */
  connection: Redis;
  prefix?: string;
  logger: Logger;
  /** Where retries, compensations and remediations wait for the runner pool. */
  waiting: Pick<WaitingJobs, 'add' | 'forget' | 'settle' | 'untake'>;
  stacks: Pick<StackQueue, 'enqueue' | 'remove'>;
  /** The job list's index: every job queued is added to it. */
  jobList: Pick<JobListIndex, 'add' | 'remove'>;
}

/** After-end works in flight per runner process (each a few store reads and writes). */
const CONCURRENCY = 4;

/**
 * The runner's share of what follows jobs' ends (JOB_LIFECYCLE_QUEUE, queued by every path that
 * ends a job, the API's included): each job's after-end reactions, retried with backoff while the
 * store is away. Any number of runners share it.
 */
export function createLifecycleWorker(deps: LifecycleWorkerDeps) {
  const queue = new Queue<AfterEndWork>(JOB_LIFECYCLE_QUEUE, { connection: deps.connection, prefix: deps.prefix });
  const webhooks = new Queue(WEBHOOKS_QUEUE, { connection: deps.connection, prefix: deps.prefix });
  const reactions = { ...deps, webhooks };
  const worker = new Worker<AfterEndWork>(JOB_LIFECYCLE_QUEUE, (work) => runAfterEnd(reactions, work.data), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: CONCURRENCY,
    autorun: false,
  });
  worker.on('error', (err) => deps.logger.error({ err }, 'job lifecycle worker error'));
  worker.on('failed', (work, err) => {
    const final = work !== undefined && work.attemptsMade >= (work.opts.attempts ?? 1);
    deps.logger[final ? 'error' : 'warn'](
      { err: err.message, jobId: work?.data.jobId },
      final ? "a job's after-end reactions failed for good" : "a job's after-end reactions failed; tried again",
    );
  });
  return {
    /** Where every path in this process that ends a job queues its after-end work. */
    queue,
    start: () => void worker.run(),
    async close() {
      await worker.close();
      await Promise.all([queue.close(), webhooks.close()]);
    },
  };
}
