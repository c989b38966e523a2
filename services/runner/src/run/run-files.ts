import {
  approvalOfJob,
  gunzipStored,
  type Models,
  readDeployment,
  STATE_VERSIONS_KEPT,
  type StackStateDoc,
  type UpdatePlanFileDoc,
} from '@pds/shared';
import { failedBeforeRun, type JobRun, type Outcome, type StoreCall } from './job-run.js';
import type { JobOptions } from '../pulumi/operation-args.js';

/** Files a run gets in its workspace: a state to restore or preview against, an approved update plan. */
export type RunFiles = { restoreDeployment?: string; scratchDeployment?: string; updatePlan?: string };

/**
 * The files a job's run needs, or why it cannot run. A restore puts back a state version the store
 * keeps (or an uploaded one), and its gate's preview runs the program against it in a scratch
 * backend; an approved up under `approvals.updatePlans` applies the update plan its preview saved, or nothing.
 */
export async function runFilesFor(run: JobRun, resourceId: string): Promise<RunFiles | Outcome> {
  const { job, store, sink } = run;
  const files: RunFiles = {};
  const options = job.options ?? {};
  const previewsRestore = job.operation === 'preview' && options.previewOf === 'restore';
  if (job.operation === 'restore' || previewsRestore) {
    const read = await readStateToRestore(run.deps.models, store, resourceId, options, { consumeUpload: !previewsRestore });
    if ('error' in read) return failedBeforeRun(run, read.error, 'state_version_missing');
    if (previewsRestore) files.scratchDeployment = read.deployment;
    else files.restoreDeployment = read.deployment;
  }
  if (job.operation === 'up' && approvalOfJob(job)?.updatePlan) {
    const saved = await store('read the update plan', () => run.deps.models.UpdatePlanFile.findById(job._id).lean<UpdatePlanFileDoc>());
    if (!saved) {
      const error = `the update plan its preview saved is gone; nothing was applied (queue it again for a new preview and approval)`;
      return failedBeforeRun(run, error, 'plan_missing');
    }
    files.updatePlan = gunzipStored(saved.data);
    sink.line('stdout', `[runner] applying the update plan of its approved preview, job ${saved.previewJobId} (pulumi up --plan)`);
  }
  return files;
}

/**
 * The state a restore puts back: a kept state version, or a state uploaded for import (the restore
 * reads it once and removes it; its preview only reads it). An error names what is missing.
 */
async function readStateToRestore(
  models: Pick<Models, 'StackState' | 'StateUpload'>,
  store: StoreCall,
  resourceId: string,
  options: Pick<JobOptions, 'version' | 'upload'>,
  { consumeUpload }: { consumeUpload: boolean },
): Promise<{ deployment: string } | { error: string }> {
  const { version: seq, upload } = options;
  const found = await store('read the state to restore', () =>
    upload
      ? consumeUpload
        ? models.StateUpload.findOneAndDelete({ _id: upload, resourceId }).lean<Pick<StackStateDoc, 'data'>>()
        : models.StateUpload.findOne({ _id: upload, resourceId }).lean<Pick<StackStateDoc, 'data'>>()
      : models.StackState.findOne({ resourceId, seq }).lean<StackStateDoc>(),
  );
  if (!found)
    return {
      error: upload
        ? `the uploaded state ${upload} is gone (an import reads it once)`
        : `the stack has no state version ${seq} (the last ${STATE_VERSIONS_KEPT} are kept)`,
    };
  return { deployment: JSON.stringify(readDeployment(found)) };
}
