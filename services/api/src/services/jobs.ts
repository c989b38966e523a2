import {
  CANCEL_CHANNEL,
  errors,
  isFinalStatus,
  type JobStatus,
  type ResourceDoc,
  type StackQueue,
  type Models,
  type Operation,
  type KindRegistry,
  type Logger,
  QueueUnavailableError,
  queueGatedJob,
  approvalOf,
  GATED_OPERATIONS,
  isGatable,
  WAITING_STATUSES,
  queueStackJob,
  jobOnResource,
  STATE_OPERATIONS,
  type StackJobDoc,
  operationRole,
  type Principal,
  roleAllows,
  tenantFilter,
  type TenantViewer,
  tenantOf,
  type WaitingJobs,
  type JobListIndex,
} from '@pds/shared';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { EndedJobViews } from './ended-jobs.js';
import { type JobView, jobView } from './views.js';
import { jobDecisions } from './job-decisions.js';
import { jobEnding } from './job-ending.js';
import { jobPolicy } from './job-policy.js';
import { jobReads } from './job-reads.js';

export interface JobServiceDeps {
  models: Models;
  queue: Pick<Queue, 'add' | 'remove' | 'getJob' | 'getJobCounts' | 'keys'>;
  /** Where approval events are announced to webhooks (absent: not announced). */
  webhookQueue?: Pick<Queue, 'add'>;
  /** JOB_LIFECYCLE_QUEUE: the after-end reactions of a job ended here (its webhooks, the compensation it was). */
  lifecycleQueue: Pick<Queue, 'add'>;
  /** For telling runners and watchers (cancel requests, end messages), and a running job's progress. */
  redis: Pick<Redis, 'publish' | 'get' | 'hexists' | 'zcount' | 'eval'>;
  /** The per-stack line jobs wait in. */
  stacks: Pick<StackQueue, 'enqueue' | 'remove' | 'claim' | 'unclaim' | 'describe' | 'next'>;
  /** Where jobs wait for the dispatcher, in their tenant's line. */
  waiting: Pick<WaitingJobs, 'add' | 'forget' | 'entry' | 'settle' | 'untake'>;
  /** The job list's index: every job queued is added; lists read it. */
  jobList: JobListIndex;
  /** A job that may start at once goes straight on the runner queue, its tenant place held this long (absent: every job waits for the dispatcher). */
  placeHoldMs?: number;
  /** Views of ended jobs, shared by the API's routes, dropped when a job changes after its end (without it every read goes to MongoDB). */
  endedJobs?: EndedJobViews<JobView>;
  /** The templates (their versions are checked against a tenant's allowed range before a deploy). */
  kinds?: KindRegistry;
  logger: Logger;
}

export type { JobView };

/** How jobs wait for a busy stack: `fifo` (all run, in order) or `latest` (a new `up` supersedes the waiting ones). */
export type QueuePolicy = 'fifo' | 'latest';

/** The label that sets a resource's default queue policy. */
export const QUEUE_POLICY_LABEL = 'deploy.pulumi.dev/queue-policy';

function queuePolicyOf(resource: { labels?: { key: string; value: string }[] }): QueuePolicy {
  return resource.labels?.find((l) => l.key === QUEUE_POLICY_LABEL)?.value === 'latest' ? 'latest' : 'fifo';
}

export interface CreateJobInput {
  operation: Operation;
  queuePolicy?: QueuePolicy;
  message?: string;
  timeoutSeconds?: number;
  expectNoChanges?: boolean;
  targets?: string[];
  /** State operations (STATE_OPERATIONS): the resource, its new name, the choices for pending creates. */
  urn?: string;
  name?: string;
  pendingCreates?: { urn: string; action: 'clear' | 'import'; id?: string }[];
  version?: number;
  /** restore of an uploaded state (POST /v1/resources/:id/stack/import only): the upload's id. */
  upload?: string;
  /** up, destroy, restore: run a preview first and wait for approval (the tenant's policy may require it anyway). */
  requireApproval?: boolean;
  /** up: what puts the stack back if it fails (destroy a stack never deployed, else reapply the last good run). */
  compensation?: 'none' | 'destroy' | 'reapply_last_good';
}

export interface JobListFilter {
  tenant?: string;
  resourceId?: string;
  status?: JobStatus;
  operation?: Operation;
  stackFqdn?: string;
  limit: number;
  cursor?: string;
}

