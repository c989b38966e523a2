import {
  type AppliedChanges,
  appliedVersusPlan,
  approvalOfJob,
  encodeOutputs,
  jobStackKey,
  recordStackLife,
  recordStackState,
  STACK_REMOVE,
} from '@pds/shared';
import { endJob } from '@pds/shared/lifecycle';
import type { DriftReport } from './drift.js';
import type { JobRun, Outcome, RunEnd } from './job-run.js';
import { MAX_PLAN_CHANGES } from './plan.js';
import { resourcesAfter } from './progress.js';

/**
 * Records how a run ended, in this order: its lines flushed, the state it left as the stack's next
 * version, its update plan dropped (applied once), the job's result (only if the job is still this run's: the reconciler may have declared
 * it lost), the stack's life on the resource, then the `end` message — published after every record
 * a watcher reads, so one that sees it can trust the stored job (only clean-up follows). Undefined
 * when the job was ended elsewhere.
 */
export async function finishJob(run: JobRun, runOutcome: Outcome, startRecorded: Promise<unknown>): Promise<RunEnd | undefined> {
  const { deps, job, logger } = run;
  void deps.progressBoard?.clear(job._id); // nothing waits on it: readers show progress only while running
  const applied = appliedAgainstApproval(run, runOutcome);
  const { outcome, lastSeq } = await closeLines(run, runOutcome);
  run.timeline.mark('lines flushed');
  const stateVersion = await recordStateVersion(run, outcome);
  run.timeline.mark('state version recorded');
  await removeUpdatePlan(run);
  const drift = run.drift?.report(outcome.status, outcome.error);
  const finishedAt = new Date();
  const ended = await endJob(deps, job._id, { status: outcome.status, reason: outcome.reason, error: outcome.error }, 'run', {
    result: resultOf(run, outcome, { lastSeq, stateVersion, drift, applied }),
    finishedAt,
    store: (write) => run.store('record the result', write),
    afterWrite: async () => {
      run.timeline.mark('result written');
      await startRecorded;
      await recordStackAfter(run, outcome, finishedAt);
    },
    publish: (end) => {
      run.sink.publish(end);
      run.timeline.mark('end published');
      // Told in the same turn as the end is published: one who heard the end finds the timeline.
      logger.debug({ steps: run.timeline.steps }, 'job timeline');
      deps.onTimeline?.(job._id, run.timeline.steps);
    },
  });
  if (!ended) {
    logger.warn({ status: outcome.status }, 'the job was ended elsewhere (runner_lost) while it ran; its result is not recorded');
    return undefined;
  }
  logger.info({ status: outcome.status, exitCode: outcome.exitCode, lines: lastSeq }, 'job finished');
  await cleanUpAfter(run, outcome);
  return runEndOf(run, outcome, drift);
}

/**
 * An approved up or destroy that succeeded: what it applied against its approved plan; a difference is
 * said in its lines (a restore's plan is of the up after it, not of the import: not compared).
 */
function appliedAgainstApproval(run: JobRun, outcome: Outcome): AppliedChanges | undefined {
  const { job } = run;
  const plan = approvalOfJob(job)?.plan;
  if (!plan || (job.operation !== 'up' && job.operation !== 'destroy') || outcome.status !== 'succeeded' || !outcome.summary)
    return undefined;
  // Per resource only when both lists are whole (each keeps at most MAX_PLAN_CHANGES).
  const whole = (list: readonly unknown[]) => list.length < MAX_PLAN_CHANGES;
  const resources =
    run.changes && whole(plan.changes) && whole(run.changes.changes) ? { planned: plan.changes, applied: run.changes.changes } : undefined;
  const applied = appliedVersusPlan(plan.counts, outcome.summary, resources);
  if (!applied.matchesPlan)
    run.sink.line('stderr', `[runner] warning: what was applied differs from the approved plan: ${applied.differences.join(', ')}`);
  return applied;
}

/** Flushes the job's lines. What Pulumi did stands: a deployment that succeeded is not reported failed for its log. */
async function closeLines(run: JobRun, outcome: Outcome): Promise<{ outcome: Outcome; lastSeq: number }> {
  const lastSeq = run.sink.lastSeq;
  try {
    return { outcome, lastSeq: await run.sink.close() };
  } catch (err) {
    const lost = (err as Error).message;
    if (outcome.status === 'succeeded')
      return {
        lastSeq,
        outcome: { ...outcome, reason: 'lines_not_persisted', error: `the operation succeeded, but its output is incomplete: ${lost}` },
      };
    const error = [outcome.error, lost].filter(Boolean).join('\n');
    return { lastSeq, outcome: { ...outcome, status: 'failed', reason: 'lines_not_persisted', error } };
  }
}

