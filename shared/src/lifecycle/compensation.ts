import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { amendJob } from '../job-amend.js';
import { creatorOf, jobOnResource, queueThroughGate, type QueueingDeps } from '../job-queueing.js';
import type { Models, ResourceDoc, StackJobDoc, StackStateDoc } from '../models/index.js';
import { readDeployment, stackContents } from '../stack-state.js';
import { queueJobEvent } from '../webhooks.js';
import { isInfrastructureReason } from './end-reasons.js';
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
 * `up` of the last good run (its manifest, parameters and template version). Only an up whose own
 * run ended it failed: one that never ran (its preview failed, cancelled, not startable) changed
 * nothing. Nor is anything queued, the job saying why, for an up cut short (its runner lost or
 * failed, its lock or its output lost: what it changed is not known) or one that left pending
 * operations (never cleared silently: a repair first). The failed job's `compensation` records the
 * strategy, the job and the state; it is written before the job is queued, so the compensating job's
 * own end (answerCompensation) always lands after it. Once per job.
 */
export async function compensate(deps: CompensationDeps, job: StackJobDoc, via: EndPath): Promise<void> {
  const mode = job.options?.compensation;
  if (job.operation !== 'up' || job.status !== 'failed' || !mode || mode === 'none' || job.compensates) return;
  if (via !== 'run' && !CUT_SHORT_PATHS.includes(via)) return;
  const retrying = job.compensation?.state === 'compensating' && !job.compensation.jobId; // a repeat after a partial failure
  if (job.compensation && !retrying) return;
  if (!retrying) {
    if (CUT_SHORT_PATHS.includes(via) || isInfrastructureReason(job.reason ?? undefined)) {
      const error = `the up was cut short (${job.reason ?? via}): what it changed is not known; a refresh shows the stack as it is and a repair job deals with pending operations, then compensate by hand`;
      return failCompensation(deps, job._id, mode, error);
    }
    const refused = await whyNotCompensated(deps, job);
    if (refused) return failCompensation(deps, job._id, mode, refused);
  }
  const resource = await deps.models.Resource.findById(job.resourceId).lean<ResourceDoc>();
  if (!resource) return;
  const lastGood = resource.stack?.lastGood;
  const strategy = lastGood ? 'reapply_last_good' : 'destroy';
  if (!retrying) {
    // Claimed before the job is queued: only one compensation per failed up, and its answer lands after.
    const claimed = await deps.models.StackJob.updateOne(
      { _id: job._id, compensation: { $exists: false } },
      { $set: { compensation: { mode, strategy, state: 'compensating' } } },
    );
    if (claimed.matchedCount === 0) return;
  }
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
  await amendJob(deps.models, deps.publisher, job._id, { 'compensation.jobId': undo._id });
}

/** Why a failed up's stack cannot be put back by a job (pending operations, a last run not kept), or undefined. */
async function whyNotCompensated(deps: CompensationDeps, job: StackJobDoc): Promise<string | undefined> {
  const latest = await deps.models.StackState.findOne({ resourceId: job.resourceId }).sort({ seq: -1 }).lean<StackStateDoc>();
  const pending = latest ? stackContents(readDeployment(latest)).pendingOperations : [];
  if (pending.length > 0)
    return `the failed up left ${pending.length} pending operation(s) (${pending.map((p) => `${p.type} ${p.urn}`).join(', ')}); a repair job deals with them (they are never cleared silently), then compensate by hand`;
  const resource = await deps.models.Resource.findById(job.resourceId, { stack: 1 }).lean<ResourceDoc>();
  // Deployed once, but by a version that did not keep its run: never destroyed by a compensation.
  if (resource && !resource.stack?.lastGood && resource.stack?.lastDeployedAt)
    return `the stack was deployed before, but what that up ran was not kept (deployed by an earlier version of the service); run the up again by hand`;
  return undefined;
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