/** Creating, reading and listing stack jobs; knows nothing of HTTP. */
export function jobService(deps: JobServiceDeps) {
  const { models, redis, stacks, waiting, jobList } = deps;
  const queueing = {
    models,
    waiting,
    stacks,
    jobList,
    // Only on a Redis-backed queue: its keys tell the jobs holding slots.
    ...(deps.placeHoldMs !== undefined && deps.queue.keys?.wait ? { fastLane: { queue: deps.queue, holdMs: deps.placeHoldMs } } : {}),
  };
  const ending = jobEnding(deps);
  const rules = jobPolicy(deps);
  const reads = jobReads(deps);
  const { decide } = jobDecisions(deps, ending, reads.find);

  return {
    /** Records the job as queued, then puts it on the queue; if the queue is down, nothing is left behind. */
    async create(resourceId: string, input: CreateJobInput, caller: Principal) {
      const resource = await models.Resource.findOne({ _id: resourceId, ...tenantFilter(caller) }).lean<ResourceDoc>();
      if (!resource) throw errors.notFound(`resource ${resourceId} not found`);
      const { operation, requireApproval, ...options } = input;
      const policy = await rules.admit(resource, operation, caller);
      if (STATE_OPERATIONS.includes(operation)) await rules.assertStateOperation(resource, operation, options);
      if (requireApproval && !isGatable(operation))
        throw errors.invalidRequest(`requireApproval: only ${GATED_OPERATIONS.join(', ')} jobs are gated (not ${operation})`);
      if (options.compensation && options.compensation !== 'none') {
        if (operation !== 'up') throw errors.invalidRequest(`compensation: only a failed up is compensated (not ${operation})`);
        // A stack never deployed is compensated by a destroy: the caller must be one who may destroy.
        const destroyRole = operationRole(policy, 'destroy');
        if (!resource.stack?.lastDeployedAt && caller.role !== 'platform' && !roleAllows(caller.role, destroyRole))
          throw errors.forbidden(
            `compensation: this stack was never deployed, so it is compensated by a destroy, which needs the ${destroyRole} role`,
          );
      }
      const approval = approvalOf(policy, operation, requireApproval ?? false);
      // A destroy's preview plans from the state: with none there is nothing to approve (or destroy).
      if (approval && !approval.allowSelfApproval && caller.identityUnknown)
        throw errors.forbidden(
          `token "${caller.name}" was issued before tokens recorded whom they act for: no approver could be told apart from it, so its ${operation} could never be approved; issue a new token (policy: approvals.allowSelfApproval)`,
        );
      if (approval && operation === 'destroy' && !resource.stack?.lastDeployedAt && !(await models.StackState.exists({ resourceId })))
        throw errors.conflict(`resource ${resourceId}'s stack has no state yet: there is nothing to destroy`);
      const fields = {
        ...jobOnResource(resource),
        operation,
        options,
        createdBy: {
          id: caller.id,
          name: caller.name,
          ...(caller.actsFor ? { actsFor: caller.actsFor } : {}),
          ...(caller.identityUnknown ? { identityUnknown: true } : {}),
        },
      };
      const tenantLimit = { maxConcurrentJobs: policy.maxConcurrentJobs };
      let created: StackJobDoc;
      try {
        created = await rules.withinQueueLimit(tenantOf(resource), policy, async () => {
          if (!approval) return queueStackJob(queueing, fields, tenantLimit);
          // Gated: its preview first in the stack's line, then the job itself, which waits for approval after it.
          return (await queueGatedJob(queueing, fields, approval, tenantLimit)).gated;
        });
      } catch (err) {
        if (!(err instanceof QueueUnavailableError)) throw err;
        throw errors.unavailable(`the job queue (Redis) is unavailable; no job was created: ${(err as Error).message}`);
      }
      if (operation === 'up' && (options.queuePolicy ?? queuePolicyOf(resource)) === 'latest')
        await ending.supersede(created, 'up', `superseded by job ${created._id} (queue policy latest)`);
      // Only where a schedule queues checks (a check a person asked for runs in its turn, at no lower
      // priority than other jobs).
      if (operation !== 'drift-check' && resource.driftSchedule)
        await ending.supersede(created, 'drift-check', `a drift check gives way to job ${created._id} on its stack`);
      return jobView(created);
    },

    /**
     * Cancels a job. A queued one ends `cancelled` at once and leaves the queue (`accepted: false`);
     * a running one is asked to stop — every runner hears the request, the one running it sends
     * Pulumi SIGINT, and the job ends `cancelled` with its lines so far (`accepted: true`).
     */
    async cancel(id: string, viewer: TenantViewer) {
      const job = await reads.find(id, viewer);
      if (isFinalStatus(job.status as JobStatus)) throw errors.conflict(`job ${id} has already ended (${job.status}); nothing to cancel`);
      const cancelled =
        WAITING_STATUSES.includes(job.status as JobStatus) && (await ending.cancelQueued(job, 'cancelled', 'cancelled before it started'));
      if (cancelled) return { accepted: false, job: jobView(cancelled) };
      // It started meanwhile: ask the runners.
      try {
        await redis.publish(CANCEL_CHANNEL, id);
      } catch (err) {
        throw errors.unavailable(`cannot reach the runners (Redis is unavailable): ${(err as Error).message}`);
      }
      // Only on a job the store shows running: on a store that writes whole documents (FerretDB on
      // SQLite) this write, racing the runner's move to `running`, could put `queued` back.
      const current = await models.StackJob.findOneAndUpdate(
        { _id: id, status: 'running' },
        { $set: { cancelRequestedAt: new Date() } },
        { returnDocument: 'after' },
      ).lean<StackJobDoc>();
      return { accepted: true, job: jobView(current ?? job) };
    },

    decide,
    get: reads.get,
    list: reads.list,
    lines: reads.lines,
  };
}
