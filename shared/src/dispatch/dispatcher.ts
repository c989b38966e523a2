import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Models } from '../models/index.js';
import { DISPATCH_CHANNEL, DISPATCHER_LEADER_KEY, JOB_CLASSES, type JobClass } from '../names.js';
import { decodePolicy } from '../policy.js';
import { DeficitRoundRobin, type Offer } from './fair-share.js';
import { busySlots, RunnerPool } from './runner-pool.js';
import { handOver, type WaitingEntry, WaitingJobs } from './waiting-jobs.js';

/** Renews the lead only while it is ours. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
/** Gives the lead up only if it is ours. */
const RESIGN = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** How long the lead lasts without renewal: a dead leader's successor takes over within this and one tick. */
const LEAD_MS = 5_000;
/** Rounds run on every wake, and at least this often (a wake lost, a lock or a hold that expired). */
const TICK_MS = 1_000;
/** A job taken by a dispatcher that died before putting it on the runner queue is put there after this. */
const UNSETTLED_MS = 5_000;
/** How long a tenant's weight and limit are remembered before the store is asked again. */
const POLICY_CACHE_MS = 5_000;

export interface DispatcherDeps {
  /** Commands (scripts, the lead); the runner queue is on the same Redis. */
  redis: Redis;
  queue: Pick<Queue, 'add' | 'getJobCounts'>;
  models: Pick<Models, 'Tenant'>;
  logger: Logger;
  /** This process, as the lead's holder. */
  id: string;
  /** How long a tenant place taken for a dispatched job lasts before its runner renews it (the runner's four beats). */
  holdMs: number;
}

interface TenantShare {
  weight: number;
  max: number | undefined;
  until: number;
}

/**
 * Puts waiting jobs on the runner queue as the runner pool has free slots, tenant by tenant in
 * weighted turns (DeficitRoundRobin), people's jobs before the service's own checks. Safe to run
 * in every process: one leads (a Redis key it renews), the others wait to take over. The runner
 * queue then holds what the pool can start now (give or take a job the API's fast lane handed over
 * during a round), and a tenant that queued hundreds of jobs makes nobody else wait behind them.
 */
export class Dispatcher {
  private readonly waiting: WaitingJobs;
  private readonly pool: RunnerPool;
  private readonly turns = new Map<JobClass, DeficitRoundRobin>(JOB_CLASSES.map((c) => [c, new DeficitRoundRobin()]));
  private readonly shares = new Map<string, TenantShare>();
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private again = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.waiting = new WaitingJobs(deps.redis);
    this.pool = new RunnerPool(deps.redis);
  }

  /** Whether this process leads now. */
  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), TICK_MS);
    void this.tick();
  }

  /** Something changed (a job waits, a slot or a stack was freed): a round soon, if this process leads. */
  wake(): void {
    if (this.leading) this.schedule();
  }

  /** Stops, and gives the lead up at once so another process takes over on its next tick. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.round;
    if (this.leading) await this.deps.redis.eval(RESIGN, 1, DISPATCHER_LEADER_KEY, this.deps.id).catch(() => undefined);
    this.leading = false;
  }

  private async tick(): Promise<void> {
    try {
      const held = this.leading
        ? (await this.deps.redis.eval(RENEW, 1, DISPATCHER_LEADER_KEY, this.deps.id, String(LEAD_MS))) === 1
        : (await this.deps.redis.set(DISPATCHER_LEADER_KEY, this.deps.id, 'PX', LEAD_MS, 'NX')) === 'OK';
      if (held !== this.leading)
        this.deps.logger.info({ dispatcher: this.deps.id }, held ? 'dispatcher leads' : 'dispatcher lost the lead');
      this.leading = held;
    } catch (err) {
      // Redis away: whoever leads cannot renew either, and takes up again once it is back.
      this.deps.logger.warn({ err: (err as Error).message }, 'dispatcher could not renew its lead');
      return;
    }
    if (this.leading) this.schedule();
  }

  /** Runs a round, or one more after the current one (rounds never overlap). */
  private schedule(): void {
    if (this.round) {
      this.again = true;
      return;
    }
    this.round = this.dispatch()
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'dispatch round failed; the next tick tries again'))
      .finally(() => {
        this.round = undefined;
        if (this.again && this.timer && this.leading) {
          this.again = false;
          this.schedule();
        }
      });
  }

  /** One round: finishes what a dead dispatcher left, then fills the pool's free slots in fair turns. */
  private async dispatch(): Promise<void> {
    // Everything a round reads first, at once (one wait instead of five, on the path of every job).
    const [unsettled, slots, busy, ...waitingTenants] = await Promise.all([
      this.waiting.unsettled(Date.now() - UNSETTLED_MS),
      this.pool.slots(),
      busySlots(this.deps.queue),
      ...JOB_CLASSES.map((jobClass) => this.waiting.tenants(jobClass)),
    ]);
    for (const entry of unsettled) await this.enqueue(entry);
    let free = slots - unsettled.length - busy;
    for (const [index, jobClass] of JOB_CLASSES.entries()) {
      if (free <= 0) return;
      const tenants = waitingTenants[index] ?? [];
      if (tenants.length === 0) continue;
      const turns = this.turns.get(jobClass) as DeficitRoundRobin;
      turns.sync(tenants);
      await this.readShares(tenants);
      free -= await turns.serve(
        free,
        (tenant) => this.shares.get(tenant)?.weight ?? 1,
        (tenant) => this.offer(jobClass, tenant),
      );
    }
  }

  private async offer(jobClass: JobClass, tenant: string): Promise<Offer> {
    const taken = await this.waiting.take(jobClass, tenant, { max: this.shares.get(tenant)?.max, holdMs: this.deps.holdMs });
    if ('job' in taken) {
      await this.enqueue(taken.job);
      return { started: true };
    }
    return { started: false, why: 'empty' in taken ? 'empty' : taken.blocked };
  }

  private async enqueue(entry: WaitingEntry): Promise<void> {
    await handOver(this.deps.queue, this.waiting, entry, (err) =>
      this.deps.logger.warn({ err: err.message, jobId: entry.jobId }, 'dispatched job not settled; put on the queue again later'),
    );
  }

  /** The weights and limits of the tenants not read in the last 5 s. */
  private async readShares(tenants: string[]): Promise<void> {
    const now = Date.now();
    const stale = tenants.filter((tenant) => (this.shares.get(tenant)?.until ?? 0) <= now);
    if (stale.length === 0) return;
    const docs = await this.deps.models.Tenant.find({ _id: { $in: stale } }, { policy: 1 }).lean<{ _id: string; policy?: string }[]>();
    const policies = new Map(docs.map((doc) => [doc._id, decodePolicy(doc.policy)]));
    for (const tenant of stale) {
      const policy = policies.get(tenant) ?? {};
      this.shares.set(tenant, { weight: policy.weight ?? 1, max: policy.maxConcurrentJobs, until: now + POLICY_CACHE_MS });
    }
  }
}

/** Tells the dispatcher (whichever process leads) that a job may start now; lost, it is its next tick (1 s). */
export async function wakeDispatcher(publisher: Pick<Redis, 'publish'>): Promise<void> {
  await publisher.publish(DISPATCH_CHANNEL, '').catch(() => undefined);
}
