import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { JobOptions } from './job-fields.js';
import type { Models, ResourceDoc, StackJobDoc } from './models/index.js';
import { handOver, type WaitingEntry, type WaitingJobs } from './dispatch/waiting-jobs.js';
import type { JobListIndex } from './job-list-index.js';
import { liveJobs } from './live-jobs.js';
import type { JobClass } from './names.js';
import type { StackQueue } from './stack-queue.js';
import { stackKeyOf, tenantOf } from './tenancy.js';
import { approvalOf, decodePolicy } from './policy.js';
import type { Operation } from './types.js';

/** The job could not be put on the queue (Redis refused); it was not created. */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}

export interface QueueingDeps {
  models: Pick<Models, 'StackJob' | 'LiveJob'>;
  /** Where jobs wait for the dispatcher (shared/src/dispatch), which puts them on the runner queue. */
  waiting: Pick<WaitingJobs, 'add' | 'forget' | 'settle' | 'untake'>;
  stacks: Pick<StackQueue, 'enqueue' | 'remove'>;
  /** The job list's index: every job is in it before it is on any line. */
  jobList: Pick<JobListIndex, 'add' | 'remove'>;
  /**
   * The runner queue, for a job that may start at once (nobody else waits, a slot is free): it goes
   * there without waiting for the dispatcher's round. Without it every job waits for the dispatcher.
   */
  fastLane?: { queue: Pick<Queue, 'add' | 'keys'>; holdMs: number };
}

/** What the caller knows of the job's tenant: its limit, which a job that starts at once is held to. */
export interface TenantLimit {
  maxConcurrentJobs: number | undefined;
}

/** Who asked for a job: the token, and the identity it acts for (approvals count identities). */
export interface JobCreator {
  id: string;
  name: string;
  actsFor?: string;
  /** Its token was issued before tokens recorded whom they act for: it could be anyone's. */
  identityUnknown?: boolean;
}

/** The creator of a job that another job follows from (a retry, a compensation, a remediation). */
export function creatorOf(job: Pick<StackJobDoc, 'createdBy'>): { createdBy: JobCreator } | Record<string, never> {
  const by = job.createdBy;
  if (!by?.id) return {};
  return {
    createdBy: {
      id: by.id,
      name: by.name ?? '',
      ...(by.actsFor ? { actsFor: by.actsFor } : {}),
      ...(by.identityUnknown ? { identityUnknown: true } : {}),
    },
  };
}

/** The fields of a new job on `resource` that come from it: its tenant, its version, its kind and its stack. */
export function jobOnResource(resource: Pick<ResourceDoc, '_id' | 'tenantId' | 'version' | 'kind' | 'stackFqdn'>) {
  return {
    tenantId: tenantOf(resource),
    resourceId: resource._id,
    resourceVersion: resource.version,
    kind: resource.kind,
    stackFqdn: resource.stackFqdn,
  };
}

export interface NewJob {
  /** The tenant of its resource. */
  tenantId: string;
  resourceId: string;
  resourceVersion: number;
  kind: string;
  stackFqdn: string;
  operation: Operation;
  options: JobOptions;
  /** Who asked for it (a retry: who asked for the job it repeats). */
  createdBy?: JobCreator;
  /** A retry: the job it repeats, and which attempt this is (the first run is attempt 1). */
  retryOf?: string;
  attempt?: number;
  /** A template's publish check: the version its smoke preview runs (no resource). */
  templateCheck?: string;
  /** An up queued by a drift check to put the stack back: that check. */
  remediates?: string;
  /** Its id, when it is known before (a gated job, which its preview names). */
  _id?: string;
  /** An approval-gated job's approval; its preview: the gated job. */
  approval?: Record<string, unknown>;
  planFor?: string;
  /** A compensating job: the failed up it answers. */
  compensates?: string;
}

