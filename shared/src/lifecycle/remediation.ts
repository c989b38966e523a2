import type { Redis } from 'ioredis';
import { amendJob } from '../job-amend.js';
import { creatorOf, jobOnResource, queueThroughGate, type QueueingDeps } from '../job-queueing.js';
import type { Models, ResourceDoc, StackJobDoc } from '../models/index.js';
import { DRIFT_CHECK } from '../types.js';

export interface RemediationDeps extends QueueingDeps {
  models: Models;
  publisher: Pick<Redis, 'publish'>;
}

/** After a drift check that found drift and remediates: an `up` to put the stack back, linked both ways. Once per check. */
export async function remediateDrift(deps: RemediationDeps, job: StackJobDoc): Promise<void> {
  if (job.operation !== DRIFT_CHECK || job.drift?.result !== 'drifted' || !job.options?.autoRemediate || job.remediatedBy) return;
  const resource = await deps.models.Resource.findById(job.resourceId).lean<ResourceDoc>();
  if (!resource) return;
  // A repeat of this reaction (its first try failed after queueing) finds the up it queued.
  const queued = await deps.models.StackJob.findOne({ remediates: job._id }, { _id: 1 }).lean<{ _id: string }>();
  const up =
    queued ??
    // Through the tenant's approval gate like any up: a gated remediation waits for its approvers.
    (await queueThroughGate(deps, {
      ...jobOnResource(resource),
      operation: 'up',
      // --refresh: the up must diff against the cloud as the check found it, not the state it drifted from.
      options: { refresh: true, message: `remediates the drift found by job ${job._id}` },
      ...creatorOf(job),
      remediates: job._id,
    }));
  await amendJob(deps.models, deps.publisher, job._id, { remediatedBy: up._id });
}
