import { hostname } from 'node:os';
import {
  CANCEL_CHANNEL,
  type Config,
  DISPATCH_CHANNEL,
  Dispatcher,
  HistorySweeper,
  Keyring,
  jobStackKey,
  type KindRegistry,
  LEASE_BEATS,
  type Logger,
  Metrics,
  type Models,
  redisReady,
  RunnerPool,
  RunningJobs,
  STACK_JOBS_QUEUE,
  StackQueue,
  WaitingJobs,
  JobListIndex,
  wakeDispatcher,
} from '@pds/shared';
import { endJob } from '@pds/shared/lifecycle';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Admitted, createAdmission, NOT_STARTED_RETRY_MS, retryAt, type StackJobData } from './admission/admission.js';
import { createLifecycleWorker } from './after-end/lifecycle-worker.js';
import { recordPlan } from './admission/approval-gate.js';
import { JobLease } from './background/job-lease.js';
import { SlotQuarantine } from './background/slot-quarantine.js';
import { createDriftWorker } from './background/drift-schedule.js';
import { type AbortReason, type ExecuteDeps, executeJob, JobNotStartedError, type RunEnd } from './run/execute-job.js';
import { type Isolation, prepareIsolation, releaseIsolation, renewUidLease, sweepLeftovers } from './slots/prepare.js';
import { SlotPool } from './slots/slots.js';
import { ProgressBoard, StackSizes } from './run/progress.js';
import { ProgramHostPool } from './pulumi/program-host-pool.js';
import { reconcileLostJobs } from './background/reconciler.js';
import { TenantGate } from './admission/tenant-gate.js';
import { createWebhookWorker } from './background/webhooks/worker.js';

export interface RunnerDeps {
  config: Config;
  models: Models;
  kinds: KindRegistry;
  /** A `worker`-role connection (maxRetriesPerRequest: null) for BullMQ and the stack locks. */
  connection: Redis;
  /** A connection for publishing lines. */
  publisher: Redis;
  /** A connection of its own for hearing cancel requests (CANCEL_CHANNEL). */
  subscriber: Redis;
  logger: Logger;
  /** BullMQ key prefix (tests use their own). */
  prefix?: string;
  /** Heartbeat period; a job is lost after 4 missed beats (tests shorten it). */
  heartbeatMs?: number;
  /** Waits between runs when Pulumi finds the stack locked from outside (tests shorten them). */
  lockedRetryWaitsMs?: readonly number[];
  /** Told each step of a job's run once its end is published (the runner bench's step table). */
  onTimeline?: ExecuteDeps['onTimeline'];
}

export type { StackJobData } from './admission/admission.js';

/** The reconciler looks for lost jobs this often (a lost runner is found within four beats and this). */
const RECONCILE_EVERY_MS = 1_000;
/** It asks the store itself this often, for jobs Redis lost (a scan there). */
const FULL_SCAN_EVERY_MS = 5 * 60_000;

/**
 * A BullMQ worker that runs stack jobs, RUNNER_CONCURRENCY at a time, one at a time per stack and in
 * creation order per stack. A job whose stack is busy is parked in BullMQ's delayed set and woken
 * (promoted) by the job that frees the stack — no polling; the park also expires when the holder's
 * lock would, as a safety net should the holder die without waking anyone. The composition root:
 * admission (admission/), the run (execute-job.ts), what must happen before the stack is let go,
 * and the background units (job lease, slot quarantine, reconciler, lifecycle, webhook and drift workers).
 */
