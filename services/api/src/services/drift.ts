import {
  applyDriftSchedule,
  cronIntervalSeconds,
  type DriftSchedule,
  errors,
  FINAL_STATUSES,
  identityOf,
  type Models,
  operationRole,
  type Principal,
  type ResourceDoc,
  roleAllows,
  type StackJobDoc,
  tenantFilter,
  tenantOf,
  type TenantViewer,
} from '@pds/shared';
import type { Queue } from 'bullmq';
import { withStoreLock } from './store-lock.js';
import type { TenantService } from './tenants.js';

export interface DriftServiceDeps {
  models: Pick<Models, 'Resource' | 'StackJob' | 'Tenant' | 'StoreLock'>;
  tenants: Pick<TenantService, 'policyOf'>;
  driftQueue: Pick<Queue, 'upsertJobScheduler' | 'removeJobScheduler' | 'getJobScheduler'>;
  /** DRIFT_MIN_INTERVAL_SECONDS. */
  minIntervalSeconds: number;
  /** DRIFT_MAX_SCHEDULES_PER_TENANT: unless a tenant's policy says `maxDriftSchedules`. */
  maxSchedulesPerTenant: number;
}

export interface DriftScheduleInput {
  cron: string;
  autoRemediate?: boolean;
  ignore?: { urn: string; paths?: string[] }[];
  paused?: boolean;
}

