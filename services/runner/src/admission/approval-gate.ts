import { gzipSync } from 'node:zlib';
import {
  type ApprovedPlan,
  approvalOfJob,
  dropRunFiles,
  isTransientError,
  jobChannel,
  jobStackKey,
  type KindRegistry,
  latestStateVersion,
  type Models,
  type ResourceDoc,
  resolveTemplate,
  type StackJobDoc,
  type StackQueue,
  STATE_MAX_BYTES,
  staleness,
  type StatusMessage,
  tenantOf,
} from '@pds/shared';
import { endJob, type EndJobDeps } from '@pds/shared/lifecycle';
import type { Redis } from 'ioredis';
import { credentialNow } from '../run/job-credential.js';
import type { RunEnd } from '../run/job-run.js';
import { resourceToRun } from '../run/job-target.js';
import { MAX_PLAN_CHANGES, NO_CHANGE_STEPS } from '../run/plan.js';
import { programHash } from '../run/program-hash.js';

export interface GateDeps extends EndJobDeps {
  models: Models;
  kinds: KindRegistry;
  publisher: Pick<Redis, 'publish'>;
  stacks: Pick<StackQueue, 'claim' | 'remove' | 'next'>;
  /** Tells webhooks of an approval event. */
  jobEvent(jobId: string, event: 'approval_required'): Promise<void>;
}

/** The versions a gated job would run now: compared with those its preview saw. */
async function versionsNow(deps: GateDeps, job: StackJobDoc): Promise<Parameters<typeof staleness>[1]> {
  const current = await deps.models.Resource.findById(job.resourceId).lean<ResourceDoc>();
  // What the job would run (a compensation reapplying the last good run: that run's versions).
  const resource = current ? resourceToRun(job, current) : undefined;
  const template = resource
    ? await resolveTemplate(deps.models, deps.kinds, tenantOf(job), resource.kind, { version: resource.templateVersion }).catch(
        (err: Error) => {
          if (isTransientError(err)) throw err; // the store is away: looked at again, not taken for a change
          return undefined;
        },
      )
    : undefined;
  return {
    stateVersion: await latestStateVersion(deps.models, job.resourceId),
    resourceVersion: resource?.version ?? null,
    templateVersion: template?.info.version ?? null,
    // A built-in template's code (an uploaded version's is fixed once published).
    // Unreadable now: undefined is not compared (staleness), the template version still is.
    programHash: template?.source === 'system' ? await programHash(template.info.dir).catch(() => undefined) : null,
    ...(template && resource ? { credential: await credentialNow(deps.models, template.info, resource) } : {}),
  };
}

/**
 * After the preview of a gated job: the plan goes onto the gated job, which now awaits approval
 * (its stack's line stays held). A preview that did not succeed fails the gated job.
 */
export async function recordPlan(deps: GateDeps, end: RunEnd): Promise<void> {
  const gatedId = end.job.planFor;
  if (!gatedId) return;
  const gated = await deps.models.StackJob.findById(gatedId).lean<StackJobDoc>();
  if (!gated || gated.status !== 'queued') return; // cancelled meanwhile
  const wantsPlan = approvalOfJob(gated)?.updatePlan === true;
  const savedPlan = wantsPlan && end.status === 'succeeded' && end.plan ? checkSavedPlan(end.plan) : undefined;
  if (end.status !== 'succeeded' || !end.plan || (savedPlan && 'problem' in savedPlan)) {
    const why = savedPlan && 'problem' in savedPlan ? savedPlan.problem : `ended ${end.status}${end.error ? `: ${end.error}` : ''}`;
    await endUnrun(deps, gated, 'failed', 'preview_failed', `its preview, job ${end.job._id}, ${why}; nothing was applied`);
    return;
  }
  const plan: ApprovedPlan = {
    previewJobId: end.job._id,
    changes: end.plan.changes,
    counts: end.plan.counts,
    stateVersion: await latestStateVersion(deps.models, gated.resourceId),
    resourceVersion: end.plan.resourceVersion ?? null,
    templateVersion: end.plan.templateVersion ?? null,
    ...(end.plan.programHash ? { programHash: end.plan.programHash } : {}),
    ...(end.plan.credential ? { credential: end.plan.credential } : {}),
  };
  if (savedPlan && 'data' in savedPlan) {
    // Kept before the job awaits approval: an approved job always finds its plan (replaced if a repeat).
    await deps.models.UpdatePlanFile.replaceOne(
      { _id: gatedId },
      { tenantId: tenantOf(gated), resourceId: gated.resourceId, previewJobId: end.job._id, data: savedPlan.data, createdAt: new Date() },
      { upsert: true },
    );
  }
  const waiting = await deps.models.StackJob.findOneAndUpdate(
    { _id: gatedId, status: 'queued' },
    { $set: { status: 'awaiting_approval', 'approval.plan': plan } },
    { returnDocument: 'after' },
  ).lean<StackJobDoc>();
  if (!waiting) {
    await dropRunFiles(deps.models, gated); // cancelled in between: its plan goes with it
    return;
  }
  const message: StatusMessage = { type: 'status', jobId: gatedId, status: 'awaiting_approval', ts: new Date().toISOString() };
  // The status is stored: a watcher that misses this message reads it on its next look.
  await deps.publisher.publish(jobChannel(gatedId), JSON.stringify(message)).catch(() => undefined);
  await deps.jobEvent(gatedId, 'approval_required');
}

