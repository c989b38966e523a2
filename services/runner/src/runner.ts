import { hostname } from 'node:os';
import { CANCEL_CHANNEL, type Config, type KindRegistry, type Logger, type Models, redisReady, STACK_JOBS_QUEUE } from '@pds/shared';
import { DelayedError, type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type AbortReason, executeJob } from './execute-job.js';
import { StackLocks } from './stack-lock.js';

export interface RunnerDeps {
  config: Config;
  models: Models;
  kinds: KindRegistry;
  /** A `worker`-role connection (maxRetriesPerRequest: null) for BullMQ and the stack locks. */
  connection: Redis;
  /** A connection for publishing lines. */
  publisher: Redis;
  /** A connection of its own for hearing cancel requests (CANCEL_CHANNEL). */
  subscriber: Redis;
  logger: Logger;
  /** BullMQ key prefix (tests use their own). */
  prefix?: string;
}

export interface StackJobData {
  stackFqdn: string;
}

/** How long a job whose stack is busy waits before it looks again. */
const BUSY_STACK_RETRY_MS = 500;

/** A BullMQ worker that runs stack jobs, one at a time per stack, RUNNER_CONCURRENCY at a time overall. */
export function createRunner(deps: RunnerDeps) {
  const runnerId = `${hostname()}:${process.pid}`;
  const locks = new StackLocks(deps.connection);
  const running = new Map<string, AbortController>();

  async function processJob(job: Job<StackJobData>, token?: string): Promise<void> {
    const jobId = job.id as string;
    const lock = await locks.tryAcquire(job.data.stackFqdn);
    if (!lock) {
      // Another operation holds the stack: come back later instead of failing.
      await job.moveToDelayed(Date.now() + BUSY_STACK_RETRY_MS, token);
      throw new DelayedError();
    }
    const controller = new AbortController();
    running.set(jobId, controller);
    try {
      await executeJob({ ...deps, runnerId }, jobId, controller.signal);
    } finally {
      running.delete(jobId);
      await lock.release();
    }
  }

  const worker = new Worker<StackJobData>(STACK_JOBS_QUEUE, processJob, {
    connection: deps.connection,
    concurrency: deps.config.RUNNER_CONCURRENCY,
    prefix: deps.prefix,
    autorun: false,
  });
  worker.on('error', (err) => deps.logger.error({ err }, 'worker error'));

  // Every runner hears every cancel request; the one running the job acts on it.
  deps.subscriber.on('message', (channel: string, jobId: string) => {
    const controller = channel === CANCEL_CHANNEL ? running.get(jobId) : undefined;
    if (!controller) return;
    deps.logger.info({ jobId }, 'cancel requested');
    controller.abort('cancelled' satisfies AbortReason);
  });

  let closing: Promise<void> | undefined;
  return {
    worker,
    runnerId,
    /** Starts taking jobs once the cancel channel is subscribed (so no request is missed). */
    async start(): Promise<void> {
      await redisReady(deps.subscriber);
      await deps.subscriber.subscribe(CANCEL_CHANNEL);
      void worker.run();
    },
    /** Aborts a job running in this process; true if it was here. */
    abort(jobId: string, reason: AbortReason = 'cancelled'): boolean {
      const controller = running.get(jobId);
      controller?.abort(reason);
      return controller !== undefined;
    },
    /** Stops taking jobs, stops the running ones cleanly (recorded as cancelled by shutdown), waits for them. */
    close(): Promise<void> {
      closing ??= (async () => {
        const closed = worker.close();
        for (const controller of running.values()) controller.abort('shutdown' satisfies AbortReason);
        await closed;
      })();
      return closing;
    },
  };
}

export type Runner = ReturnType<typeof createRunner>;
