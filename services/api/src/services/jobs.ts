import {
  AppError,
  CANCEL_CHANNEL,
  errors,
  isFinalStatus,
  jobProgressKey,
  type JobStatus,
  lineStore,
  type ResourceDoc,
  type StackQueue,
  type Models,
  type Operation,
  type Progress,
  type KindRegistry,
  type Logger,
  QueueUnavailableError,
  queueJobEvent,
  queueGatedJob,
  approvalOf,
  dropRunFiles,
  GATED_OPERATIONS,
  identityOf,
  isGatable,
  approvalOfJob,
  type ApprovalDecision,
  jobChannel,
  type StatusMessage,
  WAITING_STATUSES,
  queueStackJob,
  jobOnResource,
  readDeployment,
  stackContents,
  type StackStateDoc,
  STATE_OPERATIONS,
  resolveTemplate,
  type StackJobDoc,
  assertParameterLimits,
  assertTemplateAllowed,
  operationRole,
  parseManifest,
  type Principal,
  QUEUE_FULL_RETRY_SECONDS,
  roleAllows,
  STORED_MANIFEST,
  type TenantPolicy,
  canSee,
  jobStackKey,
  tenantFilter,
  type TenantViewer,
  tenantOf,
} from '@pds/shared';
import { endJob, type EndReason } from '@pds/shared/lifecycle';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { EndedJobViews } from './ended-jobs.js';
import { readPage } from './pagination.js';
import { withStoreLock } from './store-lock.js';
import { tenantService } from './tenants.js';
import { jobView } from './views.js';

export interface JobServiceDeps {
  models: Models;
  queue: Pick<Queue, 'add' | 'remove' | 'getJob'>;
  /** Where approval events are announced to webhooks (absent: not announced). */
  webhookQueue?: Pick<Queue, 'add'>;
  /** JOB_LIFECYCLE_QUEUE: the after-end reactions of a job ended here (its webhooks, the compensation it was). */
  lifecycleQueue: Pick<Queue, 'add'>;
  /** For telling runners and watchers (cancel requests, end messages), and a running job's progress. */
  redis: Pick<Redis, 'publish' | 'get'>;
  /** The per-stack line jobs wait in. */
  stacks: Pick<StackQueue, 'enqueue' | 'remove' | 'claim' | 'describe' | 'next'>;
  /** Views of ended jobs, shared by the API's routes, dropped when a job changes after its end (without it every read goes to MongoDB). */
  endedJobs?: EndedJobViews<JobView>;
  /** The templates (their versions are checked against a tenant's allowed range before a deploy). */
  kinds?: KindRegistry;
  logger: Logger;
}

