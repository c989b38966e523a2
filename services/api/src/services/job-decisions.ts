import {
  approvalOfJob,
  type ApprovalDecision,
  errors,
  identityOf,
  jobChannel,
  type Principal,
  queueJobEvent,
  roleAllows,
  type StackJobDoc,
  type StatusMessage,
  type TenantViewer,
  wakeDispatcher,
} from '@pds/shared';
import type { jobEnding } from './job-ending.js';
import type { JobServiceDeps } from './jobs.js';
import { withStoreLock } from './store-lock.js';
import { jobView } from './views.js';

/** Approvers' decisions on gated jobs. */
export function jobDecisions(
  { models, queue, redis, webhookQueue, logger }: JobServiceDeps,
  { cancelQueued }: ReturnType<typeof jobEnding>,
  find: (id: string, viewer: TenantViewer) => Promise<StackJobDoc>,
) {
  /**
   * An approver's decision on a job awaiting approval (each approver's latest counts): enough
   * approvals make it `approved` (it runs next on its stack, if nothing changed since its preview);
   * one rejection ends it `rejected` and frees its stack's line.
   */
  async function decide(id: string, input: { decision: 'approve' | 'reject'; comment?: string }, caller: Principal) {
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
        // The decision is stored: watchers see `approved` on their next read, and the job wakes by itself
        // within a minute, should Redis fail any of these.
        await redis.publish(jobChannel(id), JSON.stringify(message)).catch(() => undefined);
        if (webhookQueue)
          await queueJobEvent(webhookQueue, id, 'approved').catch((err: Error) =>
            logger.warn({ err: err.message, jobId: id }, "the webhook event of a job's approval could not be queued"),
          );
        // It waits in BullMQ's delayed set: wake it (else it looks again within a minute).
        await (await queue.getJob(id).catch(() => undefined))?.promote().catch(() => undefined);
        await wakeDispatcher(redis); // not handed to the runners yet: the dispatcher's to start
      }
      return jobView(updated);
    });
  }

  return { decide };
}
