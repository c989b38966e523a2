import { DRIFT_QUEUE, JOB_LIFECYCLE_QUEUE, STACK_JOBS_QUEUE, WEBHOOKS_QUEUE } from '@pds/shared';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** The queues the API adds to, on one connection: what every process that builds the API makes the same way. */
export type ApiQueues = Record<'queue' | 'webhookQueue' | 'driftQueue' | 'lifecycleQueue', Queue> & { close(): Promise<void> };

/**
 * Opens the API's queues: stack jobs, webhooks, drift schedules and the job lifecycle. A queue's
 * error (Redis away) is told to `onError`; the requests that need it answer 503 meanwhile.
 */
export function createApiQueues(connection: Redis, options: { prefix?: string; onError?: (err: Error) => void } = {}): ApiQueues {
  const open = (name: string): Queue => {
    const queue = new Queue(name, { connection, ...(options.prefix ? { prefix: options.prefix } : {}) });
    queue.on('error', options.onError ?? (() => undefined));
    return queue;
  };
  const queues = {
    queue: open(STACK_JOBS_QUEUE),
    webhookQueue: open(WEBHOOKS_QUEUE),
    driftQueue: open(DRIFT_QUEUE),
    lifecycleQueue: open(JOB_LIFECYCLE_QUEUE),
  };
  return {
    ...queues,
    async close() {
      await Promise.allSettled(Object.values(queues).map((queue) => queue.close()));
    },
  };
}
