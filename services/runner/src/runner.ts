import { hostname } from 'node:os';
import {
  CANCEL_CHANNEL,
  type Config,
  HistorySweeper,
  isFinalStatus,
  Keyring,
  jobHeartbeatKey,
  jobStackKey,
  DEFAULT_TENANT,
  type JobStatus,
  type KindRegistry,
  type Logger,
  Metrics,
  type Models,
  redisReady,
  RunningJobs,
  STACK_JOBS_QUEUE,
  StackQueue,
  type StackJobDoc,
} from '@pds/shared';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type AbortReason, type ExecuteDeps, executeJob, JobNotStartedError, type RunEnd } from './execute-job.js';
import { type Isolation, prepareIsolation, sweepLeftovers } from './isolation/prepare.js';
import { resetSlot } from './isolation/slot-reset.js';
import { type Slot, SlotPool } from './isolation/slots.js';
import { killProcessesOf } from './isolation/uid-leases.js';
import { ProgressBoard, StackSizes } from './progress.js';
import { ProgramHostPool } from './pulumi/program-host-pool.js';
import { reconcileLostJobs } from './reconciler.js';
import { TenantGate } from './tenant-gate.js';
import { createWebhookWorker } from './webhooks/worker.js';
import { createDriftWorker } from './drift-schedule.js';
import { failWithoutPreview, holdForApproval, recordPlan, stillAsApproved } from './approval-gate.js';
import { createLifecycleWorker } from './after-end/lifecycle-worker.js';
import { endJob } from '@pds/shared/lifecycle';

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

export interface StackJobData {
  stackFqdn: string;
  /** The job's tenant; absent on jobs queued by versions without tenants (the default one). */
  tenantId?: string;
  /** The stack's key (stackKeyOf: tenant and FQDN); absent on jobs queued by versions without tenants. */
  stackKey?: string;
  /** Absent on jobs queued by older versions. */
  resourceId?: string;
  /** An approval-gated job (its status decides whether it may take the stack). */
  gated?: boolean;
}

/** How long a job whose tenant is at its `maxConcurrentJobs` waits before it asks again. */
const TENANT_WAIT_MS = 1_000;
/** When a job could not be started (its store unreachable too long), it is tried again this much later. */
const NOT_STARTED_RETRY_MS = 10_000;
/** The reconciler asks the store itself every this many beats (5 min at 10 s), for jobs Redis lost. */
const FULL_SCAN_EVERY = 30;
/** How often the clean-up of a slot kept out of use is tried again. */
const SLOT_RETRY_MS = 30_000;

/** A job let through to run: its tenant (counted), its stack's lock and the lock's fence. */
interface Admitted {
  tenant: string;
  lockValue: string;
  fence: number;
}

/**
 * A BullMQ worker that runs stack jobs, RUNNER_CONCURRENCY at a time, one at a time per stack and in
 * creation order per stack. A job whose stack is busy is parked in BullMQ's delayed set and woken
 * (promoted) by the job that frees the stack — no polling; the park also expires when the holder's
 * lock would, as a safety net should the holder die without waking anyone.
 */
