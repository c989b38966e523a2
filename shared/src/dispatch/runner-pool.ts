import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { DISPATCH_CHANNEL, RUNNER_SLOTS_KEY, RUNNERS_KEY } from '../names.js';

/** Drops runners whose registration expired, then sums the slots of the rest. KEYS: runners, slots. ARGV: now. */
const SLOTS = `
local gone = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(gone) do redis.call('hdel', KEYS[2], id) end
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
local total = 0
for _, id in ipairs(redis.call('zrange', KEYS[1], 0, -1)) do total = total + tonumber(redis.call('hget', KEYS[2], id) or '0') end
return total`;

/**
 * The runner pool's size, as the runners say it: each registers its slots with an expiry it renews
 * on its beat, so a runner that dies leaves the pool by itself. What the dispatcher fills.
 */
export class RunnerPool {
  constructor(private readonly redis: Pick<Redis, 'eval' | 'zadd' | 'hset' | 'zrem' | 'hdel' | 'publish'>) {}

  /** Says the runner is alive with `slots` slots, for `ttlMs` (a new runner wakes the dispatcher). */
  async register(runnerId: string, slots: number, ttlMs: number): Promise<void> {
    await this.redis.hset(RUNNER_SLOTS_KEY, runnerId, String(slots));
    const added = await this.redis.zadd(RUNNERS_KEY, Date.now() + ttlMs, runnerId);
    if (Number(added) > 0) await this.redis.publish(DISPATCH_CHANNEL, '');
  }

  /** The runner leaves the pool (it stops). */
  async leave(runnerId: string): Promise<void> {
    await this.redis.zrem(RUNNERS_KEY, runnerId);
    await this.redis.hdel(RUNNER_SLOTS_KEY, runnerId);
  }

  /** The slots of the runners alive. */
  slots(now = Date.now()): Promise<number> {
    return poolSlots(this.redis, now);
  }
}

/** The runner queue's jobs that hold or are about to take a slot: active, waiting, prioritized. */
export async function busySlots(queue: Pick<Queue, 'getJobCounts'>): Promise<number> {
  const counts = await queue.getJobCounts('active', 'wait', 'prioritized');
  return (counts.active ?? 0) + (counts.wait ?? 0) + (counts.prioritized ?? 0);
}

/** The slots of the runners alive (what the dispatcher fills). */
export async function poolSlots(redis: Pick<Redis, 'eval'>, now = Date.now()): Promise<number> {
  return Number(await redis.eval(SLOTS, 2, RUNNERS_KEY, RUNNER_SLOTS_KEY, String(now)));
}
