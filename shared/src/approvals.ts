import type { Models, StackJobDoc, StackStateDoc } from './models/index.js';
import type { TenantRole } from './types.js';

/** One approver's decision on a gated job (each approver's latest counts). */
export interface ApprovalDecision {
  by: { id: string; name: string; role: string };
  decision: 'approve' | 'reject';
  comment: string;
  at: string;
}

/** What a gated job's preview found, and what it saw: a later change to any of these makes the approval stale. */
export interface ApprovedPlan {
  previewJobId: string;
  changes: { urn: string; type: string; op: string }[];
  counts: Record<string, number>;
  stateVersion: number | null;
  resourceVersion: number | null;
  templateVersion: string | null;
}

export interface Approval {
  required: number;
  allowSelfApproval: boolean;
  approverRole: TenantRole;
  expiresAt: string;
  previewJobId: string;
  plan?: ApprovedPlan;
  decisions: ApprovalDecision[];
}

/** The job's approval, if it is gated. */
export function approvalOfJob(job: Pick<StackJobDoc, 'approval'>): Approval | undefined {
  return (job.approval as Approval | undefined) ?? undefined;
}

/** The latest state version of a resource's stack (null before any). */
export async function latestStateVersion(models: Pick<Models, 'StackState'>, resourceId: string): Promise<number | null> {
  const latest = await models.StackState.findOne({ resourceId }, { seq: 1 }).sort({ seq: -1 }).lean<Pick<StackStateDoc, 'seq'>>();
  return latest?.seq ?? null;
}

/** What changed since a plan was approved (empty: nothing; the gated job may run). */
export function staleness(plan: ApprovedPlan, now: Pick<ApprovedPlan, 'stateVersion' | 'resourceVersion' | 'templateVersion'>): string[] {
  const changed: string[] = [];
  if (plan.stateVersion !== now.stateVersion)
    changed.push(`the stack's state (version ${plan.stateVersion ?? 'none'} → ${now.stateVersion ?? 'none'})`);
  if (plan.resourceVersion !== now.resourceVersion)
    changed.push(`the resource's manifest or parameters (version ${plan.resourceVersion} → ${now.resourceVersion})`);
  if (plan.templateVersion !== now.templateVersion)
    changed.push(`the template version (${plan.templateVersion ?? 'none'} → ${now.templateVersion ?? 'none'})`);
  return changed;
}

/** A failed up's compensation, as the job keeps it. */
export interface Compensation {
  mode: string;
  strategy?: 'destroy' | 'reapply_last_good';
  state: 'compensating' | 'compensated' | 'compensation_failed';
  jobId?: string;
  error?: string;
  endedAt?: string;
}
