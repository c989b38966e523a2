import type { Redis } from 'ioredis';
import {
  amendJob,
  creatorOf,
  type Logger,
  type Operation,
  queueStackJob,
  type QueueingDeps,
  type StackJobDoc,
  tenantOf,
} from '@pds/shared';

/** Runs of these operations change no resource, so one cut short by the infrastructure is run again. */
const RETRIED: readonly Operation[] = ['preview', 'refresh'];
export const MAX_ATTEMPTS = 3;

/**
 * Why a run can end that is neither the program's nor the user's doing: its runner vanished, its
 * stack lock was lost (Redis away longer than the lock's TTL), its lines or result could not be
 * written (MongoDB away longer than OUTAGE_TOLERANCE_SECONDS). Only these lead to a recovery.
 */
export const INFRASTRUCTURE_REASONS = ['runner_lost', 'lock_lost', 'lines_not_persisted'] as const;
export type InfrastructureReason = (typeof INFRASTRUCTURE_REASONS)[number];

export function isInfrastructureReason(reason: string | undefined): reason is InfrastructureReason {
  return (INFRASTRUCTURE_REASONS as readonly string[]).includes(reason ?? '');
}

const WHAT_HAPPENED: Record<InfrastructureReason, string> = {
  runner_lost: 'its runner was lost',
  lock_lost: 'its stack lock was lost',
  lines_not_persisted: 'its output could not be stored',
};

export type RecoveryDeps = QueueingDeps & { logger: Logger; publisher: Pick<Redis, 'publish'> };

/**
 * What happens after a run the infrastructure cut short, recorded on the job as `recovery`. A
 * preview or refresh is queued again as a new job (`retryOf` / `retriedBy`, up to MAX_ATTEMPTS); an
 * up or destroy may have changed resources half-way, so it is never re-run blindly: the stack is
 * already marked for repair (the next run on it first clears the Pulumi lock the cut run may have
 * left; Pulumi reports pending operations then) and a person decides. Returns the decision.
 */
export async function recoverJob(deps: RecoveryDeps, job: StackJobDoc, reason: InfrastructureReason): Promise<string> {
  const attempt = job.attempt ?? 1;
  const operation = job.operation as Operation;
  let recovery: string;
  let retriedBy: string | undefined;
  // The preview of a gated job is not run again: the gated job fails without it (it needs a fresh request).
  if (RETRIED.includes(operation) && attempt < MAX_ATTEMPTS && !job.planFor) {
    const retry = await queueStackJob(deps, {
      tenantId: tenantOf(job),
      resourceId: job.resourceId,
      resourceVersion: job.resourceVersion,
      kind: job.kind,
      stackFqdn: job.stackFqdn,
      operation,
      options: (job.options as Record<string, unknown>) ?? {},
      ...creatorOf(job),
      retryOf: job._id,
      attempt: attempt + 1,
      ...(job.templateCheck ? { templateCheck: job.templateCheck } : {}),
    });
    retriedBy = retry._id;
    recovery = `retried as job ${retry._id} (attempt ${attempt + 1} of ${MAX_ATTEMPTS}): a ${operation} changes no resources`;
  } else if (RETRIED.includes(operation)) {
    recovery = `not retried: ${MAX_ATTEMPTS} attempts were cut short`;
  } else {
    recovery = `not retried: ${operation === 'up' ? 'an' : 'a'} ${operation} may have changed resources before ${WHAT_HAPPENED[reason]}; the stack's Pulumi lock is cleared before its next run, and it may hold pending operations: a refresh shows them (GET /v1/resources/:id/stack), and a repair job deals with them (operation repair, pendingCreates: import each by its ID or clear it); then run the ${operation} again`;
  }
  await amendJob(deps.models, deps.publisher, job._id, { recovery, ...(retriedBy ? { retriedBy } : {}) });
  deps.logger.warn({ jobId: job._id, reason, retriedBy }, recovery);
  return recovery;
}
