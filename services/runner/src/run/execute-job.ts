import { dirname, join } from 'node:path';
import {
  approvalOfJob,
  CredentialUnavailableError,
  DEFAULT_TENANT,
  DRIFT_CHECK,
  foldersNest,
  jobStackKey,
  type KindInfo,
  lineStore,
  liveJobs,
  localDirsOf,
  localFilesRoot,
  openSecretParameters,
  parseManifest,
  recordStackLife,
  type ResourceDoc,
  type StackJobDoc,
  stackInputYaml,
  STORED_MANIFEST,
  tenantFilesRoot,
  tenantOf,
  TENANTS_FILES_DIR,
} from '@pds/shared';
import { DriftCollector } from './drift.js';
import { openJobRoom } from '../slots/job-room.js';
import { backendSeparatesTenants, removeStackState } from '../isolation/stack-state.js';
import { type JobCredential, prepareJobCredential } from './job-credential.js';
import { finishJob } from './job-finish.js';
import {
  type ExecuteDeps,
  type ExecuteOptions,
  failedBeforeRun,
  JobMasking,
  type JobRun,
  type Outcome,
  type RunEnd,
  storeCall,
} from './job-run.js';
import { startJob } from './job-start.js';
import { CHECK_SECRET_PLACEHOLDER, type JobTarget, loadJobTarget } from './job-target.js';
import { LineSink } from './line-sink.js';
import { PlanCollector } from './plan.js';
import { programHash } from './program-hash.js';
import { ProgressTracker } from './progress.js';
import { outcomeOf, runAttempts } from './pulumi-attempts.js';
import { runFilesFor } from './run-files.js';
import { jobLimitsOf, LimitWatch, limitReached } from '../sandbox/job-limits.js';
import { JobTimeline } from './job-timeline.js';
import { Tail } from './tail.js';

export type { AbortReason, ExecuteDeps, ExecuteOptions, RunEnd } from './job-run.js';
export { JobNotStartedError } from './job-start.js';

/**
 * Runs one stack job to its end state. The caller holds the stack's lock. Returns undefined without
 * doing anything when the job is gone or no longer queued (cancelled while it waited). Every store
 * access rides out an outage of up to OUTAGE_TOLERANCE_SECONDS (retried with backoff).
 */
export async function executeJob(
  deps: ExecuteDeps,
  jobId: string,
  signal: AbortSignal,
  options: ExecuteOptions = {},
): Promise<RunEnd | undefined> {
  const { models, config } = deps;
  const logger = deps.logger.child({ jobId });
  const toleranceMs = config.OUTAGE_TOLERANCE_SECONDS * 1000;
  const store = storeCall(logger, toleranceMs);
  const took = Date.now();
  const started = await startJob(deps, jobId, options, store, logger);
  if (!started) return undefined;
  const { job } = started;
  const timeline = new JobTimeline(job.createdAt.getTime());
  timeline.steps.push({ step: 'taken by a runner', ms: took - job.createdAt.getTime() });
  timeline.mark('claimed');
  // The resource shows its stack deploying or destroying, written beside the run (off the path to
  // spawning Pulumi) and awaited before the end is written, so the end is always the last word.
  const startRecorded = (
    job.templateCheck ? Promise.resolve() : store('record the stack deploying', () => recordStackLife(models, job, { started: true }))
  ).catch((err: Error) => logger.warn({ err: err.message }, 'the stack state could not be recorded'));
  const masking = new JobMasking();
  const run: JobRun = {
    deps,
    job,
    options,
    signal,
    slot: options.slot ?? { index: 0 },
    logger,
    store,
    sink: new LineSink({
      jobId,
      publisher: deps.publisher,
      store: lineStore(models).writer(jobId),
      logger,
      outageToleranceMs: toleranceMs,
    }),
    masking,
    timeline,
    ran: {},
    stdout: new Tail(),
    stderr: new Tail(),
    ...(job.planFor || isApprovedChange(job) ? { changes: new PlanCollector() } : {}),
    ...(job.operation === DRIFT_CHECK ? { drift: new DriftCollector(job.options?.ignore ?? undefined, (v) => masking.value(v)) } : {}),
  };
  run.sink.publish({ type: 'status', jobId, status: 'running', ts: started.startedAt.toISOString() });
  let outcome: Outcome;
  try {
    outcome = await runJob(run, started.early);
  } catch (err) {
    logger.error({ err }, 'job failed before Pulumi could report');
    const error = masking.mask((err as Error).message);
    run.sink.line('stderr', `error: ${error}`);
    outcome = { status: 'failed', exitCode: null, error, reason: 'internal_error' };
  }
  return finishJob(run, outcome, startRecorded);
}

/** An approved up or destroy: what it applies is compared with its approved plan, per resource. */
function isApprovedChange(job: StackJobDoc): boolean {
  return Boolean(approvalOfJob(job)?.plan) && (job.operation === 'up' || job.operation === 'destroy');
}

