import {
  queueThroughGate,
  creatorOf,
  amendJob,
  DRIFT_QUEUE,
  DRIFT_SCHEDULE_CREATOR,
  type DriftSchedule,
  type DriftTick,
  driftSpreadMs,
  type Logger,
  type Models,
  queueStackJob,
  type ResourceDoc,
  type StackQueue,
  tenantOf,
  WAITING_STATUSES,
} from '@pds/shared';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RunEnd } from './job-run.js';

export interface DriftWorkerDeps {
  models: Models;
  /** A `worker`-role connection. */
  connection: Redis;
  publisher: Pick<Redis, 'publish'>;
  prefix?: string;
  logger: Logger;
  /** Where stack jobs are queued (the runner's own queue and stack lines). */
  jobs: Pick<Queue, 'add'>;
  stacks: Pick<StackQueue, 'enqueue' | 'remove'>;
  /** DRIFT_SPREAD_SECONDS. */
  config: { DRIFT_SPREAD_SECONDS: number };
}

/** Stacks a check can say something about: deployed, or left half-way by a failed run. */
const CHECKED_STACKS = ['deployed', 'failed'];

/**
 * Turns drift schedules' ticks into `drift-check` jobs, and drift found into an `up` where the
 * schedule remediates. A tick is skipped while the stack has any job queued or running: a check
 * never delays a user's job, and checks never pile up.
 */
export function createDriftWorker(deps: DriftWorkerDeps) {
  const schedules = new Queue<DriftTick>(DRIFT_QUEUE, { connection: deps.connection, prefix: deps.prefix });
  const queueing = { models: deps.models, queue: deps.jobs, stacks: deps.stacks };

  async function tick(job: Job<DriftTick>, token?: string): Promise<string> {
    const { resourceId } = job.data;
    const resource = await deps.models.Resource.findById(resourceId).lean<ResourceDoc>();
    const schedule = resource?.driftSchedule ? (JSON.parse(resource.driftSchedule) as DriftSchedule) : undefined;
    if (!resource || !schedule || schedule.paused) {
      // The resource or its schedule went (or a pause did not reach Redis): stop firing.
      await schedules.removeJobScheduler(resourceId);
      return 'no schedule';
    }
    // First the resource's own wait, so that schedules sharing a cron do not all check at once.
    const spread = job.data.spread ? 0 : driftSpreadMs(resourceId, schedule.cron, deps.config.DRIFT_SPREAD_SECONDS);
    if (spread > 0) {
      await job.updateData({ ...job.data, spread: true });
      await job.moveToDelayed(Date.now() + spread, token);
      throw new DelayedError();
    }
    if (!CHECKED_STACKS.includes(resource.stack?.status ?? 'pending'))
      return `skipped: the stack is ${resource.stack?.status ?? 'pending'}`;
    const tenantId = tenantOf(resource);
    const busy = await deps.models.StackJob.exists({
      tenantId,
      stackFqdn: resource.stackFqdn,
      status: { $in: [...WAITING_STATUSES, 'running'] },
    });
    if (busy) return 'skipped: the stack has a job queued or running';
    const check = await queueStackJob(queueing, {
      tenantId,
      resourceId,
      resourceVersion: resource.version,
      kind: resource.kind,
      stackFqdn: resource.stackFqdn,
      operation: 'drift-check',
      options: { ignore: schedule.ignore, autoRemediate: schedule.autoRemediate },
      // Acts for whoever set the schedule: that identity's approval of a gated remediation is a self-approval.
      createdBy: {
        id: DRIFT_SCHEDULE_CREATOR,
        name: `drift schedule (set by ${schedule.updatedBy})`,
        ...(schedule.updatedByIdentity ? { actsFor: schedule.updatedByIdentity } : {}),
      },
    });
    return `queued ${check._id}`;
  }

  const worker = new Worker<DriftTick>(DRIFT_QUEUE, tick, {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: 2,
    autorun: false,
  });
  worker.on('error', (err) => deps.logger.error({ err }, 'drift worker error'));
  worker.on('failed', (job, err) => deps.logger.warn({ err: err.message, resourceId: job?.data.resourceId }, 'a drift tick failed'));

  return {
    /** After a check that found drift and remediates: an `up` to put the stack back, linked both ways. */
    async afterCheck(end: RunEnd): Promise<void> {
      const options = end.job.options as { autoRemediate?: boolean } | undefined;
      if (end.job.operation !== 'drift-check' || end.drift?.result !== 'drifted' || !options?.autoRemediate) return;
      const resource = await deps.models.Resource.findById(end.job.resourceId).lean<ResourceDoc>();
      if (!resource) return;
      const fields = {
        tenantId: tenantOf(resource),
        resourceId: resource._id,
        resourceVersion: resource.version,
        kind: resource.kind,
        stackFqdn: resource.stackFqdn,
        operation: 'up' as const,
        // --refresh: the up must diff against the cloud as the check found it, not the state it drifted from.
        options: { refresh: true, message: `remediates the drift found by job ${end.job._id}` },
        ...creatorOf(end.job),
        remediates: end.job._id,
      };
      // Through the tenant's approval gate like any up: a gated remediation waits for its approvers.
      const up = await queueThroughGate(queueing, fields);
      await amendJob(deps.models, deps.publisher, end.job._id, { remediatedBy: up._id });
    },
    start: () => void worker.run(),
    async close() {
      await worker.close();
      await schedules.close();
    },
  };
}
