import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Models } from './models/index.js';
import { JOB_AMENDED_CHANNEL } from './names.js';

/** Tries at announcing an amendment; each waits twice as long as the one before (100 ms first). */
const ANNOUNCE_TRIES = 4;

/**
 * Tells every API process that these jobs changed after they may have ended, so none serves a view
 * cached before the change. Retried briefly: a lost announcement leaves a stale view until the
 * cache's age limit (the API also forgets everything when its own subscription drops).
 */
export async function announceJobsAmended(publisher: Pick<Redis, 'publish'>, jobIds: readonly string[]): Promise<boolean> {
  for (const id of jobIds) {
    let sent = false;
    for (let attempt = 0; attempt < ANNOUNCE_TRIES && !sent; attempt++) {
      if (attempt > 0) await sleep(100 * 2 ** (attempt - 1));
      sent = await publisher.publish(JOB_AMENDED_CHANNEL, id).then(
        () => true,
        () => false,
      );
    }
    if (!sent) return false;
  }
  return true;
}

/**
 * Writes fields of a job that may have ended (its recovery, its retry, a link to a compensating
 * job, its lines swept) and announces it. Every write to an ended job goes through here.
 */
export async function amendJob(
  models: Pick<Models, 'StackJob'>,
  publisher: Pick<Redis, 'publish'>,
  jobId: string,
  fields: Record<string, unknown>,
): Promise<void> {
  await models.StackJob.updateOne({ _id: jobId }, { $set: fields });
  await announceJobsAmended(publisher, [jobId]);
}
