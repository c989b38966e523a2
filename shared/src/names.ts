/**
 * Every queue name, Redis key and pub/sub channel the services share. Nothing else spells them.
 */

/** The BullMQ queue that carries stack jobs; the BullMQ job id is the stack job's id. */
export const STACK_JOBS_QUEUE = 'stack-jobs';

const PREFIX = 'pds';

/** Pub/sub channel on which a job's lines, events and end message are published. */
export function jobChannel(jobId: string): string {
  return `${PREFIX}:job:${jobId}`;
}

/** Key of the lock that serialises operations on one stack. */
export function stackLockKey(stackFqdn: string): string {
  return `${PREFIX}:lock:stack:${stackFqdn}`;
}

/** Channel on which the API asks every runner to cancel a running job (message: the job id). */
export const CANCEL_CHANNEL = `${PREFIX}:cancel`;
