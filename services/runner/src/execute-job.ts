import { join } from 'node:path';
import {
  type Config,
  CredentialUnavailableError,
  type Keyring,
  type EndMessage,
  type JobStatus,
  type KindRegistry,
  lineStore,
  type Logger,
  type Models,
  type Operation,
  type ResourceDoc,
  parseManifest,
  stackInputYaml,
} from '@pds/shared';
import type { Redis } from 'ioredis';
import { type JobCredential, prepareJobCredential } from './job-credential.js';
import { LineSink } from './line-sink.js';
import { compactEvent } from './pulumi/engine-events.js';
import type { JobOptions } from './pulumi/operation-args.js';
import type { ProgramHostPool } from './pulumi/program-host-pool.js';
import { runPulumi } from './pulumi/pulumi-run.js';
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
}

/** Why a run was aborted, as recorded on the job. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lock_lost';

export interface ExecuteOptions {
  /** The fencing token of the stack lock this run holds. */
  fence?: number;
  /** A run on this stack was lost: clear Pulumi's stale lock before starting. */
  repairStack?: boolean;
}

interface Outcome {
  status: JobStatus;
  exitCode: number | null;
  error?: string;
  reason?: string;
  outputs?: Record<string, unknown>;
  summary?: Record<string, number>;
}

/**
 * Runs one stack job to its end state. The caller holds the stack's lock. Returns without doing
 * anything when the job is gone or no longer queued (cancelled while it waited).
 */
export async function executeJob(
  deps: ExecuteDeps,
  jobId: string,
  signal: AbortSignal,
  options: ExecuteOptions = {},
): Promise<JobStatus | undefined> {
  const { models, config } = deps;
  const logger = deps.logger.child({ jobId });
  if (!(await deps.claim(jobId))) {
    logger.info('job was cancelled before it could start; skipping');
    return undefined;
  }
  const claimed = await models.StackJob.findOneAndUpdate(
    { _id: jobId, status: 'queued' },
    {
      $set: { status: 'running', startedAt: new Date(), runnerId: deps.runnerId, fence: options.fence },
    },
    { returnDocument: 'after' },
  ).lean();
  if (!claimed) {
    logger.info('job is no longer queued; skipping');
    return undefined;
  }
  const job = claimed;
  const sink = new LineSink({ jobId, publisher: deps.publisher, store: lineStore(models).writer(jobId), logger });
  let ranVersion: number | undefined; // the resource version this run used
  let spawnedAt: Date | undefined; // when the operation's Pulumi process started
  const stdout = new Tail();
  const stderr = new Tail();
  sink.publish({ type: 'status', jobId, status: 'running', ts: new Date().toISOString() });
  // Until a credential is opened there is nothing to mask.
  let mask: (text: string) => string = (text) => text;
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
    if (value === undefined || credential?.credentialId === undefined) return value; // per event: skip the JSON round trip
    return JSON.parse(mask(JSON.stringify(value))) as T;
  }

  async function run(): Promise<Outcome> {
    const resource = await models.Resource.findById(job.resourceId).lean<ResourceDoc>();
    if (!resource)
      return { status: 'failed', exitCode: null, error: `resource ${job.resourceId} no longer exists`, reason: 'resource_deleted' };
    ranVersion = resource.version; // the manifest as it is now is what runs
    const kind = deps.kinds.get(resource.kind);
    if (!kind)
      return { status: 'failed', exitCode: null, error: `kind ${resource.kind} has no module in MODULES_DIR`, reason: 'unknown_kind' };
    try {
      credential = await prepareJobCredential(deps, kind, resource.labels ?? [], join(config.WORK_DIR, 'secrets', jobId));
    } catch (err) {
      if (!(err instanceof CredentialUnavailableError)) throw err;
      sink.line('stderr', `error: ${err.message}`);
      return { status: 'failed', exitCode: null, error: err.message, reason: 'credential_missing' };
    }
    mask = credential.mask;
    if (credential.credentialId) await models.StackJob.updateOne({ _id: jobId }, { $set: { credentialId: credential.credentialId } });
    const timeoutSeconds = (job.options as { timeoutSeconds?: number })?.timeoutSeconds ?? config.JOB_TIMEOUT_SECONDS;
    const timeout = AbortSignal.timeout(timeoutSeconds * 1000);
    const runSignal = AbortSignal.any([signal, timeout]);
    logger.info({ stack: job.stackFqdn, operation: job.operation }, 'running pulumi');
    const result = await runPulumi({
      pulumiBin: config.PULUMI_BIN,
      pulumiHome: join(config.WORK_DIR, 'pulumi-home'),
      backendUrl: config.PULUMI_BACKEND_URL,
      passphrase: config.PULUMI_CONFIG_PASSPHRASE,
      programDir: kind.dir,
      main: kind.main,
      project: kind.project,
      workspaceDir: join(config.WORK_DIR, 'jobs', jobId),
      stackFqdn: job.stackFqdn,
      operation: job.operation as Operation,
      options: (job.options ?? {}) as JobOptions,
      env: { ...credential.env, STACK_INPUT_YAML: stackInputYaml(parseManifest(resource.manifest), credential.settings) },
      clearStaleLock: options.repairStack === true,
      signal: runSignal,
      graceMs: config.CANCEL_GRACE_SECONDS * 1000,
      onSpawn() {
        if (spawnedAt) return; // the first Pulumi process of the job counts
        spawnedAt = new Date();
        deps.onSpawn?.(spawnedAt.getTime() - job.createdAt.getTime());
      },
      hosts: deps.hosts,
      onLine(stream, raw) {
        const text = mask(raw);
        (stream === 'stdout' ? stdout : stderr).push(text);
        sink.line(stream, text);
        return sink.pressure();
      },
      onEvent(event) {
        const compact = compactEvent(event);
        if (compact) sink.event(maskValue(compact));
      },
    });
    if (result.aborted && signal.reason === 'lock_lost') {
      return {
        status: 'failed',
        exitCode: result.exitCode,
        reason: 'lock_lost',
        error: 'the stack lock was lost (Redis unreachable for longer than its TTL); the run was stopped',
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
    const error = mask(result.errors.join('\n')) || stderr.toString() || `pulumi exited with code ${result.exitCode}`;
    return { status: 'failed', exitCode: result.exitCode, error, outputs, summary: result.summary };
  }

  async function finish(outcome: Outcome): Promise<JobStatus | undefined> {
    let lastSeq = sink.lastSeq;
    try {
      lastSeq = await sink.close();
    } catch (err) {
      outcome = { ...outcome, status: 'failed', error: (err as Error).message, reason: 'lines_not_persisted' };
    }
    const finishedAt = new Date();
    // Conditional on `running`: if the reconciler already declared this run lost, it stays so.
    const written = await models.StackJob.updateOne(
      { _id: jobId, status: 'running' },
      {
        $set: {
          status: outcome.status,
          finishedAt,
          exitCode: outcome.exitCode,
          error: outcome.error,
          reason: outcome.reason,
          outputs: outcome.outputs ?? {},
          summary: outcome.summary ?? {},
          stdoutTail: stdout.toString(),
          stderrTail: stderr.toString(),
          lastSeq,
          ...(spawnedAt ? { spawnedAt } : {}),
          ...(ranVersion !== undefined ? { resourceVersion: ranVersion } : {}),
        },
      },
    );
    if (written.matchedCount === 0) {
      logger.warn({ status: outcome.status }, 'the job was ended elsewhere (runner_lost) while it ran; its result is not recorded');
      return undefined;
    }
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
    return outcome.status;
  }
}