/** The state the run left becomes the stack's next version (unless unchanged), before the job's end is written. */
async function recordStateVersion(run: JobRun, outcome: Outcome): Promise<number | undefined> {
  const { deps, job, ran } = run;
  const deployment = ran.deployment;
  if (deployment === undefined || job.templateCheck) return undefined;
  // Sealed for this state version (none without CREDENTIALS_KEY: then they cannot be shown).
  const sealOutputs = (context: string) =>
    ran.secretOutputs && deps.keyring && Object.keys(ran.secretOutputs).length > 0
      ? deps.keyring.seal(JSON.stringify(ran.secretOutputs), context)
      : undefined;
  return run
    .store('record the stack state version', () => recordStackState(deps.models, job, deployment, outcome.summary ?? {}, sealOutputs))
    .then((doc) => doc?.seq)
    .catch((err: Error) => {
      run.logger.warn({ err: err.message }, 'the stack state version could not be recorded');
      return undefined;
    });
}

interface ResultDetails {
  lastSeq: number;
  stateVersion?: number;
  drift?: DriftReport;
  applied?: AppliedChanges;
}

/** The run's result, written with its end (endJob's `run` path). */
function resultOf(run: JobRun, outcome: Outcome, details: ResultDetails): Record<string, unknown> {
  const { ran } = run;
  const { stateVersion, drift, applied } = details;
  return {
    exitCode: outcome.exitCode,
    outputs: encodeOutputs(outcome.outputs ?? {}),
    summary: outcome.summary ?? {},
    stdoutTail: run.stdout.toString(),
    stderrTail: run.stderr.toString(),
    lastSeq: details.lastSeq,
    ...(ran.spawnedAt ? { spawnedAt: ran.spawnedAt } : {}),
    ...(ran.usage ? { usage: ran.usage } : {}),
    ...(ran.version !== undefined ? { resourceVersion: ran.version } : {}),
    ...(stateVersion !== undefined ? { stateVersion } : {}),
    ...(drift ? { drift } : {}),
    ...(applied ? { 'approval.applied': applied } : {}),
  };
}

/** The stack's life on its resource (status, outputs, last good run); a removed stack takes its resource along. */
async function recordStackAfter(run: JobRun, outcome: Outcome, at: Date): Promise<void> {
  const { deps, job, ran, logger } = run;
  const { models } = deps;
  if (job.templateCheck) return; // a publish check's throw-away stack has no life on a resource
  // The stack is gone from the backend (what it created stays): the resource and its state versions go
  // too. Only here, once the result is written as this run's: a run the reconciler ended may have a
  // successor on the stack already.
  if (job.operation === STACK_REMOVE && outcome.status === 'succeeded') {
    await run
      .store('remove the resource', async () => {
        await models.Resource.deleteOne({ _id: job.resourceId });
        await models.StackState.deleteMany({ resourceId: job.resourceId });
        await models.StateUpload.deleteMany({ resourceId: job.resourceId });
        await models.UpdatePlanFile.deleteMany({ resourceId: job.resourceId });
      })
      .catch((err: Error) => logger.warn({ err: err.message }, 'the resource could not be removed after its stack was'));
    return;
  }
  const life = {
    status: outcome.status,
    outputs: encodeOutputs(outcome.outputs ?? {}),
    resourceVersion: ran.version,
    templateVersion: ran.templateVersion,
    ...(job.operation === 'up' && outcome.status === 'succeeded' && ran.lastGood ? { lastGood: ran.lastGood } : {}),
    at,
  };
  await run
    .store('record the stack state', () => recordStackLife(models, job, life))
    .catch((err: Error) => logger.warn({ err: err.message }, 'the stack state could not be recorded'));
}

/**
 * An update plan is applied once: whatever the outcome, it goes with the run, before the job's end is
 * written (a reader that sees the end finds no plan left to apply).
 */
async function removeUpdatePlan(run: JobRun): Promise<void> {
  if (!approvalOfJob(run.job)?.updatePlan) return;
  await run
    .store('remove the update plan', () => run.deps.models.UpdatePlanFile.deleteOne({ _id: run.job._id }))
    .catch((err: Error) => run.logger.warn({ err: err.message }, 'the update plan could not be removed'));
}

/** After the end: the stack's size is remembered. */
async function cleanUpAfter(run: JobRun, outcome: Outcome): Promise<void> {
  const { deps, job } = run;
  const size = outcome.status === 'succeeded' ? resourcesAfter(job.operation, outcome.summary) : undefined;
  if (size !== undefined) await deps.stackSizes?.set(jobStackKey(job), size);
}

/** How the run ended, for the runner; a gated job's preview carries what it plans. */
function runEndOf(run: JobRun, outcome: Outcome, drift: DriftReport | undefined): RunEnd {
  const { ran } = run;
  return {
    status: outcome.status,
    reason: outcome.reason,
    error: outcome.error,
    job: run.job,
    stackNeedsRepair: outcome.lockLeft === true,
    drift,
    ...(run.job.planFor && run.changes
      ? {
          plan: {
            changes: run.changes.changes,
            counts: outcome.summary ?? {},
            resourceVersion: ran.version,
            templateVersion: ran.templateVersion,
            ...(ran.programHash ? { programHash: ran.programHash } : {}),
            ...(ran.credential ? { credential: ran.credential } : {}),
            ...(ran.savedPlan !== undefined ? { savedPlan: ran.savedPlan } : {}),
          },
        }
      : {}),
  };
}
