import { jobHeartbeatKey, LEASE_BEATS, type Logger, type StackQueue } from '@pds/shared';
import type { Redis } from 'ioredis';
import type { AbortReason } from '../run/job-run.js';
import type { TenantGate } from '../admission/tenant-gate.js';

/** One job this runner runs: what is renewed for it, and how its run is stopped. */
interface Held {
  tenant: string;
  stackKey: string;
  lockValue: string;
  controller: AbortController;
}

/**
 * Keeps every job this process runs alive, on one timer: each beat renews a job's heartbeat (the
 * Redis key reconcilers look for; it expires after four beats if this process dies), its place in
 * its tenant's count and its stack's lock. A lock found lost (Redis away longer than its TTL)
 * stops the run (`lock_lost`): another runner may hold the stack now.
 */
export class JobLease {
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      redis: Pick<Redis, 'set' | 'del'>;
      stacks: Pick<StackQueue, 'renew'>;
      tenantGate: Pick<TenantGate, 'renew'>;
      runnerId: string;
      heartbeatMs: number;
      logger: Logger;
    },
  ) {}

  /** Jobs held now. */
  get size(): number {
    return this.held.size;
  }

  /**
   * Starts renewing a job: its first beat is written before this returns (a fresh job is never seen
   * without one). A first beat that fails holds nothing: the caller gives the job back.
   */
  async hold(jobId: string, held: Held): Promise<void> {
    this.held.set(jobId, held);
    this.timer ??= setInterval(() => this.renewAll(), this.deps.heartbeatMs).unref();
    try {
      await this.beat(jobId, held);
    } catch (err) {
      await this.release(jobId);
      throw err;
    }
  }

  /** Stops a run held here (cancel, shutdown); false if it is not here. */
  abort(jobId: string, reason: AbortReason): boolean {
    const held = this.held.get(jobId);
    held?.controller.abort(reason);
    return held !== undefined;
  }

  abortAll(reason: AbortReason): void {
    for (const held of this.held.values()) held.controller.abort(reason);
  }

  has(jobId: string): boolean {
    return this.held.has(jobId);
  }

  /** Stops renewing a job and drops its heartbeat (a leftover one expires after four beats). */
  async release(jobId: string): Promise<void> {
    this.held.delete(jobId);
    if (this.held.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    await this.deps.redis
      .del(jobHeartbeatKey(jobId))
      .catch((err: Error) => this.deps.logger.debug({ err: err.message, jobId }, 'heartbeat left to expire'));
  }

  private async beat(jobId: string, held: Held): Promise<void> {
    await this.deps.redis.set(jobHeartbeatKey(jobId), this.deps.runnerId, 'PX', LEASE_BEATS * this.deps.heartbeatMs);
    await this.deps.tenantGate.renew(held.tenant, jobId);
  }

  private renewAll(): void {
    for (const [jobId, held] of this.held) {
      // A Redis blip: the heartbeat, the tenant place and the lock each outlive a few missed renewals.
      this.beat(jobId, held).catch((err: Error) => this.deps.logger.debug({ err: err.message, jobId }, 'heartbeat not renewed this time'));
      this.deps.stacks
        .renew(held.stackKey, held.lockValue)
        .then((kept) => {
          if (!kept) held.controller.abort('lock_lost' satisfies AbortReason);
        })
        .catch((err: Error) => this.deps.logger.debug({ err: err.message, jobId }, 'stack lock not renewed this time'));
    }
  }
}