/** Drift schedules of resources: a cron that fires `drift-check` jobs (BullMQ job schedulers), and what the last check found. */
export function driftService({ models, tenants, driftQueue, minIntervalSeconds, maxSchedulesPerTenant }: DriftServiceDeps) {
  async function find(id: string, viewer: TenantViewer): Promise<ResourceDoc> {
    const doc = await models.Resource.findOne({ _id: id, ...tenantFilter(viewer) }).lean<ResourceDoc>();
    if (!doc) throw errors.notFound(`resource ${id} not found`);
    return doc;
  }

  /** The caller may run what the schedule will run in its name: checks, and ups when it remediates. */
  async function assertMayRun(resource: ResourceDoc, input: DriftScheduleInput, caller: Principal) {
    if (caller.role === 'platform') return;
    const policy = await tenants.policyOf(tenantOf(resource));
    for (const operation of input.autoRemediate ? (['drift-check', 'up'] as const) : (['drift-check'] as const)) {
      const role = operationRole(policy, operation);
      if (!roleAllows(caller.role, role))
        throw errors.forbidden(`a drift schedule that runs ${operation} jobs needs the ${role} role in tenant ${tenantOf(resource)}`);
    }
  }

  /**
   * Stores a resource's schedule, under a lock on the tenant's schedules: a new one counts against
   * their number, replacing one does not. Whether it is new is read under the lock too (a DELETE
   * between the request's read and its write would otherwise let a replacement pass as one).
   */
  async function store(resource: ResourceDoc, schedule: DriftSchedule): Promise<ResourceDoc | null> {
    const tenantId = tenantOf(resource);
    const max = (await tenants.policyOf(tenantId)).maxDriftSchedules ?? maxSchedulesPerTenant;
    return withStoreLock(models, `drift-schedules:${tenantId}`, async () => {
      const save = () =>
        models.Resource.findOneAndUpdate(
          { _id: resource._id },
          { $set: { driftSchedule: JSON.stringify(schedule) } },
          { returnDocument: 'after' },
        ).lean<ResourceDoc>();
      if (await models.Resource.exists({ _id: resource._id, driftSchedule: { $exists: true } })) return save();
      const count = await models.Resource.countDocuments({ tenantId, driftSchedule: { $exists: true } });
      if (count >= max)
        throw errors.policy(
          `tenant ${tenantId} may have at most ${max} drift schedules and has ${count} (policy: maxDriftSchedules, default DRIFT_MAX_SCHEDULES_PER_TENANT)`,
        );
      return save();
    });
  }

  function parse(doc: ResourceDoc): DriftSchedule | undefined {
    return doc.driftSchedule ? (JSON.parse(doc.driftSchedule) as DriftSchedule) : undefined;
  }

  async function view(doc: ResourceDoc) {
    const schedule = parse(doc);
    if (!schedule) throw errors.notFound(`resource ${doc._id} has no drift schedule`);
    // Only its next run is read from Redis: with Redis away the schedule is shown without it.
    const scheduler = await driftQueue.getJobScheduler(doc._id).catch(() => undefined);
    const last = await models.StackJob.findOne({
      resourceId: doc._id,
      operation: 'drift-check',
      status: { $in: [...FINAL_STATUSES] },
    })
      .sort({ createdAt: -1 })
      .lean<StackJobDoc>();
    const drift = last?.drift ?? undefined;
    return {
      resourceId: doc._id,
      ...schedule,
      ...(scheduler?.next ? { nextRunAt: new Date(scheduler.next).toISOString() } : {}),
      ...(last
        ? {
            lastCheck: {
              jobId: last._id,
              result: drift?.result ?? 'unknown',
              finishedAt: (last.finishedAt ?? last.updatedAt).toISOString(),
            },
          }
        : {}),
    };
  }

  return {
    async get(id: string, viewer: TenantViewer) {
      return view(await find(id, viewer));
    },

    /** Sets (or replaces) a resource's schedule; 400 naming `cron` when it does not parse or runs more often than allowed. */
    async put(id: string, input: DriftScheduleInput, caller: Principal) {
      const resource = await find(id, caller);
      let interval: number;
      try {
        interval = cronIntervalSeconds(input.cron);
      } catch (err) {
        throw errors.invalidRequest(`cron: ${(err as Error).message}`);
      }
      if (interval < minIntervalSeconds)
        throw errors.invalidRequest(
          `cron: runs every ${interval} s; drift checks run at most every ${minIntervalSeconds} s (DRIFT_MIN_INTERVAL_SECONDS)`,
        );
      for (const [i, rule] of (input.ignore ?? []).entries()) {
        const [, project, stack] = resource.stackFqdn.split('/');
        if (!rule.urn.startsWith(`urn:pulumi:${stack}::${project}::`))
          throw errors.invalidRequest(`ignore[${i}].urn: ${rule.urn} is not a resource of this stack`);
      }
      await assertMayRun(resource, input, caller);
      // Its remediations act for the setter (self-approval is judged by that): who that is must be known.
      if (input.autoRemediate && caller.identityUnknown)
        throw errors.forbidden(
          `token "${caller.name}" was issued before tokens recorded whom they act for; a schedule that remediates acts for whoever sets it, so issue a new token to set one`,
        );
      const schedule: DriftSchedule = {
        cron: input.cron,
        autoRemediate: input.autoRemediate ?? false,
        ignore: input.ignore ?? [],
        paused: input.paused ?? false,
        updatedBy: caller.name,
        updatedByIdentity: identityOf(caller),
        updatedAt: new Date().toISOString(),
      };
      const updated = await store(resource, schedule);
      if (!updated) throw errors.notFound(`resource ${id} not found`);
      try {
        await applyDriftSchedule(driftQueue, resource._id, schedule);
      } catch (err) {
        throw errors.unavailable(
          `the schedule is saved but could not be put into effect (Redis unavailable); PUT it again: ${(err as Error).message}`,
        );
      }
      return view(updated);
    },

    async remove(id: string, caller: Principal) {
      const resource = await find(id, caller);
      if (!resource.driftSchedule) throw errors.notFound(`resource ${id} has no drift schedule`);
      try {
        await applyDriftSchedule(driftQueue, resource._id, undefined);
      } catch (err) {
        throw errors.unavailable(`the schedule could not be stopped (Redis unavailable); nothing was changed: ${(err as Error).message}`);
      }
      await models.Resource.updateOne({ _id: resource._id }, { $unset: { driftSchedule: 1 } });
      return resource;
    },
  };
}
