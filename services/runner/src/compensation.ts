import {
  queueThroughGate,
  creatorOf,
  amendJob,
  type Models,
  readDeployment,
  type ResourceDoc,
  stackContents,
  type StackQueue,
  type StackStateDoc,
  tenantOf,
} from '@pds/shared';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RunEnd } from './job-run.js';

export interface CompensationDeps {
  models: Models;
  publisher: Pick<Redis, 'publish'>;
  jobs: Pick<Queue, 'add'>;
  stacks: Pick<StackQueue, 'enqueue' | 'remove'>;
  jobEvent(jobId: string, event: 'compensated' | 'compensation_failed'): Promise<void>;
}

/**
 * After a failed `up` that asked for compensation (`compensation: destroy | reapply_last_good`): a
 * normal job puts the stack back — `destroy` for a stack that never had a successful up, else an
 * `up` of the last good run (its manifest, parameters and template version). Pending operations
 * the failure left are never cleared silently: then nothing is queued and the job says so (a
 * repair first). The failed job's `compensation` records the strategy, the job and the state.
 */
export async function compensate(deps: CompensationDeps, end: RunEnd): Promise<void> {
  const mode = (end.job.options as { compensation?: string } | undefined)?.compensation;
  if (end.job.operation !== 'up' || end.status !== 'failed' || !mode || mode === 'none' || end.job.compensates) return;
  const failedId = end.job._id;
  const latest = await deps.models.StackState.findOne({ resourceId: end.job.resourceId }).sort({ seq: -1 }).lean<StackStateDoc>();
  const pending = latest ? stackContents(readDeployment(latest)).pendingOperations : [];
  if (pending.length > 0) {
    const error = `the failed up left ${pending.length} pending operation(s) (${pending.map((p) => `${p.type} ${p.urn}`).join(', ')}); a repair job deals with them (they are never cleared silently), then compensate by hand`;
    await failCompensation(deps, failedId, mode, error);
    return;
  }
  const resource = await deps.models.Resource.findById(end.job.resourceId).lean<ResourceDoc>();
  if (!resource) return;
  const lastGood = resource.stack?.lastGood;
  if (!lastGood && resource.stack?.lastDeployedAt) {
    // Deployed once, but by a version that did not keep its run: never destroyed by a compensation.
    const error = `the stack was deployed before, but what that up ran was not kept (deployed by an earlier version of the service); run the up again by hand`;
    await failCompensation(deps, failedId, mode, error);
    return;
  }
  const strategy = lastGood ? 'reapply_last_good' : 'destroy';
  // Through the tenant's approval gate, as a person's destroy or up would go (a failing up must not
  // be a way around a gated destroy).
  const job = await queueThroughGate(
    { models: deps.models, queue: deps.jobs, stacks: deps.stacks },
    {
      tenantId: tenantOf(resource),
      resourceId: resource._id,
      resourceVersion: resource.version,
      kind: resource.kind,
      stackFqdn: resource.stackFqdn,
      operation: lastGood ? 'up' : 'destroy',
      options: { ...(lastGood ? { lastGood: true } : {}), message: `compensates the failed up ${failedId} (${strategy})` },
      ...creatorOf(end.job),
      compensates: failedId,
    },
  );
  await amendJob(deps.models, deps.publisher, failedId, { compensation: { mode, strategy, state: 'compensating', jobId: job._id } });
}

/** After a compensating job: the failed job it answers is `compensated`, or `compensation_failed`. */
export async function afterCompensation(deps: CompensationDeps, end: RunEnd): Promise<void> {
  if (!end.job.compensates || end.job.planFor) return; // a gated compensation's preview is not it
  const state = end.status === 'succeeded' ? 'compensated' : 'compensation_failed';
  await amendJob(deps.models, deps.publisher, end.job.compensates, {
    'compensation.state': state,
    'compensation.endedAt': new Date().toISOString(),
  });
  await deps.jobEvent(end.job.compensates, state);
}

/** A compensation that cannot be queued: the failed job says why, and its tenant's webhooks hear it. */
async function failCompensation(deps: CompensationDeps, failedId: string, mode: string, error: string): Promise<void> {
  await amendJob(deps.models, deps.publisher, failedId, { compensation: { mode, state: 'compensation_failed', error } });
  await deps.jobEvent(failedId, 'compensation_failed');
}