export function createRunner(deps: RunnerDeps) {
  const runnerId = `${hostname()}:${process.pid}`;
  const heartbeatMs = deps.heartbeatMs ?? 10_000;
  const keyring = Keyring.fromConfig(deps.config);
  const hosts = new ProgramHostPool();
  const stacks = new StackQueue(deps.connection, Math.max(3 * heartbeatMs, 3_000));
  const runningJobs = new RunningJobs(deps.connection);
  const stackSizes = new StackSizes(deps.connection);
  const tenantGate = new TenantGate(deps.connection, deps.models, 4 * heartbeatMs);
  const progressBoard = new ProgressBoard(deps.connection);
  const queue = new Queue<StackJobData>(STACK_JOBS_QUEUE, { connection: deps.connection, prefix: deps.prefix });
  const webhooks = createWebhookWorker({ ...deps, keyring });
  const drift = createDriftWorker({ ...deps, jobs: queue, stacks });
  const lifecycle = createLifecycleWorker({ ...deps, jobs: queue, stacks });
  // What every path here that ends a job needs (endJob): its after-end reactions go to the lifecycle queue.
  const ending = { ...deps, lifecycle: lifecycle.queue };
  const gate = { ...ending, stacks, jobEvent: webhooks.jobEvent };
  const running = new Map<string, AbortController>();
  const log = deps.logger;
  // Set by start(): one slot per job this process may run at once, each with its uid when isolated.
  let slots: SlotPool | undefined;
  let isolation: Isolation | undefined;
  const metrics = new Metrics();
  // Old history goes in the background; every runner has a sweeper, one sweeps at a time.
  const historySweeper = new HistorySweeper({
    models: deps.models,
    redis: deps.connection,
    logger: log,
    metrics,
    ages: { linesDays: deps.config.HISTORY_LINES_DAYS, jobsDays: deps.config.HISTORY_JOBS_DAYS, auditDays: deps.config.HISTORY_AUDIT_DAYS },
    deletesPerSecond: deps.config.HISTORY_SWEEP_DELETES_PER_SECOND,
  });
  const quarantined = new Set<number>();
  metrics.gauge(
    'runner_slots_quarantined',
    'Runner slots kept out of use because they could not be cleaned after a job',
    () => quarantined.size,
  );
  metrics.gauge('runner_jobs_running', 'Jobs running in this process now', () => running.size);
  metrics.gauge('runner_concurrency', 'Jobs this process runs at most at once', () => deps.config.RUNNER_CONCURRENCY);

  async function promote(jobId: string): Promise<void> {
    const job = await queue.getJob(jobId);
    // Only a parked (delayed) job can be promoted; one that is waiting or active needs nothing.
    await job?.promote().catch(() => undefined);
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

  /** Parks a job whose stack is busy until woken, or until the holder's lock would expire. */
  async function park(job: Job<StackJobData>, token: string | undefined): Promise<never> {
    const ttl = await stacks.lockTtl(job.data.stackKey ?? job.data.stackFqdn);
    await job.moveToDelayed(Date.now() + (ttl > 0 ? ttl + 250 : stacks.ttlMs), token);
    throw new DelayedError();
  }

  /** Parks a job whose tenant runs as many jobs as its policy allows (`maxConcurrentJobs`); it asks again in a second. */
  async function waitForTenant(job: Job<StackJobData>, token: string | undefined): Promise<never> {
    await job.moveToDelayed(Date.now() + TENANT_WAIT_MS, token);
    throw new DelayedError();
  }

  /** Keeps the slot uids this runner's alone across the fleet; a uid another runner took is not used again. */
  function renewUidLease(): void {
    isolation?.lease
      ?.renew()
      .then((lost) => {
        for (const uid of lost) {
          slots?.withhold(uid);
          void isolation?.sandboxes
            ?.get(uid)
            ?.close()
            .catch(() => undefined); // its network and cgroup go too
          log.error({ uid }, 'another runner holds this slot uid now (its lease ran out): the slot is no longer used');
        }
      })
      .catch(() => undefined); // a Redis blip: the lease outlives a few missed renewals
  }

  /**
   * Gives a slot back after its job; a slot that could not be made clean (its uid's processes or
   * files) stays out of use, and its clean-up is tried again every SLOT_RETRY_MS until it succeeds.
   */
  function releaseSlot(slot: Slot): void {
    if (!slot.tainted || !slot.identity) return slots?.release(slot);
    const identity = slot.identity;
    quarantined.add(slot.index);
    log.error({ slot: slot.index, uid: identity.uid }, 'runner slot could not be cleaned after its job: kept out of use until it is');
    const retry = () =>
      resetSlot(deps.config.WORK_DIR, { ...slot, identity }).then(
        () => {
          quarantined.delete(slot.index);
          slots?.release({ index: slot.index, identity });
          log.info({ slot: slot.index, uid: identity.uid }, 'runner slot clean again');
        },
        () => void setTimeout(retry, SLOT_RETRY_MS).unref(),
      );
    setTimeout(retry, SLOT_RETRY_MS).unref();
  }

  /** Takes the stack's lock for the job if it is its turn (joining the line if its entry was lost). */
  async function acquireStack(stackKey: string, jobId: string) {
    let attempt = await stacks.tryAcquire(stackKey, jobId);
    if (!attempt.acquired && attempt.position === undefined) {
      await stacks.enqueue(stackKey, jobId); // not in line (its line entry was lost): join it
      attempt = await stacks.tryAcquire(stackKey, jobId);
    }
    if (!attempt.acquired && !attempt.holder && attempt.head && attempt.head !== jobId) {
      // The stack is free but the head of the line is not taking it: if that job has ended, drop it.
      const head = await deps.models.StackJob.findById(attempt.head, { status: 1 }).lean<{ status: JobStatus }>();
      if (!head || isFinalStatus(head.status)) {
        await stacks.remove(stackKey, attempt.head);
        attempt = await stacks.tryAcquire(stackKey, jobId);
      } else if (head.status === 'queued') {
        await promote(attempt.head);
      }
    }
    return attempt;
  }

  /**
   * What a gated job holding its stack does: `run` (approved, and nothing changed since its preview),
   * `hold` (still awaiting its decision), `ended` (its preview is gone without a plan: failed; or it
   * went stale, or ended meanwhile). A gated job is never run from `queued`.
   */
  async function gateDecision(jobId: string): Promise<'run' | 'hold' | 'ended'> {
    const current = await deps.models.StackJob.findById(jobId).lean<StackJobDoc>();
    if (!current || isFinalStatus(current.status as JobStatus)) return 'ended';
    if (current.status === 'awaiting_approval') return 'hold';
    if (current.status === 'queued') {
      // It has the stack, so its preview (always ahead of it in line) ended without recording a plan.
      await failWithoutPreview(gate, current);
      return 'ended';
    }
    return (await stillAsApproved(gate, current)) ? 'run' : 'ended';
  }

  async function processJob(job: Job<StackJobData>, token?: string): Promise<void> {
    // The stack's identity in the service (tenant and FQDN); jobs of older versions name the FQDN only.
    const stackKey = job.data.stackKey ?? job.data.stackFqdn;
    const admitted = await admit(job, token, stackKey);
    if (admitted) await runAdmitted(job, token, stackKey, admitted);
  }

  /**
   * Whether a job runs now: not if it was cancelled or ran while it waited, awaits approval, waits for
   * its tenant's limit or its stack (parked: DelayedError), or is gated and not approved as it stands.
   * When it runs: its stack's lock (and fence) and its place in its tenant's count, both taken.
   */
  async function admit(job: Job<StackJobData>, token: string | undefined, stackKey: string): Promise<Admitted | undefined> {
    const jobId = job.id as string;
    if ((await stacks.claimOf(jobId)) !== undefined) {
      // Cancelled (or already run) while it waited: out of the line, and wake whoever is next.
      await stacks.remove(stackKey, jobId);
      const next = await stacks.next(stackKey);
      if (next) await promote(next);
      return;
    }
    // An approval-gated job: while it waits for its decision it holds its stack's line without running.
    const gated = job.data.gated
      ? await deps.models.StackJob.findById(jobId, { status: 1, approval: 1, resourceId: 1, tenantId: 1, stackFqdn: 1 }).lean<StackJobDoc>()
      : undefined;
    if (gated?.status === 'awaiting_approval') {
      const lookAgain = await holdForApproval(gate, gated);
      if (lookAgain !== undefined) {
        await job.moveToDelayed(lookAgain, token);
        throw new DelayedError();
      }
      const next = await stacks.next(stackKey);
      if (next) await promote(next);
      return;
    }
    const tenant = job.data.tenantId ?? DEFAULT_TENANT;
    const admitted = await tenantGate.enter(tenant, jobId).catch(async (err: Error) => {
      // The tenant's limit cannot be read (the store is away): the job waits rather than run past it.
      log.warn({ err: err.message, jobId }, 'job could not be started; it will be tried again');
      await job.moveToDelayed(Date.now() + NOT_STARTED_RETRY_MS, token);
      throw new DelayedError();
    });
    if (!admitted) return waitForTenant(job, token);
    let attempt: Awaited<ReturnType<typeof stacks.tryAcquire>>;
    try {
      attempt = await acquireStack(stackKey, jobId);
    } catch (err) {
      await tenantGate.leave(tenant, jobId).catch(() => undefined);
      throw err;
    }
    if (!attempt.acquired) {
      await tenantGate.leave(tenant, jobId); // its place goes to a job that can run now
      return park(job, token);
    }
    // A gated job with the stack: it runs only approved, and only as approved (its status read afresh).
    if (job.data.gated) {
      const decision = await gateDecision(jobId).catch((err: Error) => {
        log.warn({ err: err.message, jobId }, 'an approval-gated job could not be checked; it will be looked at again');
        return 'retry' as const;
      });
      if (decision !== 'run') {
        await tenantGate.leave(tenant, jobId).catch(() => undefined);
        // Waiting for its decision (or a check that failed): first in line again, so the line stays held.
        if (decision === 'hold' || decision === 'retry') await stacks.requeueFirst(stackKey, jobId);
        const next = await stacks.release(stackKey, attempt.lockValue);
        if (next && next !== jobId) await promote(next);
        if (decision === 'ended') return undefined;
        await job.moveToDelayed(Date.now() + NOT_STARTED_RETRY_MS, token);
        throw new DelayedError();
      }
    }
    return { tenant, lockValue: attempt.lockValue, fence: attempt.token };
  }

  /** Runs an admitted job with its stack held: beats, the run, what follows its end, then the stack and its slot let go. */
  async function runAdmitted(job: Job<StackJobData>, token: string | undefined, stackKey: string, admitted: Admitted): Promise<void> {
    const jobId = job.id as string;
    const { tenant, lockValue, fence } = admitted;
    const controller = new AbortController();
    running.set(jobId, controller);
    // The job's heartbeat and the stack lock are renewed together; both expire if this process dies.
    const beat = async () => {
      await deps.connection.set(jobHeartbeatKey(jobId), runnerId, 'PX', 4 * heartbeatMs);
      await tenantGate.renew(tenant, jobId);
    };
    await beat();
    const renewal = setInterval(() => {
      void beat().catch(() => undefined);
      stacks
        .renew(stackKey, lockValue)
        .then((held) => {
          if (!held) controller.abort('lock_lost' satisfies AbortReason);
        })
        .catch(() => undefined); // a Redis blip: the TTL covers a few missed renewals
    }, heartbeatMs);
    try {
      // Where the reconcilers look for it should this process die (after the beat: a fresh entry has one).
      await runningJobs.add(jobId).catch((err: Error) => {
        throw new JobNotStartedError(err);
      });
      const repair = await stacks.takeRepairMark(stackKey);
      const onSpawn = (ms: number) =>
        metrics.observe('runner_job_spawn_latency_seconds', 'From job created to its first Pulumi process started', {}, ms / 1000);
      if (!slots) throw new Error('the runner takes jobs only once started (isolation decided)');
      const slot = slots.acquire();
      if (!slot) throw new JobNotStartedError(new Error('no runner slot is free (one is kept out of use until it is clean)'));
      const end = await executeJob(
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
        controller.signal,
        { fence, repairStack: repair !== undefined, resourceId: job.data.resourceId, slot },
      ).finally(() => releaseSlot(slot));
      if (end) await whileStackHeld(jobId, end);
    } catch (err) {
      if (err instanceof JobNotStartedError) {
        // Nothing ran and the job is still `queued`: back in its stack's line (at the end), tried again later.
        log.warn({ err: err.message, jobId }, 'job could not be started; it will be tried again');
        await stacks.enqueue(stackKey, jobId);
        await job.moveToDelayed(Date.now() + NOT_STARTED_RETRY_MS, token);
        throw new DelayedError();
      }
      // A bug or an outage while ending the job: never leave it `running`.
      log.error({ err, jobId }, 'job could not be ended normally');
      const error = `the runner failed while running this job: ${(err as Error).message}`;
      await endJob(ending, jobId, { status: 'failed', reason: 'internal_error', error }, 'crash').catch((endErr: Error) =>
        log.error({ err: endErr.message, jobId }, 'the job could not be ended either; the reconciler ends it once its heartbeat stops'),
      );
      throw err;
    } finally {
      clearInterval(renewal);
      running.delete(jobId);
      await deps.connection.del(jobHeartbeatKey(jobId)).catch(() => undefined);
      await runningJobs.remove(jobId).catch(() => undefined); // a leftover entry is dropped by a reconciler
      await tenantGate.leave(tenant, jobId).catch(() => undefined); // else it expires after four beats
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

  // Every runner hears every cancel request; the one running the job acts on it.
  deps.subscriber.on('message', (channel: string, jobId: string) => {
    const controller = channel === CANCEL_CHANNEL ? running.get(jobId) : undefined;
    if (!controller) return;
    log.info({ jobId }, 'cancel requested');
    controller.abort('cancelled' satisfies AbortReason);
  });

  // The reconciler for everybody's jobs (safe to run in every runner at once). It reads the running
  // set; the store itself only on the first beat and every FULL_SCAN_EVERY beats after (a scan there).
  let beats = 0;
  const reconcile = setInterval(() => {
    renewUidLease();
    const fullScan = beats++ % FULL_SCAN_EVERY === 0;
    reconcileLostJobs(
      {
        ...ending,
        stacks,
        staleAfterMs: 4 * heartbeatMs,
        promote,
        runsHere: (jobId) => running.has(jobId),
        running: runningJobs,
      },
      new Date(),
      { fullScan },
    ).catch((err: Error) => log.warn({ err: err.message }, 'reconciler failed'));
  }, heartbeatMs);

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
      await deps.subscriber.subscribe(CANCEL_CHANNEL);
      void worker.run();
      webhooks.start();
      lifecycle.start();
      drift.start();
      historySweeper.start(deps.config.HISTORY_SWEEP_INTERVAL_SECONDS * 1000);
    },
    /** Aborts a job running in this process; true if it was here. */
    abort(jobId: string, reason: AbortReason = 'cancelled'): boolean {
      const controller = running.get(jobId);
      controller?.abort(reason);
      return controller !== undefined;
    },
    /** Stops taking jobs, stops the running ones cleanly (recorded as cancelled by shutdown), waits for them. */
    close(): Promise<void> {
      closing ??= (async () => {
        clearInterval(reconcile);
        const closed = worker.close();
        await historySweeper.stop();
        for (const controller of running.values()) controller.abort('shutdown' satisfies AbortReason);
        await closed;
        await webhooks.close().catch((err: Error) => log.warn({ err: err.message }, 'webhook worker close failed'));
        await lifecycle.close().catch((err: Error) => log.warn({ err: err.message }, 'job lifecycle worker close failed'));
        await drift.close().catch((err: Error) => log.warn({ err: err.message }, 'drift worker close failed'));
        await queue.close().catch((err: Error) => log.warn({ err: err.message }, 'queue close failed'));
        await hosts.close().catch((err: Error) => log.warn({ err: err.message }, 'warm program hosts did not stop'));
        const lease = isolation?.lease;
        if (lease) {
          const uids = lease.uids;
          await Promise.all([...(isolation?.sandboxes?.values() ?? [])].map((sandbox) => sandbox.close())).catch((err: Error) =>
            log.warn({ err: err.message, uids }, 'could not close every slot sandbox'),
          );
          await Promise.all(uids.map((uid) => killProcessesOf({ uid, gid: uid }))).catch((err: Error) =>
            log.warn({ err: err.message, uids }, 'could not stop every process of the slot uids'),
          );
          await lease.release();
        }
      })();
      return closing;
    },
  };
}

export type Runner = ReturnType<typeof createRunner>;