export function createRunner(deps: RunnerDeps) {
  const runnerId = `${hostname()}:${process.pid}`;
  const heartbeatMs = deps.heartbeatMs ?? 3_000;
  const log = deps.logger;
  const keyring = Keyring.fromConfig(deps.config);
  const hosts = new ProgramHostPool();
  // The stack lock lasts four beats, as the heartbeat: a runner whose loop was held up for a beat and
  // more (5 s at the default 3 s beat) renews both in time.
  const stacks = new StackQueue(deps.connection, Math.max(LEASE_BEATS * heartbeatMs, 3_000));
  const runningJobs = new RunningJobs(deps.connection);
  const stackSizes = new StackSizes(deps.connection);
  const tenantGate = new TenantGate(deps.connection, deps.models, LEASE_BEATS * heartbeatMs);
  const progressBoard = new ProgressBoard(deps.connection);
  const queue = new Queue<StackJobData>(STACK_JOBS_QUEUE, { connection: deps.connection, prefix: deps.prefix });
  const webhooks = createWebhookWorker({ ...deps, keyring });
  const waiting = new WaitingJobs(deps.connection);
  const pool = new RunnerPool(deps.connection);
  // Every runner runs a dispatcher; one leads and fills the pool's free slots in fair turns.
  const dispatcher = new Dispatcher({
    redis: deps.connection,
    queue,
    models: deps.models,
    logger: log,
    id: runnerId,
    holdMs: LEASE_BEATS * heartbeatMs,
  });
  const jobList = new JobListIndex(deps.connection);
  const drift = createDriftWorker({ ...deps, waiting, stacks, jobList });
  const lifecycle = createLifecycleWorker({ ...deps, waiting, stacks, jobList });
  // What every path here that ends a job needs (endJob): its after-end reactions go to the lifecycle queue.
  const ending = { ...deps, lifecycle: lifecycle.queue };
  const gate = { ...ending, stacks, jobEvent: webhooks.jobEvent };
  const lease = new JobLease({ redis: deps.connection, stacks, tenantGate, runnerId, heartbeatMs, logger: log });
  const admission = createAdmission({ models: deps.models, stacks, tenantGate, gate, promote, logger: log });
  // Set by start(): one slot per job this process may run at once, each with its uid when isolated.
  let slots: SlotPool | undefined;
  let isolation: Isolation | undefined;
  const quarantine = new SlotQuarantine(deps.config.WORK_DIR, log, (slot) => slots?.release(slot));
  const metrics = runnerMetrics(deps.config, lease, quarantine);
  // Old history goes in the background; every runner has a sweeper, one sweeps at a time.
  const historySweeper = new HistorySweeper({
    models: deps.models,
    redis: deps.connection,
    jobList,
    logger: log,
    metrics,
    ages: { linesDays: deps.config.HISTORY_LINES_DAYS, jobsDays: deps.config.HISTORY_JOBS_DAYS, auditDays: deps.config.HISTORY_AUDIT_DAYS },
    deletesPerSecond: deps.config.HISTORY_SWEEP_DELETES_PER_SECOND,
  });

  async function promote(jobId: string): Promise<void> {
    const job = await queue.getJob(jobId);
    // Only a parked (delayed) job can be promoted; one that is waiting or active needs nothing, and
    // one the dispatcher has not handed out yet is its to start.
    await job?.promote().catch(() => undefined);
    await wakeDispatcher(deps.publisher);
  }

  /**
   * What follows a run that ended and must happen while its stack is still held: a gated job's plan
   * (the gated job, next in line, awaits approval before anyone else takes the stack) and the repair
   * mark of a run that may have left Pulumi's lock. The rest follows from the lifecycle queue (endJob).
   */
  async function whileStackHeld(jobId: string, end: RunEnd): Promise<void> {
    metrics.inc('runner_jobs_finished_total', 'Jobs this runner ran to an end, by status', { status: end.status });
    await recordPlan(gate, end).catch((err: Error) => log.error({ err, jobId }, 'the plan of a gated job could not be recorded'));
    if (end.stackNeedsRepair) await stacks.markForRepair(jobStackKey(end.job), jobId);
  }

  async function processJob(job: Job<StackJobData>, token?: string): Promise<void> {
    // The stack's identity in the service (tenant and FQDN); jobs of older versions name the FQDN only.
    const stackKey = job.data.stackKey ?? job.data.stackFqdn;
    try {
      const admitted = await admission.admit(job, token, stackKey);
      if (admitted) await runAdmitted(job, token, stackKey, admitted);
    } catch (err) {
      // Parked (moved out of the active jobs already): its slot is free now.
      if (err instanceof DelayedError) await wakeDispatcher(deps.publisher);
      throw err;
    }
  }

  /** Runs one admitted job in a slot of this process (its stack held); its end is recorded by executeJob. */
  async function runInSlot(job: Job<StackJobData>, fence: number, signal: AbortSignal): Promise<RunEnd | undefined> {
    const jobId = job.id as string;
    const repair = await stacks.takeRepairMark(job.data.stackKey ?? job.data.stackFqdn);
    const onSpawn = (ms: number) =>
      metrics.observe('runner_job_spawn_latency_seconds', 'From job created to its first Pulumi process started', {}, ms / 1000);
    if (!slots) throw new Error('the runner takes jobs only once started (isolation decided)');
    const slot = slots.acquire();
    if (!slot) throw new JobNotStartedError(new Error('no runner slot is free (one is kept out of use until it is clean)'));
    return executeJob(
      {
        ...ending,
        keyring,
        hosts,
        runnerId,
        onSpawn,
        stackSizes,
        progressBoard,
        claim: (id) => stacks.claim(id, 'running'),
        unclaim: (id) => stacks.unclaim(id),
      },
      jobId,
      signal,
      { fence, repairStack: repair !== undefined, resourceId: job.data.resourceId, slot },
    ).finally(() => quarantine.release(slot));
  }

  /** Runs an admitted job with its stack held: its lease, the run, what follows its end, then the stack let go. */
  async function runAdmitted(job: Job<StackJobData>, token: string | undefined, stackKey: string, admitted: Admitted): Promise<void> {
    const jobId = job.id as string;
    const { tenant, lockValue, fence } = admitted;
    const controller = new AbortController();
    try {
      // Its lease first: a job whose first beat cannot be written is given back, nothing held.
      await lease.hold(jobId, { tenant, stackKey, lockValue, controller }).catch((err: Error) => {
        throw new JobNotStartedError(err);
      });
      // Where the reconcilers look for it should this process die (after the beat: a fresh entry has one).
      await runningJobs.add(jobId).catch((err: Error) => {
        throw new JobNotStartedError(err);
      });
      const end = await runInSlot(job, fence, controller.signal);
      if (end) await whileStackHeld(jobId, end);
    } catch (err) {
      if (err instanceof JobNotStartedError) {
        // Nothing ran and the job is still `queued`: back in its stack's line (at the end), tried again later.
        log.warn({ err: err.message, jobId }, 'job could not be started; it will be tried again');
        await stacks.enqueue(stackKey, jobId);
        return retryAt(job, token, Date.now() + NOT_STARTED_RETRY_MS);
      }
      // A bug or an outage while ending the job: never leave it `running`.
      log.error({ err, jobId }, 'job could not be ended normally');
      const error = `the runner failed while running this job: ${(err as Error).message}`;
      await endJob(ending, jobId, { status: 'failed', reason: 'internal_error', error }, 'crash').catch((endErr: Error) =>
        log.error({ err: endErr.message, jobId }, 'the job could not be ended either; the reconciler ends it once its heartbeat stops'),
      );
      throw err;
    } finally {
      await lease.release(jobId);
      // A leftover entry is dropped by a reconciler; a leftover tenant place expires after four beats.
      await runningJobs
        .remove(jobId)
        .catch((err: Error) => log.debug({ err: err.message, jobId }, 'running-set entry left to the reconciler'));
      await tenantGate.leave(tenant, jobId).catch((err: Error) => log.debug({ err: err.message, jobId }, 'tenant place left to expire'));
      const next = await stacks.release(stackKey, lockValue);
      // Not itself: a job given back (not started) waits out its delay.
      if (next && next !== jobId) await promote(next);
    }
  }

  const worker = new Worker<StackJobData>(STACK_JOBS_QUEUE, processJob, {
    connection: deps.connection,
    concurrency: deps.config.RUNNER_CONCURRENCY,
    prefix: deps.prefix,
    autorun: false,
  });
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  // The queue counts a job active until it is marked done: only then is its slot free to the dispatcher.
  worker.on('completed', () => void wakeDispatcher(deps.publisher));
  worker.on('failed', () => void wakeDispatcher(deps.publisher));

  // Every runner hears every cancel request; the one running the job acts on it.
  deps.subscriber.on('message', (channel: string, jobId: string) => {
    if (channel === CANCEL_CHANNEL && lease.abort(jobId, 'cancelled')) log.info({ jobId }, 'cancel requested');
    if (channel === DISPATCH_CHANNEL) dispatcher.wake();
  });
  /** This runner's slots in the pool, for three beats (renewed on each). */
  const register = () =>
    pool
      .register(runnerId, deps.config.RUNNER_CONCURRENCY, 3 * heartbeatMs)
      .catch((err: Error) => log.warn({ err: err.message }, 'could not renew this runner in the pool'));

  // On each beat: this runner's slot uids and its place in the pool.
  const beat = setInterval(() => {
    renewUidLease(isolation, slots, log);
    void register();
  }, heartbeatMs);
  // The reconciler for everybody's jobs (safe to run in every runner at once), every second: it reads
  // the running set; the store itself only on its first round and every FULL_SCAN_EVERY_MS after.
  let lastFullScan = 0;
  const reconcile = setInterval(
    () => {
      const fullScan = Date.now() - lastFullScan >= FULL_SCAN_EVERY_MS;
      // The first full scan lists in the job list's index every job since it was built; later ones, the last two periods'.
      const indexWindowMs = lastFullScan === 0 ? undefined : 2 * FULL_SCAN_EVERY_MS;
      if (fullScan) lastFullScan = Date.now();
      reconcileLostJobs(
        {
          ...ending,
          stacks,
          staleAfterMs: LEASE_BEATS * heartbeatMs,
          promote,
          runsHere: (jobId) => lease.has(jobId),
          running: runningJobs,
          jobList,
        },
        new Date(),
        { fullScan, indexWindowMs },
      ).catch((err: Error) => log.warn({ err: err.message }, 'reconciler failed'));
    },
    Math.min(RECONCILE_EVERY_MS, heartbeatMs),
  );

  let closing: Promise<void> | undefined;
  return {
    worker,
    runnerId,
    metrics,
    /** How jobs are isolated (`sandbox`, `uid`, or `none`), once started. */
    get isolation() {
      return isolation?.level;
    },
    /** Starts taking jobs once the cancel channel is subscribed (so no request is missed). */
    async start(): Promise<void> {
      isolation = await prepareIsolation(deps.config, log, { redis: deps.connection, owner: runnerId });
      slots = new SlotPool(deps.config.RUNNER_CONCURRENCY, isolation.lease?.uids, isolation.sandboxes);
      await sweepLeftovers(deps.config.WORK_DIR, deps.models, log).catch((err: Error) =>
        log.warn({ err: err.message }, 'could not sweep leftover job folders'),
      );
      await redisReady(deps.subscriber);
      await deps.subscriber.subscribe(CANCEL_CHANNEL, DISPATCH_CHANNEL);
      void worker.run();
      await register();
      dispatcher.start();
      webhooks.start();
      lifecycle.start();
      drift.start();
      historySweeper.start(deps.config.HISTORY_SWEEP_INTERVAL_SECONDS * 1000);
    },
    /** Aborts a job running in this process; true if it was here. */
    abort(jobId: string, reason: AbortReason = 'cancelled'): boolean {
      return lease.abort(jobId, reason);
    },
    /** Stops taking jobs, stops the running ones cleanly (recorded as cancelled by shutdown), waits for them. */
    close(): Promise<void> {
      closing ??= (async () => {
        clearInterval(reconcile);
        clearInterval(beat);
        // Out of the pool first: the dispatcher hands this runner nothing more.
        await pool.leave(runnerId).catch((err: Error) => log.warn({ err: err.message }, 'could not leave the pool'));
        await dispatcher.close();
        const closed = worker.close();
        await historySweeper.stop();
        lease.abortAll('shutdown');
        await closed;
        await webhooks.close().catch((err: Error) => log.warn({ err: err.message }, 'webhook worker close failed'));
        await lifecycle.close().catch((err: Error) => log.warn({ err: err.message }, 'job lifecycle worker close failed'));
        await drift.close().catch((err: Error) => log.warn({ err: err.message }, 'drift worker close failed'));
        await queue.close().catch((err: Error) => log.warn({ err: err.message }, 'queue close failed'));
        await hosts.close().catch((err: Error) => log.warn({ err: err.message }, 'warm program hosts did not stop'));
        await releaseIsolation(isolation, log);
      })();
      return closing;
    },
  };
}

export type Runner = ReturnType<typeof createRunner>;

/** The runner's own gauges (the history sweeper and the run add theirs). */
function runnerMetrics(config: Config, lease: JobLease, quarantine: SlotQuarantine): Metrics {
  const metrics = new Metrics();
  metrics.gauge(
    'runner_slots_quarantined',
    'Runner slots kept out of use because they could not be cleaned after a job',
    () => quarantine.size,
  );
  metrics.gauge('runner_jobs_running', 'Jobs running in this process now', () => lease.size);
  metrics.gauge('runner_concurrency', 'Jobs this process runs at most at once', () => config.RUNNER_CONCURRENCY);
  return metrics;
}
