import type { Redis } from 'ioredis';
import { amendJob } from '../job-amend.js';
import { creatorOf, queueStackJob, type QueueingDeps } from '../job-queueing.js';
import type { Logger } from '../logger.js';
import type { StackJobDoc } from '../models/index.js';
import { tenantOf } from '../tenancy.js';
import type { Operation } from '../types.js';
import { type InfrastructureReason, isInfrastructureReason, RECOVERY } from './end-reasons.js';

const WHAT_HAPPENED: Record<InfrastructureReason, string> = {
  runner_lost: 'its runner was lost',
  lock_lost: 'its stack lock was lost',
  lines_not_persisted: 'its output could not be stored',
};

export type RecoveryDeps = QueueingDeps & { logger: Logger; publisher: Pick<Redis, 'publish'> };

/**
 * After a run the infrastructure cut short, the decision recorded on the job as `recovery` (RECOVERY):
 * a preview or refresh queued again as a new job (`retryOf` / `retriedBy`); an up or destroy never
 * re-run blindly: its stack is already marked for repair (the next run first clears the Pulumi lock
 * the cut run may have left; Pulumi reports pending operations then) and a person decides. Once per
 * job: a job with a decision, or with a retry already queued, is left as it is. Returns the decision.
 */
export async function recoverJob(deps: RecoveryDeps, job: StackJobDoc): Promise<string | undefined> {
  const reason = job.reason ?? undefined;
  if (job.status !== 'failed' || !isInfrastructureReason(reason) || job.recovery) return undefined;
  const attempt = job.attempt ?? 1;
  const operation = job.operation as Operation;
  const { retried, maxAttempts } = RECOVERY;
  let recovery: string;
  let retriedBy: string | undefined;
  if (retried.includes(operation) && attempt < maxAttempts && !job.planFor) {
    const queued = await deps.models.StackJob.findOne({ retryOf: job._id }, { _id: 1 }).lean<{ _id: string }>();
    const retry =
      queued ??
      (await queueStackJob(deps, {
        tenantId: tenantOf(job),
        resourceId: job.resourceId,
        resourceVersion: job.resourceVersion,
        kind: job.kind,
        stackFqdn: job.stackFqdn,
        operation,
        options: { ...job.options },
        ...creatorOf(job),
        retryOf: job._id,
        attempt: attempt + 1,
        ...(job.templateCheck ? { templateCheck: job.templateCheck } : {}),
      }));
    retriedBy = retry._id;
    recovery = `retried as job ${retry._id} (attempt ${attempt + 1} of ${maxAttempts}): a ${operation} changes no resources`;
  } else if (retried.includes(operation)) {
    recovery = `not retried: ${maxAttempts} attempts were cut short`;
  } else {
    recovery = `not retried: ${operation === 'up' ? 'an' : 'a'} ${operation} may have changed resources before ${WHAT_HAPPENED[reason]}; the stack's Pulumi lock is cleared before its next run, and it may hold pending operations: a refresh shows them (GET /v1/resources/:id/stack), and a repair job deals with them (operation repair, pendingCreates: import each by its ID or clear it); then run the ${operation} again`;
  }
  await amendJob(deps.models, deps.publisher, job._id, { recovery, ...(retriedBy ? { retriedBy } : {}) });
  deps.logger.warn({ jobId: job._id, reason, retriedBy }, recovery);
  return recovery;
}
