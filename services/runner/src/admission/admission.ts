import { DEFAULT_TENANT, isFinalStatus, type JobStatus, type Logger, type Models, type StackJobDoc, type StackQueue } from '@pds/shared';
import { DelayedError, type Job } from 'bullmq';
import { failWithoutPreview, type GateDeps, holdForApproval, stillAsApproved } from './approval-gate.js';
import type { TenantGate } from './tenant-gate.js';

/** What a stack job's queue entry carries. */
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

/** A job let through to run: its tenant (counted), its stack's lock and the lock's fence. */
export interface Admitted {
  tenant: string;
  lockValue: string;
  fence: number;
}

/** How long a job whose tenant is at its `maxConcurrentJobs` waits before it asks again. */
const TENANT_WAIT_MS = 1_000;
/** When a job could not be started (its store unreachable too long), it is tried again this much later. */
export const NOT_STARTED_RETRY_MS = 10_000;

/** Puts a job back in BullMQ's delayed set until `at` (the worker then leaves it: DelayedError). */
export async function retryAt(job: Job<StackJobData>, token: string | undefined, at: number): Promise<never> {
  await job.moveToDelayed(at, token);
  throw new DelayedError();
}

export interface AdmissionDeps {
  models: Pick<Models, 'StackJob'>;
  stacks: StackQueue;
  tenantGate: TenantGate;
  gate: GateDeps;
  /** Wakes a parked job (the next in a stack's line). */
  promote(jobId: string): Promise<void>;
  logger: Logger;
}

/**
 * Whether a job runs now: not if it was cancelled or ran while it waited, awaits approval, waits for
 * its tenant's limit or its stack (parked: DelayedError), or is gated and not approved as it stands.
 * When it runs: its stack's lock (and fence) and its place in its tenant's count, both taken.
 */
export function createAdmission(deps: AdmissionDeps) {
  const { stacks, tenantGate, logger: log } = deps;

  /** Parks a job whose stack is busy until woken, or until the holder's lock would expire. */
  async function park(job: Job<StackJobData>, token: string | undefined, stackKey: string): Promise<never> {
    const ttl = await stacks.lockTtl(stackKey);
    return retryAt(job, token, Date.now() + (ttl > 0 ? ttl + 250 : stacks.ttlMs));
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
        await deps.promote(attempt.head);
      }
    }
    return attempt;
  }

  /** Wakes whoever is next in the stack's line. */
  async function wakeNext(stackKey: string): Promise<void> {
    const next = await stacks.next(stackKey);
    if (next) await deps.promote(next);
  }

  /**
   * A gated job waiting for its decision holds its stack's line without running: parked until it
   * should look again, or (expired meanwhile, ended) out of the line. Undefined when not waiting.
   */
  async function holdWhileAwaiting(job: Job<StackJobData>, token: string | undefined, stackKey: string): Promise<'ended' | undefined> {
    if (!job.data.gated) return undefined;
    const gated = await deps.models.StackJob.findById(job.id, {
      status: 1,
      approval: 1,
      resourceId: 1,
      tenantId: 1,
      stackFqdn: 1,
    }).lean<StackJobDoc>();
    if (gated?.status !== 'awaiting_approval') return undefined;
    const lookAgain = await holdForApproval(deps.gate, gated);
    // The place the dispatcher took for it goes to a job that can run (the dispatcher's hold expires else).
    await tenantGate.leave(gated.tenantId ?? DEFAULT_TENANT, gated._id).catch(() => undefined);
    if (lookAgain !== undefined) return retryAt(job, token, lookAgain);
    await wakeNext(stackKey);
    return 'ended';
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
      await failWithoutPreview(deps.gate, current);
      return 'ended';
    }
    return (await stillAsApproved(deps.gate, current)) ? 'run' : 'ended';
  }

  /** A gated job with the stack: it runs only approved, and only as approved (its status read afresh); else the stack goes back. */
  async function gatedMayRun(job: Job<StackJobData>, token: string | undefined, stackKey: string, admitted: Admitted): Promise<boolean> {
    const jobId = job.id as string;
    const decision = await gateDecision(jobId).catch((err: Error) => {
      log.warn({ err: err.message, jobId }, 'an approval-gated job could not be checked; it will be looked at again');
      return 'retry' as const;
    });
    if (decision === 'run') return true;
    // Its place expires after four beats should the store be away now.
    await tenantGate.leave(admitted.tenant, jobId).catch(() => undefined);
    // Waiting for its decision (or a check that failed): first in line again, so the line stays held.
    if (decision === 'hold' || decision === 'retry') await stacks.requeueFirst(stackKey, jobId);
    const next = await stacks.release(stackKey, admitted.lockValue);
    if (next && next !== jobId) await deps.promote(next);
    if (decision === 'ended') return false;
    return retryAt(job, token, Date.now() + NOT_STARTED_RETRY_MS);
  }

  async function admit(job: Job<StackJobData>, token: string | undefined, stackKey: string): Promise<Admitted | undefined> {
    const jobId = job.id as string;
    const claim = await stacks.claimOf(jobId);
    if (claim !== undefined) {
      // Cancelled (or already run) while it waited: out of the line, and wake whoever is next.
      // A cancelled job's place (the dispatcher took one) goes; a running one's is its runner's.
      if (claim === 'cancelled') await tenantGate.leave(job.data.tenantId ?? DEFAULT_TENANT, jobId).catch(() => undefined);
      await stacks.remove(stackKey, jobId);
      await wakeNext(stackKey);
      return undefined;
    }
    if ((await holdWhileAwaiting(job, token, stackKey)) === 'ended') return undefined;
    const tenant = job.data.tenantId ?? DEFAULT_TENANT;
    const entered = await tenantGate.enter(tenant, jobId).catch(async (err: Error) => {
      // The tenant's limit cannot be read (the store is away): the job waits rather than run past it.
      log.warn({ err: err.message, jobId }, 'job could not be started; it will be tried again');
      return retryAt(job, token, Date.now() + NOT_STARTED_RETRY_MS);
    });
    if (!entered) return retryAt(job, token, Date.now() + TENANT_WAIT_MS);
    let attempt: Awaited<ReturnType<typeof stacks.tryAcquire>>;
    try {
      attempt = await acquireStack(stackKey, jobId);
    } catch (err) {
      await tenantGate.leave(tenant, jobId).catch(() => undefined); // else it expires after four beats
      throw err;
    }
    if (!attempt.acquired) {
      await tenantGate.leave(tenant, jobId); // its place goes to a job that can run now
      return park(job, token, stackKey);
    }
    const admitted = { tenant, lockValue: attempt.lockValue, fence: attempt.token };
    if (job.data.gated && !(await gatedMayRun(job, token, stackKey, admitted))) return undefined;
    return admitted;
  }

  return { admit };
}