/**
 * BullMQ priority of scheduled drift checks: the lowest, so a runner takes every user's job first
 * (jobs without a priority go before any with one). A check a person asks for runs like any job.
 */
export const DRIFT_CHECK_PRIORITY = 2_000_000;

/** The creator id of the jobs a drift schedule queues (its checks, and their remediations). */
export const DRIFT_SCHEDULE_CREATOR = 'drift-schedule';

/** The service's own checks (scheduled drift checks, template publish checks) wait behind people's jobs. */
function classOf(fields: Pick<NewJob, 'operation' | 'createdBy' | 'templateCheck'>): JobClass {
  const scheduledCheck = fields.operation === 'drift-check' && fields.createdBy?.id === DRIFT_SCHEDULE_CREATOR;
  return scheduledCheck || fields.templateCheck ? 'checks' : 'people';
}

/**
 * Records a job as `queued`, puts it in its stack's line, then in its tenant's line for the
 * dispatcher (which puts it on the runner queue, its id the BullMQ job id, in its tenant's turn).
 * A job that may start at once and passes nobody (the deps' fast lane, and `tenant` known) goes on
 * the runner queue here instead. If Redis refuses, the job is taken back out and the error
 * rethrown: nothing is left half-queued (QueueUnavailableError). The one way jobs are queued (the
 * API, and the runners' retries).
 */
export async function queueStackJob(deps: QueueingDeps, fields: NewJob, tenant?: TenantLimit): Promise<StackJobDoc> {
  const { models, waiting, stacks, jobList, fastLane } = deps;
  const live = liveJobs(models);
  // Live before it exists: the active-job checks read the live entries, never a job without one.
  const id = fields._id ?? randomUUID();
  await live.record({ ...fields, _id: id });
  const job = await models.StackJob.create({ ...fields, _id: id }).catch(async (err: Error) => {
    // Only if the job is surely not there (a write reported failed may have been made).
    if ((await models.StackJob.exists({ _id: id }).catch(() => true)) === null) await live.forget(id).catch(() => undefined);
    throw err;
  });
  const stackKey = stackKeyOf(fields.tenantId, fields.stackFqdn);
  const jobClass = classOf(fields);
  let taken: WaitingEntry | undefined;
  try {
    await jobList.add(job);
    // In line for the stack first, then for the pool: the dispatcher takes a job only first in its stack's line.
    await stacks.enqueue(stackKey, job._id);
    const entry = {
      jobId: job._id,
      tenant: fields.tenantId,
      jobClass,
      stackKey,
      // The resource id lets a runner read the resource while it claims the job (one round trip less).
      // `gated`: the runner reads an approval-gated job's status before it takes the stack.
      data: {
        stackFqdn: fields.stackFqdn,
        stackKey,
        tenantId: fields.tenantId,
        resourceId: fields.resourceId,
        ...(fields.approval ? { gated: true } : {}),
      },
      opts: {
        removeOnComplete: { age: 24 * 3600 },
        removeOnFail: { age: 7 * 24 * 3600 },
        ...(jobClass === 'checks' && fields.operation === 'drift-check' ? { priority: DRIFT_CHECK_PRIORITY } : {}),
      },
    };
    const lane = fastLane && tenant ? { ...fastLane, max: tenant.maxConcurrentJobs } : undefined;
    const added = await waiting.add(entry, lane);
    if (lane && typeof added === 'object') {
      taken = added.taken;
      // A settle that fails leaves the job among those dispatching: the dispatcher settles it after 5 s.
      await handOver(lane.queue, waiting, taken, () => undefined);
    }
  } catch (err) {
    // Taken by the fast lane, then not handed over: given back, unless a dispatcher has handed it over
    // meanwhile, or the give-back failed too (then it stays among those dispatching: the dispatcher adds it after 5 s).
    if (taken && !(await waiting.untake(taken).catch(() => false))) return job.toObject() as StackJobDoc;
    // Taken back out (the caller hears QueueUnavailableError): a document left `queued` with nothing
    // waiting for it can be cancelled, and a line entry left is dropped by the runner that finds it ended.
    await waiting.forget(job._id).catch(() => undefined);
    // Its live entry goes only with it: a job left standing keeps it.
    const deleted = await models.StackJob.deleteOne({ _id: job._id }).then(
      () => true,
      () => false,
    );
    if (deleted) {
      await live.forget(job._id).catch(() => undefined);
      await jobList.remove(job).catch(() => undefined);
    }
    await stacks.remove(stackKey, job._id).catch(() => undefined);
    throw new QueueUnavailableError((err as Error).message);
  }
  return job.toObject() as StackJobDoc;
}

