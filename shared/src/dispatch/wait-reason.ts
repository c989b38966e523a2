import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Models } from '../models/index.js';
import { tenantRunningKey, WAITING_ENTRIES_KEY } from '../names.js';
import { LruCache } from '../lru.js';
import { decodePolicy } from '../policy.js';
import { busySlots, poolSlots } from './runner-pool.js';

/** How long a tenant's limit is remembered for wait reasons (as the dispatcher remembers it). */
const LIMIT_CACHE_MS = 5_000;
const limits = new LruCache<string, { max: number | undefined; until: number }>(10_000);
/** Counts the limits forgotten, so that a read that overlapped a policy change is not kept. */
let forgotten = 0;

/** The tenant's maxConcurrentJobs, read at most every 5 s: a page polling a queued job reads the store once for the job. */
async function tenantLimit(models: Pick<Models, 'Tenant'>, tenant: string): Promise<number | undefined> {
  const known = limits.get(tenant);
  if (known && known.until > Date.now()) return known.max;
  const generation = forgotten;
  const doc = await models.Tenant.findById(tenant, { policy: 1 }).lean<{ policy?: string }>();
  const max = decodePolicy(doc?.policy).maxConcurrentJobs;
  // A policy set while this read was under way may be newer than what it read: not kept then.
  if (generation === forgotten) limits.set(tenant, { max, until: Date.now() + LIMIT_CACHE_MS });
  return max;
}

/** Forgets a tenant's limit at once (its policy changed here; other processes read it anew within 5 s). */
export function forgetTenantLimit(tenant: string): void {
  forgotten++;
  limits.delete(tenant);
}

/** Why a queued job has not started: its stack is busy, its tenant is at its limit, other tenants' turn, every slot taken. */
export type WaitReason = 'stack_busy' | 'tenant_limit' | 'tenant_turn' | 'pool_full';

export interface WaitReasonDeps {
  redis: Pick<Redis, 'hexists' | 'zcount' | 'eval'>;
  queue: Pick<Queue, 'getJobCounts'>;
  models: Pick<Models, 'Tenant'>;
}

/**
 * Why a queued job waits, as the dispatcher would see it now (undefined once the dispatcher has
 * handed it to the runners: it is about to start). `blocked`: another job holds or is ahead in its
 * stack's line.
 */
export async function waitReasonOf(
  deps: WaitReasonDeps,
  job: { _id: string; tenant: string; blocked: boolean },
): Promise<WaitReason | undefined> {
  if (job.blocked) return 'stack_busy';
  if (!(await deps.redis.hexists(WAITING_ENTRIES_KEY, job._id))) return undefined;
  const max = await tenantLimit(deps.models, job.tenant);
  if (max !== undefined && (await deps.redis.zcount(tenantRunningKey(job.tenant), Date.now(), '+inf')) >= max) return 'tenant_limit';
  const [slots, busy] = await Promise.all([poolSlots(deps.redis), busySlots(deps.queue)]);
  return busy >= slots ? 'pool_full' : 'tenant_turn';
}
