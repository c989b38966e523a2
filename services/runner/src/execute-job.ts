import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type AppliedChanges,
  appliedVersusPlan,
  approvalOfJob,
  type Config,
  CredentialUnavailableError,
  encodeOutputs,
  endJobOutsideRun,
  isTransientError,
  type Keyring,
  type EndMessage,
  type JobStatus,
  type KindRegistry,
  lineStore,
  type Logger,
  type Models,
  type Operation,
  type ResourceDoc,
  localDirsOf,
  localFilesRoot,
  parseManifest,
  retryTransient,
  stackInputYaml,
  type StackJobDoc,
  type LastGoodRun,
  STORED_MANIFEST,
  jobStackKey,
  openSecretParameters,
  recordStackLife,
  recordStackState,
  STACK_REMOVE,
  DRIFT_CHECK,
  readDeployment,
  STATE_VERSIONS_KEPT,
  type StackStateDoc,
  type SealedSecret,
  gunzipStored,
  type UpdatePlanFileDoc,
  secretFragments,
  DEFAULT_TENANT,
  tenantFilesRoot,
  tenantOf,
  TENANTS_FILES_DIR,
  foldersNest,
} from '@pds/shared';
import type { Redis } from 'ioredis';
import { DriftCollector, type DriftReport } from './drift.js';
import { PlanCollector } from './plan.js';
import { programHash } from './program-hash.js';
import { type JobRoom, openJobRoom } from './isolation/job-room.js';
import type { Slot } from './isolation/slots.js';
import { type JobCredential, masker, prepareJobCredential } from './job-credential.js';
import { backendSeparatesTenants, removeStackState } from './isolation/stack-state.js';
import { CHECK_SECRET_PLACEHOLDER, loadJobTarget } from './job-target.js';
import { LineSink } from './line-sink.js';
import { type ProgressBoard, ProgressTracker, resourcesAfter, type StackSizes } from './progress.js';
import { compactEvent } from './pulumi/engine-events.js';
import type { JobOptions } from './pulumi/operation-args.js';
import type { ProgramHostPool } from './pulumi/program-host-pool.js';
import { type PulumiRunResult, runPulumi } from './pulumi/pulumi-run.js';
import { Tail } from './tail.js';

export interface ExecuteDeps {
  config: Config;
  models: Models;
  kinds: KindRegistry;
  /** Opens credentials; undefined when CREDENTIALS_KEY is not set (kinds with a provider then fail). */
  keyring?: Keyring;
  publisher: Pick<Redis, 'publish'>;
  logger: Logger;
  runnerId: string;
  /** Warm program hosts (optional: without, each job starts its own). */
  hosts?: ProgramHostPool;
  /** Told how long after its creation a job's Pulumi process started (ms), for metrics. */
  onSpawn?(latencyMs: number): void;
  /** Takes the job out of `queued` for this run (false: someone cancelled it first). */
  claim(jobId: string): Promise<boolean>;
  /** Gives the claim back when the job could not be started (the store stayed unreachable). */
  unclaim(jobId: string): Promise<void>;
  /** Remembered stack sizes, for progress percentages (optional). */
  stackSizes?: Pick<StackSizes, 'get' | 'set'>;
  /** Where a running job's progress is shown to readers of the job (optional). */
  progressBoard?: Pick<ProgressBoard, 'record' | 'clear'>;
  /**
   * Waits before running again when Pulumi finds the stack locked by a run outside this service
   * (one retry per entry; default 5 s, 15 s, 45 s).
   */
  lockedRetryWaitsMs?: readonly number[];
}

/** Files a run gets in its workspace: a state to restore or preview against, an approved update plan. */
type RunFiles = { restoreDeployment?: string; scratchDeployment?: string; updatePlan?: string };

/**
 * The state a restore puts back: a kept state version, or a state uploaded for import (the restore
 * reads it once and removes it; its preview only reads it). An error names what is missing.
 */
