import type { JobTimeline } from './job-timeline.js';
import {
  type Config,
  type Keyring,
  type KindRegistry,
  type LastGoodRun,
  type Logger,
  type Models,
  retryTransient,
  secretFragments,
  type StackJobDoc,
} from '@pds/shared';
import type { EndReason, FinalStatus } from '@pds/shared/lifecycle';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DriftCollector, DriftReport } from './drift.js';
import type { Slot } from '../slots/slots.js';
import type { JobUsage } from '../sandbox/job-limits.js';
import { type JobCredential, masker } from './job-credential.js';
import type { LineSink } from './line-sink.js';
import type { CredentialUsed } from './job-credential.js';
import type { PlanCollector } from './plan.js';
import type { ProgressBoard, StackSizes } from './progress.js';
import type { ProgramHostPool } from '../pulumi/program-host-pool.js';
import type { Tail } from './tail.js';

export interface ExecuteDeps {
  config: Config;
  models: Models;
  kinds: KindRegistry;
  /** Opens credentials; undefined when CREDENTIALS_KEY is not set (kinds with a provider then fail). */
  keyring?: Keyring;
  publisher: Pick<Redis, 'publish'>;
  /** JOB_LIFECYCLE_QUEUE: where each job's after-end reactions are queued once it ended. */
  lifecycle: Pick<Queue, 'add'>;
  logger: Logger;
  runnerId: string;
  /** Warm program hosts (optional: without, each job starts its own). */
  hosts?: ProgramHostPool;
  /** Told how long after its creation a job's Pulumi process started (ms), for metrics. */
  onSpawn?(latencyMs: number): void;
  /** Told each step of a job's run once its end is published (the bench's step table). */
  onTimeline?(jobId: string, steps: JobTimeline['steps']): void;
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

/** Why a run was aborted, as recorded on the job. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lock_lost';

/** How a run ended, for the runner (metrics, recovery, stack repair). */
export interface RunEnd {
  status: FinalStatus;
  reason?: EndReason;
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
    /** The credential it ran with (none for a kind without a provider). */
    credential?: CredentialUsed;
  };
}

/** What a run means for its job, before it is recorded. */
export interface Outcome {
  status: FinalStatus;
  exitCode: number | null;
  error?: string;
  reason?: EndReason;
  outputs?: Record<string, unknown>;
  summary?: Record<string, number>;
  lockLeft?: boolean;
}

/** What a run used and left, filled in as it goes and read when its end is recorded. */
export interface RunRecord {
  /** The resource version it ran (not for a publish check: the manifest as it is now runs). */
  version?: number;
  /** The template version it ran. */
  templateVersion?: string;
  /** A gated preview: the built-in program it ran (program-hash.ts). */
  programHash?: string;
  /** What it ran, kept as the stack's last good run if an up succeeds. */
  lastGood?: LastGoodRun;
  /** The stack's state after the run (up, refresh, destroy, …). */
  deployment?: string;
  /** The update plan a gated up's preview saved. */
  savedPlan?: string;
  /** The outputs of `deployment` that hold secrets (credentials masked). */
  secretOutputs?: Record<string, unknown>;
  /** When the job's first Pulumi process started. */
  spawnedAt?: Date;
  /** The credential it ran with. */
  credential?: CredentialUsed;
  /** Sandboxed: what it used (peak memory, CPU time) and the limits it ran under. */
  usage?: JobUsage;
}

/** A store access, retried while the store is unreachable (each must be safe to repeat). */
export type StoreCall = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

export function storeCall(logger: Logger, toleranceMs: number): StoreCall {
  return (what, fn) =>
    retryTransient(fn, {
      toleranceMs,
      onRetry: (err, attempt, waitMs) => logger.warn({ err: err.message, attempt, waitMs }, `${what}: store unreachable, retrying`),
    });
}

/**
 * What a job's output is masked with: nothing until its credential and secret parameters are open,
 * then one masker for both (two maskers applied in turn could split a fragment of one inside the other).
 */
export class JobMasking {
  /** The template's secret parameters, opened for this job (Pulumi gets them as secret config). */
  secretConfig: Record<string, string> = {};
  private anySecret = false;
  mask: (text: string) => string = (text) => text;

  open(credential: JobCredential, parameters: Record<string, string>): void {
    this.secretConfig = parameters;
    this.anySecret = credential.credentialId !== undefined || Object.keys(parameters).length > 0;
    this.mask = Object.keys(parameters).length > 0 ? masker([...credential.fragments, ...secretFragments(parameters)]) : credential.mask;
  }

  /** Masks every string inside a value (events, outputs) by way of its JSON; skipped when nothing is secret. */
  value<T>(value: T): T {
    if (value === undefined || !this.anySecret) return value;
    return JSON.parse(this.mask(JSON.stringify(value))) as T;
  }
}

/** One job's run: what its steps share. */
export interface JobRun {
  deps: ExecuteDeps;
  job: StackJobDoc;
  options: ExecuteOptions;
  /** Aborts the run: a cancel, a shutdown, the stack lock lost (its reason says which). */
  signal: AbortSignal;
  slot: Slot;
  logger: Logger;
  store: StoreCall;
  sink: LineSink;
  masking: JobMasking;
  ran: RunRecord;
  /** When each step of the run ended. */
  timeline: JobTimeline;
  /** The last lines of each stream, kept on the job. */
  stdout: Tail;
  stderr: Tail;
  /**
   * Per-resource changes: the preview of an approval-gated job lists what it plans; an approved up
   * or destroy what it applies, to compare with what was approved.
   */
  changes?: PlanCollector;
  /** A drift check reports what differs from the cloud, as the engine's refresh steps say it. */
  drift?: DriftCollector;
}

/** A job that fails before Pulumi runs: the reason is said in its lines too. */
export function failedBeforeRun(run: Pick<JobRun, 'sink'>, error: string, reason: EndReason): Outcome {
  run.sink.line('stderr', `error: ${error}`);
  return { status: 'failed', exitCode: null, error, reason };
}
