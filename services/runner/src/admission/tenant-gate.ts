import { decodePolicy, type Models, tenantRunningKey } from '@pds/shared';
import type { Redis } from 'ioredis';

// Drops expired holds, then lets the job in if it holds a place already or there is room. The key
// has no expiry of its own (one set by an entry would not follow the renewals): its members expire
// by score, and Redis removes the set when its last member leaves.
const ENTER = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0`;

/** How long a tenant's limit is remembered before the store is asked again. */
const POLICY_CACHE_MS = 5_000;

/**
 * A tenant's `maxConcurrentJobs`, across the fleet: each running job holds a place in a Redis sorted
 * set, scored by when the hold expires; the runner renews it with the job's heartbeat, and a place
 * of a runner that died expires by itself. A job that finds no room waits (the runner parks it).
 */
export class TenantGate {
  private readonly limits = new Map<string, { max: number | undefined; until: number }>();

  constructor(
    private readonly redis: Pick<Redis, 'eval' | 'zadd' | 'zrem'>,
    private readonly models: Pick<Models, 'Tenant'>,
    /** How long a hold lasts without renewal (four heartbeats). */
    private readonly holdMs: number,
  ) {}

  /** The tenant's limit (cached for 5 s): undefined when it has none. */
  async limitOf(tenant: string): Promise<number | undefined> {
    const cached = this.limits.get(tenant);
    if (cached && cached.until > Date.now()) return cached.max;
    const doc = await this.models.Tenant.findById(tenant, { policy: 1 }).lean<{ policy?: string }>();
    const max = decodePolicy(doc?.policy).maxConcurrentJobs;
    this.limits.set(tenant, { max, until: Date.now() + POLICY_CACHE_MS });
    return max;
  }

  /** Takes a place for the job if the tenant has room (or no limit); false when it must wait. */
  async enter(tenant: string, jobId: string): Promise<boolean> {
    const max = await this.limitOf(tenant);
    if (max === undefined) return true;
    const now = Date.now();
    const entered = await this.redis.eval(
      ENTER,
      1,
      tenantRunningKey(tenant),
      jobId,
      String(now),
      String(now + this.holdMs),
      String(max),
      String(this.holdMs * 4),
    );
    return entered === 1;
  }

  /** Keeps the job's place while it runs (only if it holds one). */
  async renew(tenant: string, jobId: string): Promise<void> {
    await this.redis.zadd(tenantRunningKey(tenant), 'XX', Date.now() + this.holdMs, jobId);
  }

  async leave(tenant: string, jobId: string): Promise<void> {
    await this.redis.zrem(tenantRunningKey(tenant), jobId);
  }
}
