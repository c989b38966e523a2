import type { Model } from 'mongoose';
import { backfillLiveJobs } from '../live-jobs.js';
import type { Logger } from '../logger.js';
import { DEFAULT_TENANT } from '../tenancy.js';
import type { Models } from './index.js';
import type { StackJobDoc } from './stack-job.js';

/** Unique indexes of versions without tenants, which would keep two tenants from using one name. */
const LEGACY_INDEXES: [keyof Models, string][] = [
  ['Resource', 'kind_1_name_1'],
  ['Resource', 'stackFqdn_1'],
  ['Credential', 'name_1'],
];

async function dropIndexIfPresent(model: Model<any>, name: string): Promise<boolean> {
  try {
    await model.collection.dropIndex(name);
    return true;
  } catch (err) {
    const { code, codeName } = err as { code?: number; codeName?: string };
    // 27: IndexNotFound; 26: NamespaceNotFound (the collection does not exist yet).
    if (code === 27 || code === 26 || codeName === 'IndexNotFound' || codeName === 'NamespaceNotFound') return false;
    throw err;
  }
}

/**
 * Gives resources of earlier versions the `stack` their jobs imply: `deployed` or `destroyed` after
 * their last successful up or destroy, else `pending`. Returns how many it set.
 */
async function deriveStackLife(models: Models): Promise<number> {
  const bare = await models.Resource.find({ stack: { $exists: false } }, { _id: 1 }).lean<{ _id: string }[]>();
  for (const { _id } of bare) {
    const last = await models.StackJob.findOne({ resourceId: _id, status: 'succeeded', operation: { $in: ['up', 'destroy'] } })
      .sort({ finishedAt: -1 })
      .lean<StackJobDoc>();
    const status = last ? (last.operation === 'up' ? 'deployed' : 'destroyed') : 'pending';
    const stack = {
      status,
      ...(last ? { jobId: last._id, changedAt: last.finishedAt } : {}),
      ...(last?.operation === 'up'
        ? {
            outputs: typeof last.outputs === 'string' ? last.outputs : JSON.stringify(last.outputs ?? {}),
            lastDeployedAt: last.finishedAt,
            resourceVersion: last.resourceVersion,
          }
        : {}),
    };
    await models.Resource.updateOne({ _id, stack: { $exists: false } }, { $set: { stack } });
  }
  return bare.length;
}

/**
 * Moves data written before tenants existed into the default tenant, once: every resource, job,
 * token, credential and audit entry without a tenant gets `default`. Safe to run again and from
 * several processes at once (each step only touches documents still without a tenant); the default
 * tenant's `migratedAt` says it is done, so later start-ups skip the scans.
 */
export async function migrateToTenants(models: Models): Promise<{ migrated: boolean; moved: Record<string, number> }> {
  await models.Tenant.updateOne(
    { _id: DEFAULT_TENANT },
    { $setOnInsert: { displayName: 'Default', description: 'Data from before tenants existed', createdBy: 'migration' } },
    { upsert: true },
  ).catch((err: { code?: number }) => {
    if (err.code !== 11000) throw err; // another process inserted it first
  });
  const tenant = await models.Tenant.findById(DEFAULT_TENANT, { migratedAt: 1 }).lean<{ migratedAt?: Date }>();
  // Every start: a store moved by an earlier build of this version may lack it (it touches only resources without one).
  const stacks = await deriveStackLife(models);
  if (tenant?.migratedAt) return { migrated: false, moved: stacks > 0 ? { stacks } : {} };
  const withoutTenant = { tenantId: { $exists: false } };
  const set = { $set: { tenantId: DEFAULT_TENANT } };
  const moved: Record<string, number> = { stacks };
  for (const [name, model] of [
    ['resources', models.Resource],
    ['jobs', models.StackJob],
    ['audit', models.AuditEntry],
  ] as const) {
    moved[name] = (await (model as Model<any>).updateMany(withoutTenant, set)).modifiedCount;
  }
  // Platform tokens and platform credentials have no tenant on purpose; none existed before tenants.
  moved.tokens = (await models.ApiToken.updateMany({ ...withoutTenant, role: { $ne: 'platform' } }, set)).modifiedCount;
  moved.credentials = (await models.Credential.updateMany({ ...withoutTenant, platform: { $ne: true } }, set)).modifiedCount;
  await models.Tenant.updateOne({ _id: DEFAULT_TENANT }, { $set: { migratedAt: new Date() } });
  return { migrated: true, moved };
}

/** Live entries for the jobs of a store from before they existed, once (the default tenant's `liveJobsAt` says it is done). */
async function backfillOnce(models: Models): Promise<number | undefined> {
  const tenant = await models.Tenant.findById(DEFAULT_TENANT, { liveJobsAt: 1 }).lean<{ liveJobsAt?: Date }>();
  if (tenant?.liveJobsAt) return undefined;
  const recorded = await backfillLiveJobs(models);
  await models.Tenant.updateOne({ _id: DEFAULT_TENANT }, { $set: { liveJobsAt: new Date() } });
  return recorded;
}

/**
 * Readies the store at start-up: moves earlier versions' data into the default tenant, drops their
 * single-tenant unique indexes, and builds every declared index, so uniqueness holds before the
 * first write. Every service runs it; it is idempotent.
 */
export async function prepareStore(models: Models, logger?: Pick<Logger, 'info'>) {
  const migration = await migrateToTenants(models);
  const dropped: string[] = [];
  for (const [model, index] of LEGACY_INDEXES) {
    if (await dropIndexIfPresent(models[model] as Model<any>, index)) dropped.push(`${model}.${index}`);
  }
  await Promise.all(Object.values(models).map((model) => (model as Model<any>).createIndexes()));
  const liveJobs = await backfillOnce(models);
  if (liveJobs !== undefined) logger?.info({ jobs: liveJobs }, 'waiting and running jobs recorded as live');
  if (migration.migrated) logger?.info({ moved: migration.moved }, 'data of the version without tenants moved into the default tenant');
  if (dropped.length > 0) logger?.info({ indexes: dropped }, 'single-tenant unique indexes dropped');
  return { ...migration, droppedIndexes: dropped, ...(liveJobs !== undefined ? { liveJobs } : {}) };
}