/**
 * The update plan a gated up's preview saved, checked before it is kept: a plan (JSON with
 * `resourcePlans`) whose changing steps are all on resources the preview showed changing (the plan
 * file sits in the job's own folder, which its program can write), at most STATE_MAX_BYTES gzipped.
 */
export function checkSavedPlan(plan: NonNullable<RunEnd['plan']>): { data: Buffer } | { problem: string } {
  if (plan.savedPlan === undefined) return { problem: 'succeeded without saving an update plan' };
  let parsed: { resourcePlans?: Record<string, { steps?: string[] }> };
  try {
    parsed = JSON.parse(plan.savedPlan) as typeof parsed;
  } catch {
    return { problem: 'saved an update plan that is not JSON' };
  }
  if (!parsed.resourcePlans || typeof parsed.resourcePlans !== 'object') return { problem: 'saved an update plan without resourcePlans' };
  const shown = new Set(plan.changes.map((c) => c.urn));
  const complete = plan.changes.length < MAX_PLAN_CHANGES;
  const changing = Object.entries(parsed.resourcePlans)
    .filter(([urn, rp]) => !urn.includes('::pulumi:pulumi:Stack::') && (rp.steps ?? []).some((step) => !NO_CHANGE_STEPS.has(step)))
    .map(([urn]) => urn);
  const unseen = complete ? changing.filter((urn) => !shown.has(urn)) : [];
  const counted = Object.entries(plan.counts).reduce((sum, [op, n]) => (NO_CHANGE_STEPS.has(op) ? sum : sum + n), 0);
  if (unseen.length > 0 || changing.length > counted)
    return {
      problem: `saved an update plan with changes its preview did not show (${unseen.slice(0, 5).join(', ') || `${changing.length} > ${counted}`})`,
    };
  const data = gzipSync(plan.savedPlan);
  if (data.length > STATE_MAX_BYTES) return { problem: `saved an update plan larger than ${STATE_MAX_BYTES} bytes gzipped` };
  return { data };
}

/** Ends a gated job without running it (expired, stale, no preview): out of its stack's line, its end told. */
async function endUnrun(
  deps: GateDeps,
  job: StackJobDoc,
  status: 'expired' | 'stale' | 'failed',
  reason: 'expired' | 'stale' | 'preview_failed',
  error: string,
) {
  if (!(await deps.stacks.claim(job._id, 'cancelled'))) return undefined;
  // Claimed in Redis: no one else moves it now, so it ends from whichever waiting status it is in.
  const ended = await endJob(deps, job._id, { status, reason, error }, 'gate');
  await dropRunFiles(deps.models, job);
  await deps.stacks.remove(jobStackKey(job), job._id);
  return ended;
}

/**
 * A job waiting for approval holds its stack's line without running: returns when to look again
 * (the approval wakes it sooner), or undefined once it has expired (ended `expired`).
 */
export async function holdForApproval(deps: GateDeps, job: StackJobDoc): Promise<number | undefined> {
  const approval = approvalOfJob(job);
  const expiresAt = Date.parse(approval?.expiresAt ?? '');
  if (Number.isFinite(expiresAt) && Date.now() < expiresAt) return Math.min(expiresAt, Date.now() + 60_000);
  await endUnrun(deps, job, 'expired', 'expired', `no decision before ${approval?.expiresAt}: nothing was applied`);
  return undefined;
}

/**
 * An approved job about to run (its stack held): if anything its preview saw has changed since,
 * it ends `stale` with what changed, and nothing is applied. Returns whether it may run.
 */
export async function stillAsApproved(deps: GateDeps, job: StackJobDoc): Promise<boolean> {
  const plan = approvalOfJob(job)?.plan;
  if (!plan) return true;
  const changed = staleness(plan, await versionsNow(deps, job), job.operation);
  if (changed.length === 0) return true;
  const error = `nothing was applied: since its preview (job ${plan.previewJobId}) was approved, ${changed.join(', ')} changed; queue it again for a new preview and approval`;
  await endUnrun(deps, job, 'stale', 'stale', error);
  return false;
}

/** A gated job whose preview ended without a plan (cancelled, lost with its runner, not recorded): it fails, applying nothing. */
export async function failWithoutPreview(deps: GateDeps, job: StackJobDoc): Promise<void> {
  const preview = approvalOfJob(job)?.previewJobId;
  await endUnrun(
    deps,
    job,
    'failed',
    'preview_failed',
    `its preview, job ${preview}, ended without a plan to approve; nothing was applied`,
  );
}