export type JobView = ReturnType<typeof jobView>;

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
export function jobService({ models, queue, webhookQueue, lifecycleQueue, redis, stacks, endedJobs, kinds, logger }: JobServiceDeps) {
  const ending = { models, publisher: redis, lifecycle: lifecycleQueue, logger };
  /**
   * Ends a queued job before it starts (`cancelled`, with `reason`): claims it in Redis (so a runner
   * starting it at the same moment cannot also win), takes it out of the queue and its stack's line,
   * and publishes its end. Returns the ended job, or undefined if it had already left `queued`.
   */
  async function cancelQueued(
    job: StackJobDoc,
    reason: Extract<EndReason, 'cancelled' | 'superseded' | 'rejected' | 'preview_failed'>,
    error: string,
    status: 'cancelled' | 'rejected' | 'failed' = 'cancelled',
  ) {
    const claimed = await stacks.claim(job._id, 'cancelled').catch((err: Error) => {
      throw errors.unavailable(`cannot cancel: Redis is unavailable: ${err.message}`);
    });
    if (!claimed) return undefined;
    // Claimed in Redis: no runner starts it now, so it ends from whichever waiting status it has reached.
    const cancelled = await endJob(ending, job._id, { status, reason, error }, 'cancel');
    if (!cancelled) return undefined;
    await dropRunFiles(models, job);
    // The runner skips jobs that are no longer queued, so a failed removal only costs it a look.
    await queue.remove(job._id).catch(() => undefined);
    await stacks.remove(jobStackKey(job), job._id).catch(() => undefined);
    // A job that held its stack's line (awaiting approval) lets the next one go at once.
    if (job.status !== 'queued') await promoteNext(job);
    // The preview of a gated job: without it the gated job has nothing to be approved on.
    if (job.planFor) {
      const gated = await models.StackJob.findById(job.planFor).lean<StackJobDoc>();
      if (gated && WAITING_STATUSES.includes(gated.status as JobStatus))
        await cancelQueued(gated, 'preview_failed', `its preview, job ${job._id}, was ${status}; nothing was applied`, 'failed');
    }
    return cancelled;
  }

  /** Wakes the job now first in a stack's line (it would otherwise wake when its wait runs out). */
  async function promoteNext(job: StackJobDoc): Promise<void> {
    const next = await stacks.next(jobStackKey(job)).catch(() => undefined);
    if (next) await (await queue.getJob(next).catch(() => undefined))?.promote().catch(() => undefined);
  }

  /** What the runner last reported of a running job's steps (Redis; none if unknown or Redis is away). */
  async function runningProgress(id: string): Promise<Progress | undefined> {
    const value = await redis.get(jobProgressKey(id)).catch(() => null);
    return value ? (JSON.parse(value) as Progress) : undefined;
  }

  /**
   * Cancels (`superseded`) the jobs of an operation still waiting on the stack of `newer` and created
   * before it: with the `latest` policy, older `up`s; for any user's job, drift checks (they never
   * delay users).
   */
  async function supersede(newer: StackJobDoc, operation: Operation, why: string): Promise<void> {
    const waiting = await models.StackJob.find({
      tenantId: tenantOf(newer),
      stackFqdn: newer.stackFqdn,
      operation,
      status: 'queued',
      _id: { $ne: newer._id },
      compensates: { $exists: false }, // a compensation puts the stack back; a newer up does not replace it
    }).lean<StackJobDoc[]>();
    for (const older of waiting) {
      if (older.createdAt > newer.createdAt) continue;
      await cancelQueued(older, 'superseded', why);
    }
  }

  const tenants = tenantService({ models });

  /**
   * The tenant's policy for a new job: the operation's least role, and for a deploy (up, preview)
   * the template allowed and the manifest within today's parameter limits (they may have narrowed
   * since it was stored). Destroy and refresh stay possible on a template no longer allowed, so a
   * team can clean up. Returns the policy.
   */
  async function admit(resource: ResourceDoc, operation: Operation, caller: Principal): Promise<TenantPolicy> {
    const tenant = tenantOf(resource);
    const policy = await tenants.policyOf(tenant);
    const role = operationRole(policy, operation);
    if (caller.role !== 'platform' && !roleAllows(caller.role, role)) {
      const rule = policy.operations?.[operation] ? `operations.${operation}` : `the default for ${operation}`;
      throw errors.forbidden(
        `a ${operation} job needs the ${role} role in tenant ${tenant} (policy: ${rule}); token "${caller.name}" has the ${caller.role} role`,
      );
    }
    if (operation === 'up' || operation === 'preview') {
      // The version that would run: a built-in template's as the runners have it now, an uploaded one's pinned version.
      // (A template that cannot be found fails the job on the runner, with its reason.)
      const template = await resolveTemplate(models, kinds ?? new Map(), tenant, resource.kind, {
        version: resource.templateVersion,
      }).catch((err: Error) => {
        // Not found: the runner fails the job, naming why; anything else (the store away) is the caller's answer.
        if (err instanceof AppError && err.statusCode === 400) return undefined;
        throw err;
      });
      assertTemplateAllowed(policy, tenant, resource.kind, template?.info.version);
      try {
        const sealed = (template?.info.secretParameters ?? []).map((key) => `spec.${key}`);
        assertParameterLimits(policy, tenant, resource.kind, parseManifest(resource.manifest, STORED_MANIFEST), sealed);
      } catch (err) {
        throw errors.policy(`the resource's manifest is outside its tenant's limits now: ${(err as Error).message}; change it first`);
      }
    }
    return policy;
  }

  /**
   * A state operation's options, checked against the stack's latest known state (400 naming the
   * field): the URN it names is in it (and not the stack itself); a repair chooses for every pending
   * create the state shows, an import with the resource's ID. Without a known state the CLI decides.
   */
  async function assertStateOperation(resource: ResourceDoc, operation: Operation, options: Omit<CreateJobInput, 'operation'>) {
    const latest = await models.StackState.findOne({ resourceId: resource._id }).sort({ seq: -1 }).lean<StackStateDoc>();
    const contents = latest ? stackContents(readDeployment(latest)) : undefined;
    // URNs are this stack's (so none reaches the CLI as an option, nor names another stack's resource).
    const [, project, stack] = resource.stackFqdn.split('/') as [string, string, string];
    const ours = (urn: string) => urn.startsWith(`urn:pulumi:${stack}::${project}::`);
    if (operation === 'repair') {
      const chosen = options.pendingCreates ?? [];
      for (const [i, c] of chosen.entries()) {
        if (!ours(c.urn)) throw errors.invalidRequest(`pendingCreates[${i}].urn: ${c.urn} is not a resource of this stack`);
      }
      const actions = new Set(chosen.map((c) => c.action));
      for (const [i, c] of chosen.entries()) {
        if (c.action === 'import' && !c.id)
          throw errors.invalidRequest(`pendingCreates[${i}].id: importing ${c.urn} needs its ID in the cloud`);
      }
      if (actions.size > 1)
        throw errors.invalidRequest('pendingCreates: one repair either imports or clears its pending creates (run two)');
      const pending = (contents?.pendingOperations ?? []).filter((op) => op.type === 'creating').map((op) => op.urn);
      const missing = pending.filter((urn) => !chosen.some((c) => c.urn === urn));
      if (missing.length > 0) {
        throw errors.invalidRequest(`pendingCreates: choose import (with its id) or clear for each pending create: ${missing.join(', ')}`);
      }
      return;
    }
    if (operation === 'restore') {
      if (options.upload !== undefined) return;
      if (options.version === undefined) throw errors.invalidRequest('version: restore needs the state version to put back');
      if (!(await models.StackState.exists({ resourceId: resource._id, seq: options.version }))) {
        throw errors.invalidRequest(
          `version: the stack has no state version ${options.version} (GET /v1/resources/${resource._id}/stack/versions)`,
        );
      }
      if (latest?.seq === options.version) throw errors.conflict(`state version ${options.version} is the current one`);
      return;
    }
    if (!options.urn) throw errors.invalidRequest(`urn: ${operation} needs the URN of a resource in the stack`);
    if (!ours(options.urn))
      throw errors.invalidRequest(`urn: ${options.urn} is not a resource of this stack (urn:pulumi:${stack}::${project}::…)`);
    if (operation === 'state-rename' && !options.name) throw errors.invalidRequest('name: state-rename needs the new name');
    if (!contents) return;
    const target = contents.resources.find((r) => r.urn === options.urn);
    if (!target) throw errors.invalidRequest(`urn: ${options.urn} is not in the stack's state (version ${latest?.seq})`);
    if (target.type === 'pulumi:pulumi:Stack') throw errors.invalidRequest(`urn: ${options.urn} is the stack itself`);
    if (operation === 'state-unprotect' && !target.protect) throw errors.conflict(`${options.urn} is not protected`);
  }

  /**
   * With `maxQueuedJobs`, queues under a lock on the tenant so that parallel creates cannot pass the
   * count together. Every waiting job counts (queued, awaiting approval, approved: each holds a
   * place in a stack's line); a gated job's preview is part of it and does not count apart.
   */
  async function withinQueueLimit<T>(tenant: string, policy: TenantPolicy, queueIt: () => Promise<T>): Promise<T> {
    const max = policy.maxQueuedJobs;
    if (max === undefined) return queueIt();
    return withStoreLock(models, `queued:${tenant}`, async () => {
      const queued = await models.StackJob.countDocuments({
        tenantId: tenant,
        status: { $in: WAITING_STATUSES },
        planFor: { $exists: false },
      });
      if (queued >= max) {
        throw errors.quota(
          `tenant ${tenant} has ${queued} waiting jobs (queued, awaiting approval or approved), its limit (policy: maxQueuedJobs ${max}); retry when some have started or ended`,
          QUEUE_FULL_RETRY_SECONDS,
        );
      }
      return queueIt();
    });
  }

  /** Reads a job the viewer may see; another tenant's answers as unknown (404). */
  async function find(id: string, viewer: TenantViewer): Promise<StackJobDoc> {
    const doc = await models.StackJob.findOne({ _id: id, ...tenantFilter(viewer) }).lean<StackJobDoc>();
    if (!doc) throw errors.notFound(`job ${id} not found`);
    return doc;
  }

  return {
    /** Records the job as queued, then puts it on the queue; if the queue is down, nothing is left behind. */
    async create(resourceId: string, input: CreateJobInput, caller: Principal) {
      const resource = await models.Resource.findOne({ _id: resourceId, ...tenantFilter(caller) }).lean<ResourceDoc>();
      if (!resource) throw errors.notFound(`resource ${resourceId} not found`);
      const { operation, requireApproval, ...options } = input;
      const policy = await admit(resource, operation, caller);
      if (STATE_OPERATIONS.includes(operation)) await assertStateOperation(resource, operation, options);
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
      let created: StackJobDoc;
      try {
        created = await withinQueueLimit(tenantOf(resource), policy, async () => {
          if (!approval) return queueStackJob({ models, queue, stacks }, fields);
          // Gated: its preview first in the stack's line, then the job itself, which waits for approval after it.
          return (await queueGatedJob({ models, queue, stacks }, fields, approval)).gated;
        });
      } catch (err) {
        if (!(err instanceof QueueUnavailableError)) throw err;
        throw errors.unavailable(`the job queue (Redis) is unavailable; no job was created: ${(err as Error).message}`);
      }
      if (operation === 'up' && (options.queuePolicy ?? queuePolicyOf(resource)) === 'latest')
        await supersede(created, 'up', `superseded by job ${created._id} (queue policy latest)`);
      // Only where a schedule queues checks (a check a person asked for runs in its turn, at no lower
      // priority than other jobs): the query scans every job on a store without indexes (FerretDB's).
      if (operation !== 'drift-check' && resource.driftSchedule)
        await supersede(created, 'drift-check', `a drift check gives way to job ${created._id} on its stack`);
      return jobView(created);
    },

    /**
     * Cancels a job. A queued one ends `cancelled` at once and leaves the queue (`accepted: false`);
     * a running one is asked to stop — every runner hears the request, the one running it sends
     * Pulumi SIGINT, and the job ends `cancelled` with its lines so far (`accepted: true`).
     */
    async cancel(id: string, viewer: TenantViewer) {
      const job = await find(id, viewer);
      if (isFinalStatus(job.status as JobStatus)) throw errors.conflict(`job ${id} has already ended (${job.status}); nothing to cancel`);
      const cancelled =
        WAITING_STATUSES.includes(job.status as JobStatus) && (await cancelQueued(job, 'cancelled', 'cancelled before it started'));
      if (cancelled) return { accepted: false, job: jobView(cancelled) };
      // It started meanwhile: ask the runners.
      try {
        await redis.publish(CANCEL_CHANNEL, id);
      } catch (err) {
        throw errors.unavailable(`cannot reach the runners (Redis is unavailable): ${(err as Error).message}`);
      }
      const current = await models.StackJob.findByIdAndUpdate(
        id,
        { $set: { cancelRequestedAt: new Date() } },
        { returnDocument: 'after' },
      ).lean<StackJobDoc>();
      return { accepted: true, job: jobView(current ?? job) };
    },

    /**
     * An approver's decision on a job awaiting approval (each approver's latest counts): enough
     * approvals make it `approved` (it runs next on its stack, if nothing changed since its preview);
     * one rejection ends it `rejected` and frees its stack's line.
     */
    async decide(id: string, input: { decision: 'approve' | 'reject'; comment?: string }, caller: Principal) {
      return withStoreLock(models, `approval:${id}`, async () => {
        const job = await find(id, caller);
        const approval = approvalOfJob(job);
        if (!approval) throw errors.conflict(`job ${id} is not approval-gated`);
        if (job.status === 'queued')
          throw errors.conflict(`job ${id} waits for its preview (job ${approval.previewJobId}); decide once it is awaiting_approval`);
        if (job.status !== 'awaiting_approval') throw errors.conflict(`job ${id} is ${job.status}; it takes no decision`);
        if (caller.role !== 'platform' && !roleAllows(caller.role, approval.approverRole))
          throw errors.forbidden(`deciding on job ${id} needs the ${approval.approverRole} role (policy: approvals.approverRole)`);
        // People, not tokens: a token a tenant's admin issued acts for that admin (identityOf).
        const approver = identityOf(caller);
        const creator = job.createdBy?.id ? identityOf(job.createdBy as Pick<Principal, 'id' | 'actsFor'>) : undefined;
        if (approval.approvers?.length && caller.role !== 'platform' && !approval.approvers.includes(identityOf(caller)))
          throw errors.forbidden(
            `token "${caller.name}" (identity ${identityOf(caller)}) is not among the approvers of job ${id} (policy: approvals.approvers)`,
          );
        if ((!approval.allowSelfApproval || approval.required > 1) && caller.identityUnknown)
          throw errors.forbidden(
            `token "${caller.name}" was issued before tokens recorded whom they act for, so it could be a second token of this job's creator; issue a new one to decide (policy: approvals.allowSelfApproval)`,
          );
        if (!approval.allowSelfApproval && job.createdBy?.identityUnknown)
          throw errors.forbidden(
            `job ${id} was created by token "${job.createdBy?.name}", issued before tokens recorded whom they act for: any approver could be its creator, so none may decide; cancel it and queue it again with a newer token (policy: approvals.allowSelfApproval)`,
          );
        if (!approval.allowSelfApproval && creator === approver)
          throw errors.forbidden(
            job.createdBy?.id === caller.id
              ? `token "${caller.name}" created job ${id} and may not decide on it (policy: approvals.allowSelfApproval)`
              : `token "${caller.name}" acts for the identity that created job ${id} (token "${job.createdBy?.name}"), which may not decide on it (policy: approvals.allowSelfApproval)`,
          );
        if (Date.now() >= Date.parse(approval.expiresAt)) throw errors.conflict(`job ${id} expired at ${approval.expiresAt}`);
        const entry: ApprovalDecision = {
          by: { id: caller.id, name: caller.name, role: caller.role, ...(caller.actsFor ? { actsFor: caller.actsFor } : {}) },
          decision: input.decision,
          comment: input.comment ?? '',
          at: new Date().toISOString(),
        };
        // Each identity's latest decision counts: a second token of the same person replaces the first's.
        const decisions = [...approval.decisions.filter((d) => identityOf(d.by) !== approver), entry];
        const approvals = decisions.filter((d) => d.decision === 'approve').length;
        // A rejection is final, even one whose ending did not complete before (it is completed now).
        const rejection = decisions.find((d) => d.decision === 'reject');
        const status = !rejection && approvals >= approval.required ? 'approved' : 'awaiting_approval';
        const updated = await models.StackJob.findOneAndUpdate(
          { _id: id, status: 'awaiting_approval' },
          { $set: { 'approval.decisions': decisions, status } },
          { returnDocument: 'after' },
        ).lean<StackJobDoc>();
        if (!updated) throw errors.conflict(`job ${id} is no longer awaiting approval`);
        if (rejection) {
          const why = `rejected by ${rejection.by.name}${rejection.comment ? `: ${rejection.comment}` : ''}; nothing was applied`;
          const ended = await cancelQueued(updated, 'rejected', why, 'rejected');
          if (!ended) throw errors.unavailable(`the rejection of job ${id} is recorded but the job could not be ended yet; decide again`);
          return jobView(ended);
        }
        if (status === 'approved') {
          const message: StatusMessage = { type: 'status', jobId: id, status: 'approved', ts: entry.at };
          await redis.publish(jobChannel(id), JSON.stringify(message)).catch(() => undefined);
          if (webhookQueue) await queueJobEvent(webhookQueue, id, 'approved').catch(() => undefined);
          // It waits in BullMQ's delayed set: wake it (else it looks again within a minute).
          await (await queue.getJob(id).catch(() => undefined))?.promote().catch(() => undefined);
        }
        return jobView(updated);
      });
    },

    /** A job; while it waits for its stack, also its place in line and the job holding the stack. */
    async get(id: string, viewer: TenantViewer) {
      const cached = endedJobs?.get(id);
      if (cached && canSee(viewer, cached.tenant)) return cached;
      const mark = endedJobs?.mark() ?? 0;
      const doc = await find(id, viewer);
      if (isFinalStatus(doc.status as JobStatus)) {
        const view = jobView(doc);
        endedJobs?.set(id, view, mark);
        return view;
      }
      if (doc.status === 'running') return jobView({ ...doc, progress: await runningProgress(id) });
      if (doc.status !== 'queued') return jobView(doc);
      const where = await stacks.describe(jobStackKey(doc), id).catch(() => ({}) as { position?: number; holder?: string });
      return jobView({ ...doc, position: where.position, blockedBy: where.holder });
    },

    /** Newest first; only the known filters reach the query (a querystring's other keys are ignored). */
    async list({ tenant, resourceId, status, operation, stackFqdn, limit, cursor }: JobListFilter, viewer: TenantViewer) {
      const filter = {
        ...Object.fromEntries(Object.entries({ resourceId, status, operation, stackFqdn }).filter(([, v]) => v !== undefined)),
        ...tenantFilter(viewer, tenant),
      };
      return readPage(
        (condition, n) =>
          models.StackJob.find({ ...filter, ...condition })
            .sort({ createdAt: -1, _id: -1 })
            .limit(n)
            .lean<StackJobDoc[]>(),
        { field: 'createdAt', limit, cursor },
        jobView,
      );
    },

    /** Persisted lines and events with seq > from, in order. */
    async lines(id: string, from: number, limit: number, viewer: TenantViewer) {
      const job = await models.StackJob.findOne({ _id: id, ...tenantFilter(viewer) }, { linesSweptAt: 1, lastSeq: 1 }).lean<{
        linesSweptAt?: Date;
        lastSeq?: number;
      }>();
      if (!job) throw errors.notFound(`job ${id} not found`);
      if (job.linesSweptAt && from < (job.lastSeq ?? 0)) {
        throw errors.gone(
          `the lines of job ${id} were removed as old history on ${job.linesSweptAt.toISOString()} (kept HISTORY_LINES_DAYS days after a job ends); its result and summary are still at GET /v1/jobs/${id}`,
        );
      }
      return lineStore(models).read(id, from, limit);
    },
  };
}
