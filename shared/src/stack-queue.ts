import type { Redis } from 'ioredis';
import { JOB_ORDER_KEY, jobClaimKey, jobDispatchedKey, stackDirtyKey, stackFenceKey, stackLockKey, stackWaitingKey } from './names.js';

/**
 * Takes the stack for a job if the stack is free and the job is first in line (FIFO by creation).
 * Out of the line, its dispatched mark (which held the next in line back) has done its work.
 * KEYS: lock, waiting, fence, dispatched mark. ARGV: jobId, ttlMs.
 * Returns { 1, token } when taken, else { 0, holder or '', head or '', rank or -1 }.
 */
const ACQUIRE = `
local holder = redis.call('get', KEYS[1])
local head = redis.call('zrange', KEYS[2], 0, 0)[1]
if not holder and head == ARGV[1] then
  local token = redis.call('incr', KEYS[3])
  redis.call('set', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
  redis.call('zrem', KEYS[2], ARGV[1])
  redis.call('del', KEYS[4])
  return {1, token}
end
local rank = redis.call('zrank', KEYS[2], ARGV[1])
return {0, holder or '', head or '', rank or -1}`;

/** Extends the lock's TTL only while it still holds our value. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** Frees the lock if it holds our value (or is gone), and names the next job in line. */
const RELEASE = `
local current = redis.call('get', KEYS[1])
if current == ARGV[1] then redis.call('del', KEYS[1]) end
return redis.call('zrange', KEYS[2], 0, 0)[1] or ''`;

/** Frees the lock if a given job holds it (any token): for a job whose runner was lost. */
const RELEASE_JOB = `
local current = redis.call('get', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ':' then redis.call('del', KEYS[1]) end
return redis.call('zrange', KEYS[2], 0, 0)[1] or ''`;

export type AcquireResult =
  { acquired: true; token: number; lockValue: string } | { acquired: false; holder?: string; head?: string; position?: number };

/**
 * The per-stack line and lock, in Redis, shared by every API and runner process: jobs join the
 * stack's line when created and take the stack in creation order, one at a time. The lock has a
 * TTL renewed while the job runs (a dead runner's lock expires) and a fencing token that grows with
 * every holder, so a late runner can never free or renew its successor's lock.
 */
export class StackQueue {
  constructor(
    private readonly redis: Pick<Redis, 'eval' | 'incr' | 'zadd' | 'zrem' | 'zrank' | 'zrange' | 'set' | 'getdel' | 'pttl' | 'get' | 'del'>,
    readonly ttlMs = 30_000,
  ) {}

  /** Puts a job at the end of its stack's line. */
  async enqueue(stackFqdn: string, jobId: string): Promise<void> {
    const order = await this.redis.incr(JOB_ORDER_KEY);
    await this.redis.zadd(stackWaitingKey(stackFqdn), 'NX', order, jobId);
  }

  /** Puts a job back first in its stack's line (a gated job that took the stack only to find it must still wait). */
  async requeueFirst(stackFqdn: string, jobId: string): Promise<void> {
    await this.redis.zadd(stackWaitingKey(stackFqdn), 0, jobId);
  }

  /** Takes a job out of its stack's line (cancelled, or gone), and its dispatched mark with it. */
  async remove(stackFqdn: string, jobId: string): Promise<void> {
    await this.redis.zrem(stackWaitingKey(stackFqdn), jobId);
    await this.redis.del(jobDispatchedKey(jobId));
  }

  async tryAcquire(stackFqdn: string, jobId: string): Promise<AcquireResult> {
    const keys = [stackLockKey(stackFqdn), stackWaitingKey(stackFqdn), stackFenceKey(stackFqdn), jobDispatchedKey(jobId)];
    const result = (await this.redis.eval(ACQUIRE, keys.length, ...keys, jobId, String(this.ttlMs))) as [number, ...unknown[]];
    if (result[0] === 1) {
      const token = Number(result[1]);
      return { acquired: true, token, lockValue: `${jobId}:${token}` };
    }
    const [, holder, head, rank] = result as [0, string, string, number];
    return {
      acquired: false,
      ...(holder ? { holder: holder.slice(0, holder.lastIndexOf(':')) } : {}),
      ...(head ? { head } : {}),
      ...(rank >= 0 ? { position: rank } : {}),
    };
  }

