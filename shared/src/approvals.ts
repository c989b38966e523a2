import type { Models, StackJobDoc, StackStateDoc } from './models/index.js';
import type { TenantRole } from './types.js';

/** One approver's decision on a gated job (each approver's latest counts). */
export interface ApprovalDecision {
  by: { id: string; name: string; role: string; actsFor?: string };
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
  /** A built-in template's program folder (program-hash.ts): its code can change under one version. */
  programHash?: string | null;
  /** The credential the preview ran with (a kind with a provider): the run must find the same (credentialRevision). */
  credential?: { name: string; revision: string };
}

/**
 * A job's approval as people and receivers see it (API responses, webhooks): the credential its
 * preview ran with by name only; its revision (the credential's id and the fingerprint of its
 * secret values) stays on the job, for staleness.
 */
export function approvalAsShown(approval: Approval): ShownApproval {
  const { plan } = approval;
  if (!plan?.credential) return approval;
  return { ...approval, plan: { ...plan, credential: { name: plan.credential.name } } };
}

export type ShownApproval = Omit<Approval, 'plan'> & { plan?: Omit<ApprovedPlan, 'credential'> & { credential?: { name: string } } };

/** One resource's change, as a preview plans it or a run applies it (its first changing step). */
export interface ResourceChange {
  urn: string;
  op: string;
}

/** What an approved job applied, against its plan (`same` left out). */
export interface AppliedChanges {
  counts: Record<string, number>;
  matchesPlan: boolean;
  /** Each count that differs (`update: 2 (approved 1)`), then each resource that differs (`create <urn>: not in the approved plan`). */
  differences: string[];
}

/** The most per-resource differences named (the counts still tell the whole). */
const MAX_RESOURCE_DIFFERENCES = 20;

export interface Approval {
  required: number;
  allowSelfApproval: boolean;
  approverRole: TenantRole;
  /** Only these identities may decide (none: anyone with the role). */
  approvers?: string[];
  expiresAt: string;
  previewJobId: string;
  /** The up applies the update plan its preview saved (UpdatePlanFile, by the gated job's id). */
  updatePlan?: boolean;
  plan?: ApprovedPlan;
  decisions: ApprovalDecision[];
  /** After the run (up, destroy): what it applied, against the plan. */
  applied?: AppliedChanges;
}

/** The job's approval, if it is gated. */
export function approvalOfJob(job: Pick<StackJobDoc, 'approval'>): Approval | undefined {
  return job.approval ?? undefined;
}

/**
 * A job that ends without running: what was kept for its run goes — a gated up's update plan, an
 * import's uploaded state (best effort; the history sweep and the resource's deletion take what is left).
 */
export async function dropRunFiles(
  models: Pick<Models, 'UpdatePlanFile' | 'StateUpload'>,
  job: Pick<StackJobDoc, '_id' | 'approval' | 'operation' | 'options'>,
): Promise<void> {
  // Best effort, as said above: a file left behind is never applied (its job has ended) and is swept.
  if (approvalOfJob(job)?.updatePlan) await models.UpdatePlanFile.deleteOne({ _id: job._id }).catch(() => undefined);
  const upload = job.options?.upload;
  if (job.operation === 'restore' && upload) await models.StateUpload.deleteOne({ _id: upload }).catch(() => undefined);
}

/** The latest state version of a resource's stack (null before any). */
export async function latestStateVersion(models: Pick<Models, 'StackState'>, resourceId: string): Promise<number | null> {
  const latest = await models.StackState.findOne({ resourceId }, { seq: 1 }).sort({ seq: -1 }).lean<Pick<StackStateDoc, 'seq'>>();
  return latest?.seq ?? null;
}

/**
 * What changed since a plan was approved (empty: nothing; the gated job may run). An up runs the
 * program, so its manifest and template count; a destroy or a restore works from the state alone.
 */
export function staleness(
  plan: ApprovedPlan,
  now: Pick<ApprovedPlan, 'stateVersion' | 'resourceVersion' | 'templateVersion' | 'programHash'> & {
    /** The credential a run would open now (null: none to open). */
    credential?: { name: string; revision: string } | null;
  },
  operation: string,
): string[] {
  const changed: string[] = [];
  if (plan.stateVersion !== now.stateVersion)
    changed.push(`the stack's state (version ${plan.stateVersion ?? 'none'} → ${now.stateVersion ?? 'none'})`);
  // Whatever the operation: another account, project or key would apply the plan somewhere else.
  if (plan.credential && plan.credential.revision !== now.credential?.revision) {
    const name = now.credential?.name;
    const which = name === plan.credential.name ? `${name}, changed or rotated` : `${plan.credential.name} → ${name ?? 'none'}`;
    changed.push(`the credential (${which})`);
  }
  if (operation !== 'up') return changed;
  if (plan.resourceVersion !== now.resourceVersion)
    changed.push(`the resource's manifest or parameters (version ${plan.resourceVersion} → ${now.resourceVersion})`);
  if (plan.templateVersion !== now.templateVersion)
    changed.push(`the template version (${plan.templateVersion ?? 'none'} → ${now.templateVersion ?? 'none'})`);
  if (plan.programHash && now.programHash !== undefined && plan.programHash !== now.programHash)
    changed.push(`the template's program (its code changed under version ${now.templateVersion ?? 'none'})`);
  return changed;
}

/**
 * Compares what an approved run applied with what its preview planned, per kind of change (`same`
 * is not a change), and per resource when both lists of changes are whole (`resources`): the same
 * counts on other resources are a difference too. A difference cannot be undone, but it is shown:
 * the cloud moved between the preview and the run, or the program does not do the same twice.
 */
export function appliedVersusPlan(
  planned: Record<string, number>,
  applied: Record<string, number>,
  resources?: { planned: readonly ResourceChange[]; applied: readonly ResourceChange[] },
): AppliedChanges {
  const changes = (counts: Record<string, number>) =>
    Object.fromEntries(Object.entries(counts).filter(([op, n]) => op !== 'same' && n > 0));
  const want = changes(planned);
  const got = changes(applied);
  const differences = [...new Set([...Object.keys(want), ...Object.keys(got)])]
    .sort()
    .filter((op) => (want[op] ?? 0) !== (got[op] ?? 0))
    .map((op) => `${op}: ${got[op] ?? 0} (approved ${want[op] ?? 0})`);
  if (resources) differences.push(...resourceDifferences(resources.planned, resources.applied));
  return { counts: got, matchesPlan: differences.length === 0, differences };
}

function resourceDifferences(planned: readonly ResourceChange[], applied: readonly ResourceChange[]): string[] {
  const key = (change: ResourceChange) => `${change.op} ${change.urn}`;
  const approved = new Set(planned.map(key));
  const done = new Set(applied.map(key));
  const named = [
    ...applied.filter((change) => !approved.has(key(change))).map((change) => `${key(change)}: not in the approved plan`),
    ...planned.filter((change) => !done.has(key(change))).map((change) => `${key(change)}: approved, not applied`),
  ];
  if (named.length <= MAX_RESOURCE_DIFFERENCES) return named;
  return [...named.slice(0, MAX_RESOURCE_DIFFERENCES), `… and ${named.length - MAX_RESOURCE_DIFFERENCES} more resources`];
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