/** Loads what the job runs, opens its secrets, and runs its operation in the job's room. */
async function runJob(run: JobRun, early: Promise<ResourceDoc | null> | undefined): Promise<Outcome> {
  const { deps, job, options } = run;
  const target = await run.store('read the resource and its template', () =>
    loadJobTarget(deps, job, () =>
      job.resourceId === options.resourceId && early
        ? early
        : run.store('read the resource', () => deps.models.Resource.findById(job.resourceId).lean<ResourceDoc>()),
    ),
  );
  if (!('kind' in target)) return failedBeforeRun(run, target.error, target.reason);
  run.timeline.mark('resource and template read');
  await recordWhatRuns(run, target);
  const { resource, kind } = target;
  const manifest = parseManifest(resource.manifest, STORED_MANIFEST);
  const localDirs = localDirsOf(kind.localPaths, manifest.spec);
  const refused = placementRefused(run, localDirs);
  if (refused) return refused;
  const secrets = await openSecrets(run, kind, resource, target.check);
  if ('status' in secrets) return secrets;
  run.timeline.mark('credential and secrets opened');
  try {
    return await runWithSecrets(run, { kind, resourceId: resource._id, manifest, localDirs }, secrets);
  } finally {
    await dispose(run, secrets);
  }
}

/** What the run uses, as the job records it: the resource and template versions, the run kept as the last good one. */
async function recordWhatRuns(run: JobRun, { resource, kind, check }: JobTarget): Promise<void> {
  const { ran } = run;
  ran.version = check ? undefined : resource.version; // the manifest as it is now is what runs
  ran.templateVersion = kind.version;
  // Unreadable: the plan carries no hash, so only the template version tells a change (as for an uploaded one).
  if (run.job.planFor && run.deps.kinds.get(resource.kind) === kind) ran.programHash = await programHash(kind.dir).catch(() => undefined);
  if (!check)
    ran.lastGood = {
      manifest: resource.manifest,
      resourceVersion: resource.version,
      ...(resource.templateVersion ? { templateVersion: resource.templateVersion } : {}),
      ...(resource.secretParameters ? { secretParameters: resource.secretParameters } : {}),
    };
}

/** A tenant's stack where tenants cannot be kept apart, or the default tenant's folders among the tenants' own: refused. */
function placementRefused(run: JobRun, localDirs: string[]): Outcome | undefined {
  const { config } = run.deps;
  const tenant = tenantOf(run.job);
  if (tenant !== DEFAULT_TENANT && !backendSeparatesTenants(config.PULUMI_BACKEND_URL)) {
    const error = `PULUMI_BACKEND_URL (${new URL(config.PULUMI_BACKEND_URL).protocol}) cannot keep tenants' stacks apart: tenant ${tenant}'s jobs need a file://, s3://, gs:// or azblob:// backend`;
    return failedBeforeRun(run, error, 'backend_shared');
  }
  const tenantsArea = join(localFilesRoot(config), TENANTS_FILES_DIR);
  if (tenant === DEFAULT_TENANT && localDirs.some((dir) => foldersNest(tenantsArea, dir))) {
    const error = `spec.directory is in ${tenantsArea}, which holds the folders of the other tenants; the default tenant's folders are elsewhere in LOCAL_FILES_ROOT`;
    return failedBeforeRun(run, error, 'internal_error');
  }
  return undefined;
}

/**
 * Opens the job's credential (its files written for the job's uid) and the template's secret
 * parameters, and masks the job's output with both from then on. The caller disposes of the credential.
 */
async function openSecrets(run: JobRun, kind: KindInfo, resource: ResourceDoc, check: boolean): Promise<JobCredential | Outcome> {
  const { deps, job } = run;
  let credential: JobCredential;
  try {
    credential = await run.store('open the credential', () =>
      prepareJobCredential(deps, kind, resource, join(deps.config.WORK_DIR, 'secrets', job._id), run.slot.identity),
    );
  } catch (err) {
    if (!(err instanceof CredentialUnavailableError)) throw err;
    return failedBeforeRun(run, err.message, 'credential_missing');
  }
  try {
    let parameters: Record<string, string>;
    try {
      parameters = openSecretParameters(deps.keyring, resource._id, resource.secretParameters);
    } catch (err) {
      await dispose(run, credential);
      return failedBeforeRun(run, (err as Error).message, 'credential_missing');
    }
    // A publish check has no values for secret parameters: placeholders let the program read them.
    if (check) parameters = Object.fromEntries(kind.secretParameters.map((key) => [key, CHECK_SECRET_PLACEHOLDER]));
    run.masking.open(credential, parameters);
    if (credential.used) run.ran.credential = credential.used;
    const credentialId = credential.credentialId;
    if (credentialId)
      await run.store('record the credential', async () => {
        // Its live entry first: a credential's delete reads the entries, then confirms with the job.
        await liveJobs(deps.models).setCredential(job._id, credentialId);
        await deps.models.StackJob.updateOne({ _id: job._id }, { $set: { credentialId } });
      });
    return credential;
  } catch (err) {
    await dispose(run, credential);
    throw err;
  }
}

