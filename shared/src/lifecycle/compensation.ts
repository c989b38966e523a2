import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { amendJob } from '../job-amend.js';
import { creatorOf, jobOnResource, queueThroughGate, type QueueingDeps } from '../job-queueing.js';
import type { Models, ResourceDoc, StackJobDoc, StackStateDoc } from '../models/index.js';
import { readDeployment, stackContents } from '../stack-state.js';
import { queueJobEvent } from '../webhooks.js';
import { CUT_SHORT_PATHS, type EndPath } from './transitions.js';

export interface CompensationDeps extends QueueingDeps {
  models: Models;
  publisher: Pick<Redis, 'publish'>;
  /** WEBHOOKS_QUEUE: `compensated` and `compensation_failed` events. */
  webhooks: Pick<Queue, 'add'>;
}

/**
 * After a failed `up` that asked for compensation (`compensation: destroy | reapply_last_good`): a
 * normal job puts the stack back — `destroy` for a stack that never had a successful up, else an
 * `up` of the last good run (its manifest, parameters and template version). Pending operations the
 * failure left are never cleared silently: then nothing is queued and the job says so (a repair
 * first); nor is an up cut short (its runner lost or failed): what it changed is not known. The
 * failed job's `compensation` records the strategy, the job and the state. Once per job.
 */
export async function compensate(deps: CompensationDeps, job: StackJobDoc, via: EndPath): Promise<void> {
  const mode = job.options?.compensation;
  if (job.operation !== 'up' || job.status !== 'failed' || !mode || mode === 'none' || job.compensates || job.compensation) return;
  if (CUT_SHORT_PATHS.includes(via)) {
    const error = `the up was cut short (${job.reason ?? via}): what it changed is not known; a refresh shows the stack as it is and a repair job deals with pending operations, then compensate by hand`;
    return failCompensation(deps, job._id, mode, error);
  }
  const latest = await deps.models.StackState.findOne({ resourceId: job.resourceId }).sort({ seq: -1 }).lean<StackStateDoc>();
  const pending = latest ? stackContents(readDeployment(latest)).pendingOperations : [];
  if (pending.length > 0) {
    const error = `the failed up left ${pending.length} pending operation(s) (${pending.map((p) => `${p.type} ${p.urn}`).join(', ')}); a repair job deals with them (they are never cleared silently), then compensate by hand`;
    return failCompensation(deps, job._id, mode, error);
  }
  const resource = await deps.models.Resource.findById(job.resourceId).lean<ResourceDoc>();
  if (!resource) return;
  const lastGood = resource.stack?.lastGood;
  if (!lastGood && resource.stack?.lastDeployedAt) {
    // Deployed once, but by a version that did not keep its run: never destroyed by a compensation.
    const error = `the stack was deployed before, but what that up ran was not kept (deployed by an earlier version of the service); run the up again by hand`;
    return failCompensation(deps, job._id, mode, error);
  }
  const strategy = lastGood ? 'reapply_last_good' : 'destroy';
  // A repeat of this reaction (its first try failed after queueing) finds the job it queued.
  const queued = await deps.models.StackJob.findOne({ compensates: job._id }, { _id: 1 }).lean<{ _id: string }>();
  // Through the tenant's approval gate, as a person's destroy or up would go (a failing up must not
  // be a way around a gated destroy).
  const undo =
    queued ??
    (await queueThroughGate(deps, {
      ...jobOnResource(resource),
      operation: lastGood ? 'up' : 'destroy',
      options: { ...(lastGood ? { lastGood: true } : {}), message: `compensates the failed up ${job._id} (${strategy})` },
      ...creatorOf(job),
      compensates: job._id,
    }));
  await amendJob(deps.models, deps.publisher, job._id, { compensation: { mode, strategy, state: 'compensating', jobId: undo._id } });
}

/**
 * After a compensating job, however it ended: the failed up it answers is `compensated`, or
 * `compensation_failed` saying how its compensating job ended (a gated compensation's preview is not it).
 */
export async function answerCompensation(deps: CompensationDeps, job: StackJobDoc): Promise<void> {
  if (!job.compensates || job.planFor) return;
  const state = job.status === 'succeeded' ? 'compensated' : 'compensation_failed';
  await amendJob(deps.models, deps.publisher, job.compensates, {
    'compensation.state': state,
    ...(state === 'compensation_failed'
      ? { 'compensation.error': `the compensating job ${job._id} ${howItEnded(job)}; the stack was not put back` }
      : {}),
    'compensation.endedAt': new Date().toISOString(),
  });
  await queueJobEvent(deps.webhooks, job.compensates, state);
}

function howItEnded(job: StackJobDoc): string {
  if (job.reason === 'runner_lost') return 'was lost with its runner (runner_lost); it may have changed resources half-way';
  if (job.status === 'cancelled' || job.status === 'rejected')
    return `was ${job.status}${job.reason && job.reason !== job.status ? ` (${job.reason})` : ''}`;
  return `ended ${job.status}${job.reason && job.reason !== job.status ? ` (${job.reason})` : ''}`;
}

/** A compensation that cannot be queued: the failed job says why, and its tenant's webhooks hear it. */
async function failCompensation(deps: CompensationDeps, failedId: string, mode: string, error: string): Promise<void> {
  await amendJob(deps.models, deps.publisher, failedId, { compensation: { mode, state: 'compensation_failed', error } });
  await queueJobEvent(deps.webhooks, failedId, 'compensation_failed');
}