async function readRunFiles(
  models: Pick<Models, 'StackState' | 'StateUpload'>,
  store: <T>(what: string, fn: () => Promise<T>) => Promise<T>,
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

/** Pulumi's words when another process holds its lock on the stack. */
const STACK_LOCKED = /the stack is currently locked/;
const LOCKED_RETRY_WAITS_MS = [5_000, 15_000, 45_000];
/** Pulumi's words when an up would step outside its update plan. */
const PLAN_VIOLATION = /violates plan|not allowed by the plan|not in the plan/;

/** Why a run was aborted, as recorded on the job. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lock_lost';

export interface ExecuteOptions {
  /** The fencing token of the stack lock this run holds. */
  fence?: number;
  /** A run on this stack was lost: clear Pulumi's stale lock before starting. */
  repairStack?: boolean;
  /** The job's resource, when the queue message names it: read while the job is claimed. */
  resourceId?: string;
  /** The runner slot the job runs in (its uid, with isolation); slot 0 without isolation when absent. */
  slot?: Slot;
}

/** The job could not be moved to `running` (the store stayed unreachable): it is still queued. */
export class JobNotStartedError extends Error {
  override name = 'JobNotStartedError';
  constructor(cause: Error) {
    super(`the job could not be started: ${cause.message}`, { cause });
  }
}

/** How a run ended, for the runner (metrics, recovery, stack repair). */
export interface RunEnd {
  status: JobStatus;
  reason?: string;
  /** The job as it was when the run started. */
  job: StackJobDoc;
  /** Pulumi's lock may be left on the stack (killed after the stack lock was lost). */
  stackNeedsRepair: boolean;
  /** A drift check's report. */
  drift?: DriftReport;
  error?: string;
  /** The preview of a gated job: what it plans, and the resource and template versions it ran. */
  plan?: {
    changes: { urn: string; type: string; op: string }[];
    counts: Record<string, number>;
    resourceVersion?: number;
    templateVersion?: string;
    /** The update plan it saved (`savePlan`), JSON text. */
    savedPlan?: string;
    /** A built-in template's program it ran (program-hash.ts). */
    programHash?: string;
  };
}

