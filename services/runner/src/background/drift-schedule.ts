import {
  jobOnResource,
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
  type WaitingJobs,
  tenantOf,
  liveJobs,
  type JobListIndex,
} from '@pds/shared';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

export interface DriftWorkerDeps {
  models: Models;
  /** A `worker`-role connection. */
  connection: Redis;
  prefix?: string;
  logger: Logger;
  /** Where stack jobs wait for the runner pool. */
  waiting: Pick<WaitingJobs, 'add' | 'forget' | 'settle' | 'untake'>;
  stacks: Pick<StackQueue, 'enqueue' | 'remove'>;
  /** The job list's index: every job queued is added to it. */
  jobList: Pick<JobListIndex, 'add' | 'remove'>;
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
  const queueing = { models: deps.models, waiting: deps.waiting, stacks: deps.stacks, jobList: deps.jobList };

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
    const busy = await liveJobs(deps.models).find({ tenantId, stackFqdn: resource.stackFqdn }, undefined, 1);
    if (busy.length > 0) return 'skipped: the stack has a job queued or running';
    const check = await queueStackJob(queueing, {
      ...jobOnResource(resource),
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
    start: () => void worker.run(),
    async close() {
      await worker.close();
      await schedules.close();
    },
  };
}
