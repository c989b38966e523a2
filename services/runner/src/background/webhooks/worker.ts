import {
  type Config,
  type DeliveryRetries,
  type Keyring,
  type Logger,
  type Models,
  queueJobEvent,
  type WebhookEvent,
  WebhookAddressPolicy,
  WEBHOOKS_QUEUE,
  type WebhookWork,
} from '@pds/shared';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { deliverMessage, giveUpDelivery } from './deliver.js';
import { fanOutJobEnd } from './fan-out.js';

export interface WebhookWorkerDeps {
  config: Pick<Config, 'WEBHOOK_ALLOWED_CIDRS' | 'WEBHOOK_MAX_ATTEMPTS' | 'WEBHOOK_RETRY_DELAY_MS' | 'WEBHOOK_TIMEOUT_SECONDS'>;
  models: Models;
  keyring?: Keyring;
  /** A `worker`-role connection: queueing an event waits through a Redis outage rather than drop it. */
  connection: Redis;
  prefix?: string;
  logger: Logger;
}

/** Deliveries in flight per runner process (each is one HTTP request, at most WEBHOOK_TIMEOUT_SECONDS). */
const CONCURRENCY = 8;

export function deliveryRetries(config: WebhookWorkerDeps['config']): DeliveryRetries {
  return { attempts: config.WEBHOOK_MAX_ATTEMPTS, delayMs: config.WEBHOOK_RETRY_DELAY_MS };
}

/**
 * The runner's share of webhook work, from its own queue: a job's end is fanned out to its tenant's
 * webhooks, each message delivered with retries. Any number of runners share it.
 */
export function createWebhookWorker(deps: WebhookWorkerDeps) {
  const queue = new Queue<WebhookWork>(WEBHOOKS_QUEUE, { connection: deps.connection, prefix: deps.prefix });
  const retries = deliveryRetries(deps.config);
  const delivery = {
    models: deps.models,
    keyring: deps.keyring,
    addresses: new WebhookAddressPolicy(deps.config.WEBHOOK_ALLOWED_CIDRS),
    timeoutMs: deps.config.WEBHOOK_TIMEOUT_SECONDS * 1000,
  };
  const handle = async (job: Job<WebhookWork>) => {
    const work = job.data;
    if (work.kind === 'job-ended') return void (await fanOutJobEnd({ models: deps.models, queue, retries }, work.jobId));
    if (work.kind === 'job-event') return void (await fanOutJobEnd({ models: deps.models, queue, retries }, work.jobId, work.event));
    const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    await deliverMessage(delivery, work.deliveryId, lastTry);
  };
  const worker = new Worker<WebhookWork>(WEBHOOKS_QUEUE, handle, {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: CONCURRENCY,
    autorun: false,
  });
  worker.on('error', (err) => deps.logger.error({ err }, 'webhook worker error'));
  worker.on('failed', (job, err) => {
    const work = job?.data;
    if (work?.kind === 'job-ended') deps.logger.warn({ err: err.message, jobId: work.jobId }, 'webhook events of a job not fanned out yet');
    if (work?.kind === 'deliver' && job!.attemptsMade >= (job!.opts.attempts ?? 1)) {
      giveUpDelivery(deps.models, work.deliveryId, err.message).catch((e: Error) =>
        deps.logger.warn({ err: e.message, deliveryId: work.deliveryId }, 'a failed delivery could not be marked'),
      );
    }
  });
  return {
    /** Queues an event of a job that has not ended. */
    jobEvent: (jobId: string, event: WebhookEvent) =>
      queueJobEvent(queue, jobId, event).catch((err: Error) =>
        deps.logger.error({ err: err.message, jobId, event }, 'a webhook event of a job could not be queued'),
      ),
    start: () => void worker.run(),
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}