interface Outcome {
  status: JobStatus;
  exitCode: number | null;
  error?: string;
  reason?: string;
  outputs?: Record<string, unknown>;
  summary?: Record<string, number>;
  lockLeft?: boolean;
}

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
  const slot: Slot = options.slot ?? { index: 0 };
  const logger = deps.logger.child({ jobId });
  const toleranceMs = config.OUTAGE_TOLERANCE_SECONDS * 1000;
  /** A store access, retried while the store is unreachable (each must be safe to repeat). */
  const store = <T>(what: string, fn: () => Promise<T>) =>
    retryTransient(fn, {
      toleranceMs,
      onRetry: (err, attempt, waitMs) => logger.warn({ err: err.message, attempt, waitMs }, `${what}: store unreachable, retrying`),
    });
  const readResource = (id: string) => store('read the resource', () => models.Resource.findById(id).lean<ResourceDoc>());

  if (!(await deps.claim(jobId))) {
    logger.info('job was cancelled before it could start; skipping');
    return undefined;
  }
  const startedAt = new Date();
  // The Redis claim made this runner the only one to move the job out of `queued`, so a repeat of
  // this update (its first answer lost) finds the job already running under our id and start time.
  const claiming = store('start the job', () =>
    models.StackJob.findOneAndUpdate(
      {
        _id: jobId,
        // A gated job starts only from `approved`, never from `queued`.
        $or: [
          { status: 'queued', approval: { $exists: false } },
          { status: 'approved' },
          { status: 'running', runnerId: deps.runnerId, startedAt },
        ],
      },
      { $set: { status: 'running', startedAt, runnerId: deps.runnerId, fence: options.fence } },
      { returnDocument: 'after' },
    ).lean<StackJobDoc>(),
  );
  // The resource is read meanwhile when the queue message names it (the claim and the read overlap).
  const early = options.resourceId ? readResource(options.resourceId) : undefined;
  early?.catch(() => undefined); // awaited below; an error before then must not go unhandled
  const claimed = await claiming.catch(async (err: Error) => {
    if (isTransientError(err)) {
      await deps.unclaim(jobId).catch(() => undefined);
      throw new JobNotStartedError(err);
    }
    // Not the store being away: trying again would not help, so the job ends rather than wait forever.
    const error = `the job could not be started: ${err.message}`;
    await endJobOutsideRun(models, deps.publisher, jobId, 'queued', { status: 'failed', reason: 'internal_error', error }).catch(
      () => undefined,
    );
    throw err;
  });
  if (!claimed) {
    logger.info('job is no longer queued; skipping');
    return undefined;
  }
  const job = claimed;
  // The resource shows its stack deploying or destroying, written beside the run (off the path to
  // spawning Pulumi) and awaited before the end is written, so the end is always the last word.
  const startRecorded = (
    job.templateCheck ? Promise.resolve() : store('record the stack deploying', () => recordStackLife(models, job, { started: true }))
  ).catch((err: Error) => logger.warn({ err: err.message }, 'the stack state could not be recorded'));
  const sink = new LineSink({
    jobId,
    publisher: deps.publisher,
    store: lineStore(models).writer(jobId),
    logger,
    outageToleranceMs: toleranceMs,
  });
  let ranVersion: number | undefined; // the resource version this run used
  let ranTemplateVersion: string | undefined; // the template version it ran
  let ranProgramHash: string | undefined; // a gated preview: the built-in program it ran (program-hash.ts)
  let ranRun: LastGoodRun | undefined; // what it ran, kept as the stack's last good run if an up succeeds
  let leftDeployment: string | undefined; // the stack's state after the run (up, refresh, destroy)
  let savedPlan: string | undefined; // the update plan a gated up's preview saved
  let leftSecretOutputs: Record<string, unknown> | undefined; // the outputs of leftDeployment that hold secrets (credentials masked)
  let spawnedAt: Date | undefined; // when the operation's Pulumi process started
  let lockedSeen = false; // this attempt's Pulumi said the stack is locked by someone else
  // A drift check reports what differs from the cloud, as the engine's refresh steps say it.
  // The preview of an approval-gated job lists what it plans, per resource.
  const plan = job.planFor ? new PlanCollector() : undefined;
  const drift =
    job.operation === DRIFT_CHECK ? new DriftCollector((job.options as JobOptions | undefined)?.ignore, (v) => maskValue(v)) : undefined;
  const stdout = new Tail();
  const stderr = new Tail();
  sink.publish({ type: 'status', jobId, status: 'running', ts: startedAt.toISOString() });
  // Until a credential is opened there is nothing to mask.
  let mask: (text: string) => string = (text) => text;
  let secretConfig: Record<string, string> = {}; // the template's secret parameters, opened for this job
  let outcome: Outcome;
  let credential: JobCredential | undefined;
  try {
    outcome = await run();
  } catch (err) {
    logger.error({ err }, 'job failed before Pulumi could report');
    sink.line('stderr', `error: ${mask((err as Error).message)}`);
    outcome = { status: 'failed', exitCode: null, error: mask((err as Error).message), reason: 'internal_error' };
  } finally {
    await credential?.dispose().catch((err: Error) => logger.error({ err }, 'credential files could not be removed'));
  }
  return finish(outcome);

  /** Masks every string inside a value (events, outputs) by way of its JSON — only when there are secrets. */
  function maskValue<T>(value: T): T {
    // Per event: skip the JSON round trip when there is nothing secret.
    if (value === undefined || (credential?.credentialId === undefined && Object.keys(secretConfig).length === 0)) return value;
    return JSON.parse(mask(JSON.stringify(value))) as T;
  }

  /** Seals the secret outputs a run read, for this job's state version (none without CREDENTIALS_KEY: then they cannot be shown). */
  function sealSecretOutputs(outputs: Record<string, unknown> | undefined, context: string): SealedSecret | undefined {
    if (!outputs || !deps.keyring || Object.keys(outputs).length === 0) return undefined;
    return deps.keyring.seal(JSON.stringify(outputs), context);
  }

  async function run(): Promise<Outcome> {
    const target = await store('read the resource and its template', () =>
      loadJobTarget(deps, job, () => (job.resourceId === options.resourceId && early ? early : readResource(job.resourceId))),
    );
    if (!('kind' in target)) {
      sink.line('stderr', `error: ${target.error}`);
      return { status: 'failed', exitCode: null, error: target.error, reason: target.reason };
    }
    const { resource, kind } = target;
    ranVersion = target.check ? undefined : resource.version; // the manifest as it is now is what runs
    ranTemplateVersion = kind.version;
    if (job.planFor && deps.kinds.get(resource.kind) === kind) ranProgramHash = await programHash(kind.dir).catch(() => undefined);
    if (!target.check)
      ranRun = {
        manifest: resource.manifest,
        resourceVersion: resource.version,
        ...(resource.templateVersion ? { templateVersion: resource.templateVersion } : {}),
        ...(resource.secretParameters ? { secretParameters: resource.secretParameters } : {}),
      };
    if (tenantOf(job) !== DEFAULT_TENANT && !backendSeparatesTenants(config.PULUMI_BACKEND_URL)) {
      const error = `PULUMI_BACKEND_URL (${new URL(config.PULUMI_BACKEND_URL).protocol}) cannot keep tenants' stacks apart: tenant ${tenantOf(job)}'s jobs need a file://, s3://, gs:// or azblob:// backend`;
      return { status: 'failed', exitCode: null, error, reason: 'backend_shared' };
    }
    try {
      credential = await store('open the credential', () =>
        prepareJobCredential(deps, kind, resource, join(config.WORK_DIR, 'secrets', jobId), slot.identity),
      );
    } catch (err) {
      if (!(err instanceof CredentialUnavailableError)) throw err;
      sink.line('stderr', `error: ${err.message}`);
      return { status: 'failed', exitCode: null, error: err.message, reason: 'credential_missing' };
    }
    let parameters: Record<string, string>;
    try {
      parameters = openSecretParameters(deps.keyring, resource._id, resource.secretParameters);
    } catch (err) {
      sink.line('stderr', `error: ${(err as Error).message}`);
      return { status: 'failed', exitCode: null, error: (err as Error).message, reason: 'credential_missing' };
    }
    // A publish check has no values for secret parameters: placeholders let the program read them.
    if (target.check) parameters = Object.fromEntries(kind.secretParameters.map((key) => [key, CHECK_SECRET_PLACEHOLDER]));
    secretConfig = parameters;
    // One masker for both: applied one after the other, a fragment of one inside the other would split it.
    mask = Object.keys(parameters).length > 0 ? masker([...credential.fragments, ...secretFragments(parameters)]) : credential.mask;
    const credentialId = credential.credentialId;
    if (credentialId) await store('record the credential', () => models.StackJob.updateOne({ _id: jobId }, { $set: { credentialId } }));
    const timeoutSeconds = (job.options as { timeoutSeconds?: number })?.timeoutSeconds ?? config.JOB_TIMEOUT_SECONDS;
    const timeout = AbortSignal.timeout(timeoutSeconds * 1000);
    const runSignal = AbortSignal.any([signal, timeout]);
    const stackKey = jobStackKey(job);
    const progress = new ProgressTracker(await deps.stackSizes?.get(stackKey));
    const manifest = parseManifest(resource.manifest, STORED_MANIFEST);
    const localRoot = tenantFilesRoot(localFilesRoot(config), tenantOf(job)); // the job's tenant's area
    const env = {
      ...credential.env,
      STACK_INPUT_YAML: stackInputYaml(manifest, credential.settings),
      ...(kind.localPaths.length > 0 ? { LOCAL_FILES_ROOT: localRoot } : {}),
    };
    const waits = deps.lockedRetryWaitsMs ?? LOCKED_RETRY_WAITS_MS;
    logger.info({ stack: job.stackFqdn, tenant: job.tenantId, operation: job.operation }, 'running pulumi');
    const { spec } = manifest;
    const tenantsArea = join(localFilesRoot(config), TENANTS_FILES_DIR);
    if (tenantOf(job) === DEFAULT_TENANT && localDirsOf(kind.localPaths, spec).some((dir) => foldersNest(tenantsArea, dir))) {
      const error = `spec.directory is in ${tenantsArea}, which holds the folders of the other tenants; the default tenant's folders are elsewhere in LOCAL_FILES_ROOT`;
      return { status: 'failed', exitCode: null, error, reason: 'internal_error' };
    }
    // A restore puts back a state version the store keeps (or an uploaded one); its gate's preview
    // runs the program against it, in a scratch backend.
    let runFiles: RunFiles = {};
    const jobOptions = (job.options ?? {}) as JobOptions;
    const previewsRestore = job.operation === 'preview' && jobOptions.previewOf === 'restore';
    if (job.operation === 'restore' || previewsRestore) {
      const read = await readRunFiles(models, store, resource._id, jobOptions, { consumeUpload: !previewsRestore });
      if ('error' in read) {
        sink.line('stderr', `error: ${read.error}`);
        return { status: 'failed', exitCode: null, error: read.error, reason: 'state_version_missing' };
      }
      runFiles = previewsRestore ? { scratchDeployment: read.deployment } : { restoreDeployment: read.deployment };
    }
    // An approved up under `approvals.updatePlans` applies the update plan its preview saved, or nothing.
    if (job.operation === 'up' && approvalOfJob(job)?.updatePlan) {
      const saved = await store('read the update plan', () => models.UpdatePlanFile.findById(job._id).lean<UpdatePlanFileDoc>());
      if (!saved) {
        const error = `the update plan its preview saved is gone; nothing was applied (queue it again for a new preview and approval)`;
        sink.line('stderr', `error: ${error}`);
        return { status: 'failed', exitCode: null, error, reason: 'plan_missing' };
      }
      runFiles.updatePlan = gunzipStored(saved.data);
      sink.line('stdout', `[runner] applying the update plan of its approved preview, job ${saved.previewJobId} (pulumi up --plan)`);
    }
    const room = await openJobRoom({
      workDir: config.WORK_DIR,
      backendUrl: config.PULUMI_BACKEND_URL,
      stackFqdn: job.stackFqdn,
      stackKey,
      slot,
      localDirs: localDirsOf(kind.localPaths, spec),
      localRoot,
    });
    let result: PulumiRunResult;
    try {
      result = await runAttempts(kind, env, room, runSignal, progress, waits, runFiles);
      leftDeployment = result.deployment;
      savedPlan = result.savedPlan;
      // Masked like every output: a program exporting a credential as a secret does not hand it back.
      leftSecretOutputs = maskValue(result.secretOutputs);
    } finally {
      await room.release();
      // A publish check's throw-away stack goes with its run.
      if (target.check)
        await removeStackState(config.PULUMI_BACKEND_URL, stackKey).catch((err: Error) =>
          logger.warn({ err: err.message }, 'the publish check stack could not be removed'),
        );
      // The slot's uid runs nothing now: its warm program hosts can be started again.
      if (slot.identity) deps.hosts?.rewarm(slot.identity.uid);
    }
    return outcomeOf(result, timeout, timeoutSeconds);
  }

  /** Runs the operation, again after a wait while Pulumi finds the stack locked from outside. */
  async function runAttempts(
    kind: NonNullable<ReturnType<KindRegistry['get']>>,
    env: Record<string, string>,
    room: JobRoom,
    runSignal: AbortSignal,
    progress: ProgressTracker,
    waits: readonly number[],
    runFiles: RunFiles,
  ): Promise<PulumiRunResult> {
    let result: PulumiRunResult;
    for (let attempt = 1; ; attempt++) {
      result = await runOnce(kind, env, room, runSignal, progress, attempt === 1 && options.repairStack === true, runFiles);
      const wait = waits[attempt - 1];
      if (result.aborted || result.exitCode === 0 || !isStackLocked(result) || wait === undefined) break;
      // Pulumi refused before changing anything: safe to run again, whatever the operation.
      sink.line(
        'stderr',
        `[runner] the stack is locked by a Pulumi run outside this service; trying again in ${Math.round(wait / 1000)} s (attempt ${attempt + 1} of ${waits.length + 1})`,
      );
      const waited = await delay(wait, undefined, { signal: runSignal }).then(
        () => true,
        () => false, // aborted (cancel, timeout, shutdown) while waiting
      );
      if (!waited) break;
    }
    return result;
  }

  /** What a finished run means for the job. */
  function outcomeOf(result: PulumiRunResult, timeout: AbortSignal, timeoutSeconds: number): Outcome {
    if (result.aborted && signal.reason === 'lock_lost') {
      return {
        status: 'failed',
        exitCode: result.exitCode,
        reason: 'lock_lost',
        error: 'the stack lock was lost (Redis unreachable for longer than its TTL); the run was stopped',
        lockLeft: result.lockLeft,
      };
    }
    if (result.aborted) {
      const reason: AbortReason = timeout.aborted ? 'timeout' : ((signal.reason as AbortReason) ?? 'cancelled');
      return {
        status: 'cancelled',
        exitCode: result.exitCode,
        reason,
        error: `operation ${reason === 'timeout' ? `timed out after ${timeoutSeconds} s` : `was ${reason === 'shutdown' ? 'stopped by a runner shutdown' : 'cancelled'}`}`,
      };
    }
    const outputs = maskValue(result.outputs);
    if (result.exitCode === 0) return { status: 'succeeded', exitCode: 0, outputs, summary: result.summary };
    if (isStackLocked(result)) {
      const error = `the stack is locked by a Pulumi run outside this service (${(deps.lockedRetryWaitsMs ?? LOCKED_RETRY_WAITS_MS).length + 1} attempts); it is not cleared automatically: when that run is known to be gone, clear it with \`pulumi cancel --stack ${job.stackFqdn}\`, then queue the job again`;
      return { status: 'failed', exitCode: result.exitCode, reason: 'stack_locked', error };
    }
    const error = mask(result.errors.join('\n')) || stderr.toString() || `pulumi exited with code ${result.exitCode}`;
    // An up held to its approved update plan that would have done something else: nothing beyond the plan ran.
    const reason = approvalOfJob(job)?.updatePlan && PLAN_VIOLATION.test(error) ? { reason: 'plan_violation' } : {};
    return { status: 'failed', exitCode: result.exitCode, error, outputs, summary: result.summary, ...reason };
  }

  function isStackLocked(result: PulumiRunResult): boolean {
    return result.exitCode !== 0 && (lockedSeen || result.errors.some((e) => STACK_LOCKED.test(e)));
  }

  function runOnce(
    kind: NonNullable<ReturnType<KindRegistry['get']>>,
    env: Record<string, string>,
    room: JobRoom,
    runSignal: AbortSignal,
    progress: ProgressTracker,
    clearStaleLock: boolean,
    runFiles: RunFiles,
  ): Promise<PulumiRunResult> {
    lockedSeen = false;
    return runPulumi({
      ...runFiles,
      // Sealed and kept with the state version: not without a key, nor for a publish check's throw-away stack.
      readSecretOutputs: Boolean(deps.keyring) && !job.templateCheck,
      pulumiBin: config.PULUMI_BIN,
      pulumiHome: room.pulumiHome,
      backendUrl: room.backendUrl,
      identity: slot.identity,
      jobEnvAllow: config.JOB_ENV_ALLOW.split(',').filter(Boolean),
      passphrase: config.PULUMI_CONFIG_PASSPHRASE,
      programDir: kind.dir,
      main: kind.main,
      project: kind.project,
      workspaceDir: join(config.WORK_DIR, 'jobs', jobId),
      stackFqdn: job.stackFqdn,
      operation: job.operation as Operation,
      options: (job.options ?? {}) as JobOptions,
      env,
      secretConfig,
      clearStaleLock,
      signal: runSignal,
      graceMs: config.CANCEL_GRACE_SECONDS * 1000,
      // Once the stack lock is lost another run may hold the stack: its Pulumi lock is not ours to clear.
      mayClearLock: () => signal.reason !== 'lock_lost',
      onSpawn() {
        if (spawnedAt) return; // the first Pulumi process of the job counts
        spawnedAt = new Date();
        deps.onSpawn?.(spawnedAt.getTime() - job.createdAt.getTime());
      },
      hosts: deps.hosts,
      onLine(stream, raw) {
        const text = mask(raw);
        if (stream === 'stderr' && STACK_LOCKED.test(text)) lockedSeen = true;
        (stream === 'stdout' ? stdout : stderr).push(text);
        sink.line(stream, text);
        return sink.pressure();
      },
      onEvent(event) {
        drift?.observe(event);
        plan?.observe(event);
        const compact = compactEvent(event);
        if (!compact) return;
        const counted = progress.update(compact);
        // Once Pulumi's summary is in, the steps are over: readers see the job's end, not a 100 % still
        // `running` while the runner reads back the state and records the result.
        if (compact.kind === 'summary') void deps.progressBoard?.clear(jobId);
        else if (counted) deps.progressBoard?.record(jobId, counted);
        sink.event(maskValue(counted ? { ...compact, progress: counted } : compact));
      },
    });
  }

  /**
   * An approved up or destroy that succeeded: what it applied against its approved plan; a difference is
   * said in its lines (a restore's plan is of the up after it, not of the import: not compared).
   */
  function appliedAgainstApproval(outcome: Outcome): AppliedChanges | undefined {
    const plan = approvalOfJob(job)?.plan;
    if (!plan || (job.operation !== 'up' && job.operation !== 'destroy') || outcome.status !== 'succeeded' || !outcome.summary)
      return undefined;
    const applied = appliedVersusPlan(plan.counts, outcome.summary);
    if (!applied.matchesPlan)
      sink.line('stderr', `[runner] warning: what was applied differs from the approved plan: ${applied.differences.join(', ')}`);
    return applied;
  }

  async function finish(outcome: Outcome): Promise<RunEnd | undefined> {
    void deps.progressBoard?.clear(jobId); // nothing waits on it: readers show progress only while running
    const applied = appliedAgainstApproval(outcome);
    let lastSeq = sink.lastSeq;
    try {
      lastSeq = await sink.close();
    } catch (err) {
      // What Pulumi did stands: a deployment that succeeded is not reported failed for its log.
      const lost = (err as Error).message;
      outcome =
        outcome.status === 'succeeded'
          ? { ...outcome, reason: 'lines_not_persisted', error: `the operation succeeded, but its output is incomplete: ${lost}` }
          : { ...outcome, status: 'failed', reason: 'lines_not_persisted', error: [outcome.error, lost].filter(Boolean).join('\n') };
    }
    // The state the run left becomes the stack's next version (unless unchanged), before the job's end is written.
    let stateVersion: number | undefined;
    if (leftDeployment !== undefined && !job.templateCheck) {
      const deployment = leftDeployment;
      stateVersion = await store('record the stack state version', () =>
        recordStackState(models, job, deployment, outcome.summary ?? {}, (context) => sealSecretOutputs(leftSecretOutputs, context)),
      )
        .then((doc) => doc?.seq)
        .catch((err: Error) => {
          logger.warn({ err: err.message }, 'the stack state version could not be recorded');
          return undefined;
        });
    }
    const driftReport = drift?.report(outcome.status, outcome.error);
    const finishedAt = new Date();
    // Conditional on `running`: if the reconciler already declared this run lost, it stays so. A
    // repeat (the first answer lost) finds its own finishedAt.
    const written = await store('record the result', () =>
      models.StackJob.updateOne(
        { _id: jobId, $or: [{ status: 'running' }, { status: outcome.status, finishedAt }] },
        {
          $set: {
            status: outcome.status,
            finishedAt,
            exitCode: outcome.exitCode,
            error: outcome.error,
            reason: outcome.reason,
            outputs: encodeOutputs(outcome.outputs ?? {}),
            summary: outcome.summary ?? {},
            stdoutTail: stdout.toString(),
            stderrTail: stderr.toString(),
            lastSeq,
            ...(spawnedAt ? { spawnedAt } : {}),
            ...(ranVersion !== undefined ? { resourceVersion: ranVersion } : {}),
            ...(stateVersion !== undefined ? { stateVersion } : {}),
            ...(driftReport ? { drift: driftReport } : {}),
            ...(applied ? { 'approval.applied': applied } : {}),
          },
        },
      ),
    );
    if (written.matchedCount === 0) {
      logger.warn({ status: outcome.status }, 'the job was ended elsewhere (runner_lost) while it ran; its result is not recorded');
      return undefined;
    }
    await startRecorded;
    const life = {
      status: outcome.status,
      outputs: encodeOutputs(outcome.outputs ?? {}),
      resourceVersion: ranVersion,
      templateVersion: ranTemplateVersion,
      ...(job.operation === 'up' && outcome.status === 'succeeded' && ranRun ? { lastGood: ranRun } : {}),
      at: finishedAt,
    };
    // The stack is gone from the backend (what it created stays): the resource and its state versions go too.
    if (job.operation === STACK_REMOVE && outcome.status === 'succeeded') {
      await store('remove the resource', async () => {
        await models.Resource.deleteOne({ _id: job.resourceId });
        await models.StackState.deleteMany({ resourceId: job.resourceId });
        await models.StateUpload.deleteMany({ resourceId: job.resourceId });
        await models.UpdatePlanFile.deleteMany({ resourceId: job.resourceId });
      }).catch((err: Error) => logger.warn({ err: err.message }, 'the resource could not be removed after its stack was'));
    }
    if (!job.templateCheck)
      await store('record the stack state', () => recordStackLife(models, job, life)).catch((err: Error) =>
        logger.warn({ err: err.message }, 'the stack state could not be recorded'),
      );
    // Published only after the job document is final, so a watcher that sees `end` can trust it.
    const end: EndMessage = {
      type: 'end',
      jobId,
      status: outcome.status,
      exitCode: outcome.exitCode,
      ...(outcome.error ? { error: outcome.error } : {}),
      ...(outcome.reason ? { reason: outcome.reason } : {}),
      summary: outcome.summary ?? {},
      lastSeq,
      ts: finishedAt.toISOString(),
    };
    sink.publish(end);
    logger.info({ status: outcome.status, exitCode: outcome.exitCode, lines: lastSeq }, 'job finished');
    // An update plan is applied once: whatever the outcome, it goes with the run.
    if (approvalOfJob(job)?.updatePlan)
      await store('remove the update plan', () => models.UpdatePlanFile.deleteOne({ _id: jobId })).catch((err: Error) =>
        logger.warn({ err: err.message }, 'the update plan could not be removed'),
      );
    const size = outcome.status === 'succeeded' ? resourcesAfter(job.operation, outcome.summary) : undefined;
    if (size !== undefined) await deps.stackSizes?.set(jobStackKey(job), size);
    return {
      status: outcome.status,
      reason: outcome.reason,
      error: outcome.error,
      job,
      stackNeedsRepair: outcome.lockLeft === true,
      drift: driftReport,
      ...(plan
        ? {
            plan: {
              changes: plan.changes,
              counts: outcome.summary ?? {},
              resourceVersion: ranVersion,
              templateVersion: ranTemplateVersion,
              ...(ranProgramHash ? { programHash: ranProgramHash } : {}),
              ...(savedPlan !== undefined ? { savedPlan } : {}),
            },
          }
        : {}),
    };
  }
}