/** Removes the credential's files; a failure is logged, never the job's outcome. */
async function dispose(run: JobRun, credential: JobCredential): Promise<void> {
  await credential.dispose().catch((err: Error) => run.logger.error({ err }, 'credential files could not be removed'));
}

/** What a job runs: its template's program, with its resource's manifest and local folders. */
interface RunTarget {
  kind: KindInfo;
  resourceId: string;
  manifest: ReturnType<typeof parseManifest>;
  localDirs: string[];
}

/** Runs the operation in the job's room (its workspace, backend and folders), within its timeout. */
async function runWithSecrets(
  run: JobRun,
  { kind, resourceId, manifest, localDirs }: RunTarget,
  credential: JobCredential,
): Promise<Outcome> {
  const { deps, job, ran } = run;
  const { config } = deps;
  const timeoutSeconds = job.options?.timeoutSeconds ?? config.JOB_TIMEOUT_SECONDS;
  const timeout = AbortSignal.timeout(timeoutSeconds * 1000);
  const stackKey = jobStackKey(job);
  const progress = new ProgressTracker(await deps.stackSizes?.get(stackKey));
  const localRoot = tenantFilesRoot(localFilesRoot(config), tenantOf(job)); // the job's tenant's area
  const env = {
    ...credential.env,
    STACK_INPUT_YAML: stackInputYaml(manifest, credential.settings),
    ...(kind.localPaths.length > 0 ? { LOCAL_FILES_ROOT: localRoot } : {}),
  };
  run.logger.info({ stack: job.stackFqdn, tenant: job.tenantId, operation: job.operation }, 'running pulumi');
  const sandbox = run.slot.sandbox;
  // Read while the room opens: a store read off the job's path (awaited below; its failure is the run's).
  const limitsRead = sandbox ? run.store('read the job limits', () => jobLimitsOf(config, deps.models, tenantOf(job))) : undefined;
  limitsRead?.catch(() => undefined); // marked handled now: it is awaited below, where its failure is the run's
  const files = await runFilesFor(run, resourceId);
  if ('status' in files) return files;
  const room = await openJobRoom({
    workDir: config.WORK_DIR,
    backendUrl: config.PULUMI_BACKEND_URL,
    stackFqdn: job.stackFqdn,
    stackKey,
    slot: run.slot,
    localDirs,
    localRoot,
  });
  let watch: LimitWatch | undefined;
  try {
    const limits = await limitsRead;
    if (sandbox && limits) {
      await sandbox.limit(limits);
      const home = dirname(room.pulumiHome);
      watch = new LimitWatch([home, join(config.WORK_DIR, 'jobs', job._id), ...room.handed], limits, () => sandbox.usage());
    }
    run.timeline.mark('room opened');
    const signal = AbortSignal.any([run.signal, timeout, ...(watch ? [watch.signal] : [])]);
    const attempts = await runAttempts(run, { kind, env, room, signal, progress, files });
    watch?.stop();
    ran.deployment = attempts.result.deployment;
    ran.savedPlan = attempts.result.savedPlan;
    // Masked like every output: a program exporting a credential as a secret does not hand it back.
    ran.secretOutputs = run.masking.value(attempts.result.secretOutputs);
    const outcome = outcomeOf(run, attempts, timeout, timeoutSeconds);
    if (!sandbox || !limits) return outcome;
    const usage = await sandbox.usage();
    ran.usage = { peakMemoryBytes: usage.peakMemoryBytes, cpuSeconds: usage.cpuSeconds, limits };
    const stopped = watch?.reached;
    if (stopped) return { ...outcome, status: 'failed', reason: stopped, error: watch!.error(stopped) };
    const limit = outcome.status === 'failed' ? limitReached(usage, limits) : undefined;
    return limit ? { ...outcome, ...limit } : outcome;
  } finally {
    watch?.stop();
    // A room that could not be closed keeps its slot out of use (tainted); what the run did stands.
    const closed = await room.release().then(
      () => true,
      (err: Error) => {
        run.logger.error({ err }, "the job's room could not be closed: its slot is kept out of use until it is clean");
        run.sink.line('stderr', `[runner] the job's slot could not be cleaned after the run: ${run.masking.mask(err.message)}`);
        return false;
      },
    );
    run.timeline.mark('room released');
    // A publish check's throw-away stack goes with its run.
    if (job.templateCheck)
      await removeStackState(config.PULUMI_BACKEND_URL, stackKey).catch((err: Error) =>
        run.logger.warn({ err: err.message }, 'the publish check stack could not be removed'),
      );
    // The slot's uid runs nothing now: its warm program hosts can be started again (not while it may).
    if (closed && run.slot.identity) deps.hosts?.rewarm(run.slot.identity.uid);
  }
}
