import type { LastGoodRun, Models } from './models/index.js';
import type { StackJobDoc } from './models/stack-job.js';
import type { JobStatus, Operation } from './types.js';

/** A stack's life, as its resource shows it. */
export const STACK_STATUSES = ['pending', 'deploying', 'deployed', 'failed', 'destroying', 'destroyed'] as const;
export type StackStatus = (typeof STACK_STATUSES)[number];

/** Where a job moves its stack when it starts: an up deploys, a destroy destroys; the others leave it. */
export function stackStatusOnStart(operation: Operation): StackStatus | undefined {
  if (operation === 'up') return 'deploying';
  if (operation === 'destroy') return 'destroying';
  return undefined;
}

/** Where a job leaves its stack when it ends: a cut-short or cancelled up or destroy may have changed it half-way (`failed`). */
export function stackStatusOnEnd(operation: Operation, status: JobStatus): StackStatus | undefined {
  if (operation !== 'up' && operation !== 'destroy') return undefined;
  if (status !== 'succeeded') return 'failed';
  return operation === 'up' ? 'deployed' : 'destroyed';
}

/**
 * Writes a job's start or end into its resource's `stack` (jobs on one stack run one at a time, so
 * the last write is the stack's state). A successful up also records the outputs (JSON text, as the
 * job keeps them), when and by whom it was deployed, and the resource version it ran.
 */
export async function recordStackLife(
  models: Pick<Models, 'Resource'>,
  job: Pick<StackJobDoc, '_id' | 'resourceId' | 'operation' | 'createdBy'>,
  phase:
    | { started: true }
    | { status: JobStatus; outputs?: string; resourceVersion?: number; templateVersion?: string; lastGood?: LastGoodRun; at: Date },
): Promise<void> {
  const operation = job.operation as Operation;
  const status = 'started' in phase ? stackStatusOnStart(operation) : stackStatusOnEnd(operation, phase.status);
  if (!status) return;
  const set: Record<string, unknown> = { 'stack.status': status, 'stack.jobId': job._id, 'stack.changedAt': new Date() };
  if (!('started' in phase) && status === 'deployed') {
    Object.assign(set, {
      'stack.outputs': phase.outputs ?? '{}',
      'stack.lastDeployedAt': phase.at,
      'stack.lastDeployedBy': job.createdBy?.name ?? null,
      ...(phase.resourceVersion !== undefined ? { 'stack.resourceVersion': phase.resourceVersion } : {}),
      ...(phase.templateVersion !== undefined ? { 'stack.templateVersion': phase.templateVersion } : {}),
      ...(phase.lastGood ? { 'stack.lastGood': phase.lastGood } : {}),
    });
  }
  await models.Resource.updateOne({ _id: job.resourceId }, { $set: set });
}