  /** True while the lock still holds our value (its TTL is then extended). */
  async renew(stackFqdn: string, lockValue: string): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, stackLockKey(stackFqdn), lockValue, String(this.ttlMs))) === 1;
  }

  /** The job first in the stack's line, if any. */
  async next(stackFqdn: string): Promise<string | undefined> {
    return (await this.redis.zrange(stackWaitingKey(stackFqdn), 0, 0))[0];
  }

  /** Frees our lock; returns the next job in line, if any. */
  async release(stackFqdn: string, lockValue: string): Promise<string | undefined> {
    const next = (await this.redis.eval(RELEASE, 2, stackLockKey(stackFqdn), stackWaitingKey(stackFqdn), lockValue)) as string;
    return next || undefined;
  }

  /** Frees the lock a lost job held and marks the stack for repair; returns the next job in line. */
  async releaseLost(stackFqdn: string, jobId: string): Promise<string | undefined> {
    await this.markForRepair(stackFqdn, jobId);
    const next = (await this.redis.eval(RELEASE_JOB, 2, stackLockKey(stackFqdn), stackWaitingKey(stackFqdn), jobId)) as string;
    return next || undefined;
  }

  /** A run of `jobId` may have left Pulumi's own lock on the stack: the next run clears it first. */
  async markForRepair(stackFqdn: string, jobId: string): Promise<void> {
    await this.redis.set(stackDirtyKey(stackFqdn), jobId);
  }

  /** Whether a lost run left the stack to repair (clears the mark: the caller repairs it). */
  async takeRepairMark(stackFqdn: string): Promise<string | undefined> {
    return (await this.redis.getdel(stackDirtyKey(stackFqdn))) ?? undefined;
  }

  /**
   * Moves a job out of `queued` for `as` (`running` or `cancelled`): true for exactly one caller.
   * The job document is then updated by the winner alone — a MongoDB wire server without atomic
   * find-and-modify (FerretDB on SQLite) would otherwise let a cancel and a start both win.
   */
  async claim(jobId: string, as: 'running' | 'cancelled'): Promise<boolean> {
    return (await this.redis.set(jobClaimKey(jobId), as, 'PX', 7 * 24 * 3600 * 1000, 'NX')) === 'OK';
  }

  /** Gives a claim back (the job could not be started after all: it stays `queued`, to run later). */
  async unclaim(jobId: string): Promise<void> {
    await this.redis.del(jobClaimKey(jobId));
  }

  /** Who took the job out of `queued`, if anyone did. */
  async claimOf(jobId: string): Promise<'running' | 'cancelled' | undefined> {
    return ((await this.redis.get(jobClaimKey(jobId))) as 'running' | 'cancelled' | null) ?? undefined;
  }

  /**
   * Where a waiting job stands: its place in the stack's line (0 = next) and the job blocking it —
   * the one holding the stack or, in the moment between two holders, the one first in line.
   */
  async describe(stackFqdn: string, jobId: string): Promise<{ position?: number; holder?: string }> {
    const [rank, holder, [head]] = await Promise.all([
      this.redis.zrank(stackWaitingKey(stackFqdn), jobId),
      this.redis.get(stackLockKey(stackFqdn)),
      this.redis.zrange(stackWaitingKey(stackFqdn), 0, 0),
    ]);
    const blocker = holder ? holder.slice(0, holder.lastIndexOf(':')) : head !== jobId ? head : undefined;
    return {
      ...(rank !== null ? { position: rank } : {}),
      ...(blocker ? { holder: blocker } : {}),
    };
  }

  /** Milliseconds until the current lock expires (-2 when there is none). */
  async lockTtl(stackFqdn: string): Promise<number> {
    return this.redis.pttl(stackLockKey(stackFqdn));
  }
}
