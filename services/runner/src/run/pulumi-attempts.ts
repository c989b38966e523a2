import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { approvalOfJob, type KindInfo, type Operation } from '@pds/shared';
import type { JobRoom } from '../slots/job-room.js';
import type { AbortReason, JobRun, Outcome } from './job-run.js';
import type { ProgressTracker } from './progress.js';
import { compactEvent } from '../pulumi/engine-events.js';
import { type PulumiRunResult, runPulumi } from '../pulumi/pulumi-run.js';
import type { RunFiles } from './run-files.js';

/** Pulumi's words when another process holds its lock on the stack. */
const STACK_LOCKED = /the stack is currently locked/;
const LOCKED_RETRY_WAITS_MS = [5_000, 15_000, 45_000];
/** Pulumi's words when an up would step outside its update plan. */
const PLAN_VIOLATION = /violates plan|not allowed by the plan|not in the plan/;

/** What every run of the job's operation is given (the same for each attempt). */
export interface RunInputs {
  kind: KindInfo;
  env: Record<string, string>;
  room: JobRoom;
  /** The job's signal and its timeout, together. */
  signal: AbortSignal;
  progress: ProgressTracker;
  files: RunFiles;
}

/** A run's result, and whether Pulumi found the stack locked by a run outside this service. */
export interface RunResult {
  result: PulumiRunResult;
  locked: boolean;
  /** How many times Pulumi was run (more than once while the stack was locked from outside). */
  attempts?: number;
}

/** Runs the operation, again after a wait while Pulumi finds the stack locked from outside. */
export async function runAttempts(run: JobRun, inputs: RunInputs): Promise<RunResult> {
  const waits = run.deps.lockedRetryWaitsMs ?? LOCKED_RETRY_WAITS_MS;
  for (let tried = 1; ; tried++) {
    const once = { ...(await runOnce(run, inputs, tried === 1 && run.options.repairStack === true)), attempts: tried };
    const wait = waits[tried - 1];
    if (once.result.aborted || once.result.exitCode === 0 || !once.locked || wait === undefined) return once;
    // Pulumi refused before changing anything: safe to run again, whatever the operation.
    run.sink.line(
      'stderr',
      `[runner] the stack is locked by a Pulumi run outside this service; trying again in ${Math.round(wait / 1000)} s (attempt ${tried + 1} of ${waits.length + 1})`,
    );
    const waited = await delay(wait, undefined, { signal: inputs.signal }).then(
      () => true,
      () => false, // aborted (cancel, timeout, shutdown) while waiting
    );
    if (waited) continue;
    // Stopped while waiting: cancelled, timed out or shut down, as its signal says, not `stack_locked`.
    // The stack lock lost meanwhile stays `stack_locked`: nothing ran, no Pulumi lock of ours is left.
    return run.signal.reason === 'lock_lost' ? once : { ...once, result: { ...once.result, aborted: true } };
  }
}

/** What a finished run means for the job. */
export function outcomeOf(run: JobRun, { result, locked, attempts }: RunResult, timeout: AbortSignal, timeoutSeconds: number): Outcome {
  const { signal, job, masking } = run;
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
  const outputs = masking.value(result.outputs);
  if (result.exitCode === 0) return { status: 'succeeded', exitCode: 0, outputs, summary: result.summary };
  if (locked) {
    const error = `the stack is locked by a Pulumi run outside this service (${attempts ?? 1} attempts); it is not cleared automatically: when that run is known to be gone, clear it with \`pulumi cancel --stack ${job.stackFqdn}\`, then queue the job again`;
    return { status: 'failed', exitCode: result.exitCode, reason: 'stack_locked', error };
  }
  const error = masking.mask(result.errors.join('\n')) || run.stderr.toString() || `pulumi exited with code ${result.exitCode}`;
  // An up held to its approved update plan that would have done something else: nothing beyond the plan ran.
  const reason = approvalOfJob(job)?.updatePlan && PLAN_VIOLATION.test(error) ? { reason: 'plan_violation' as const } : {};
  return { status: 'failed', exitCode: result.exitCode, error, outputs, summary: result.summary, ...reason };
}

/** One Pulumi run of the job's operation: its lines and events go to the job's sink, masked. */
async function runOnce(run: JobRun, inputs: RunInputs, clearStaleLock: boolean): Promise<RunResult> {
  const { deps, job, sink, masking, ran } = run;
  const { config } = deps;
  let lockedSeen = false;
  const result = await runPulumi({
    ...inputs.files,
    // Sealed and kept with the state version: not without a key, nor for a publish check's throw-away stack.
    readSecretOutputs: Boolean(deps.keyring) && !job.templateCheck,
    pulumiBin: config.PULUMI_BIN,
    pulumiHome: inputs.room.pulumiHome,
    backendUrl: inputs.room.backendUrl,
    identity: run.slot.identity,
    ...(run.slot.sandbox
      ? { sandbox: { slot: run.slot.sandbox, handed: inputs.room.handed, secretsDir: join(config.WORK_DIR, 'secrets', job._id) } }
      : {}),
    jobEnvAllow: config.JOB_ENV_ALLOW.split(',').filter(Boolean),
    passphrase: config.PULUMI_CONFIG_PASSPHRASE,
    programDir: inputs.kind.dir,
    main: inputs.kind.main,
    project: inputs.kind.project,
    workspaceDir: join(config.WORK_DIR, 'jobs', job._id),
    stackFqdn: job.stackFqdn,
    operation: job.operation as Operation,
    options: job.options ?? {},
    env: inputs.env,
    secretConfig: masking.secretConfig,
    clearStaleLock,
    signal: inputs.signal,
    graceMs: config.CANCEL_GRACE_SECONDS * 1000,
    // Once the stack lock is lost another run may hold the stack: its Pulumi lock is not ours to clear.
    mayClearLock: () => run.signal.reason !== 'lock_lost',
    onStep: (step) => run.timeline.mark(step),
    onSpawn() {
      if (ran.spawnedAt) return; // the first Pulumi process of the job counts
      ran.spawnedAt = new Date();
      deps.onSpawn?.(ran.spawnedAt.getTime() - job.createdAt.getTime());
    },
    hosts: deps.hosts,
    onLine(stream, raw) {
      const text = masking.mask(raw);
      if (stream === 'stderr' && STACK_LOCKED.test(text)) lockedSeen = true;
      (stream === 'stdout' ? run.stdout : run.stderr).push(text);
      sink.line(stream, text);
      return sink.pressure();
    },
    onEvent(event) {
      run.drift?.observe(event);
      run.changes?.observe(event);
      const compact = compactEvent(event);
      if (!compact) return;
      const counted = inputs.progress.update(compact);
      // Once Pulumi's summary is in, the steps are over: readers see the job's end, not a 100 % still
      // `running` while the runner reads back the state and records the result.
      if (compact.kind === 'summary') void deps.progressBoard?.clear(job._id);
      else if (counted) deps.progressBoard?.record(job._id, counted);
      sink.event(masking.value(counted ? { ...compact, progress: counted } : compact));
    },
  });
  const locked = result.exitCode !== 0 && (lockedSeen || result.errors.some((e) => STACK_LOCKED.test(e)));
  return { result, locked };
}