/** What a gated job asks for (policy.ts `approvalOf`). */
export interface GateRequest {
  required: number;
  allowSelfApproval: boolean;
  approverRole: string;
  /** Only these identities may decide (policy `approvals.approvers`). */
  approvers?: string[];
  expiresAt: Date;
  /** An up: its preview saves an update plan, and the up applies it (`up --plan`). */
  updatePlan?: boolean;
}

/**
 * What a gated job's preview runs: the plan of what the gated operation would do, with the options
 * that change what it does (an up's refresh and targets, a destroy's targets): an up's changes
 * (saving its update plan under `updatePlans`), a destroy's deletions (`previewOf: destroy`), or
 * what Pulumi would change once a restore's state is back (`previewOf: restore`, which state).
 */
function previewOptionsFor(fields: Pick<NewJob, 'operation' | 'options'>, gate: Pick<GateRequest, 'updatePlan'>): JobOptions {
  const { version, upload, refresh, targets, lastGood } = fields.options;
  const targeted = targets?.length ? { targets } : {};
  if (fields.operation === 'destroy') return { previewOf: 'destroy', ...targeted };
  if (fields.operation === 'restore')
    return { previewOf: 'restore', ...(version !== undefined ? { version } : {}), ...(upload ? { upload } : {}) };
  // A compensation reapplying the last good run previews that run (job-target.ts), not the manifest now.
  return {
    ...(refresh ? { refresh } : {}),
    ...targeted,
    ...(lastGood ? { lastGood } : {}),
    ...(gate.updatePlan ? { savePlan: true } : {}),
  };
}

/**
 * Queues an approval-gated job: its preview first in the stack's line (`planFor`), then the job,
 * which waits for approval after it. Returns both.
 */
export async function queueGatedJob(deps: QueueingDeps, fields: NewJob, gate: GateRequest, tenant?: TenantLimit) {
  const gatedId = randomUUID();
  const previewOptions = previewOptionsFor(fields, gate);
  // The preview only plans: it is not the compensation or remediation the gated job is.
  const { compensates: _compensates, remediates: _remediates, ...previewFields } = fields;
  const preview = await queueStackJob(deps, { ...previewFields, operation: 'preview', options: previewOptions, planFor: gatedId }, tenant);
  const gated = await queueStackJob(deps, {
    ...fields,
    _id: gatedId,
    approval: { ...gate, expiresAt: gate.expiresAt.toISOString(), previewJobId: preview._id, decisions: [] },
  });
  return { preview, gated };
}

/**
 * Queues a job the service itself asks for (a drift remediation, a compensation) through its
 * tenant's approval gate, as a person's request would go: gated when the policy gates its
 * operation. Returns the job that stands for it (the gated one, when gated).
 */
export async function queueThroughGate(
  deps: QueueingDeps & { models: Pick<Models, 'StackJob' | 'Tenant'> },
  fields: NewJob,
): Promise<StackJobDoc> {
  const tenant = await deps.models.Tenant.findById(fields.tenantId, { policy: 1 }).lean<{ policy?: string }>();
  const gate = approvalOf(decodePolicy(tenant?.policy), fields.operation, false);
  return gate ? (await queueGatedJob(deps, fields, gate)).gated : queueStackJob(deps, fields);
}
