import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Models } from '../models/index.js';
import { tenantRunningKey, WAITING_ENTRIES_KEY } from '../names.js';
import { decodePolicy } from '../policy.js';
import { busySlots, poolSlots } from './runner-pool.js';

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
  const tenant = await deps.models.Tenant.findById(job.tenant, { policy: 1 }).lean<{ policy?: string }>();
  const max = decodePolicy(tenant?.policy).maxConcurrentJobs;
  if (max !== undefined && (await deps.redis.zcount(tenantRunningKey(job.tenant), Date.now(), '+inf')) >= max) return 'tenant_limit';
  const [slots, busy] = await Promise.all([poolSlots(deps.redis), busySlots(deps.queue)]);
  return busy >= slots ? 'pool_full' : 'tenant_turn';
}
