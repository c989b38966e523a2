import type { QueryFilter } from 'mongoose';
import type { LiveJobDoc, Models, StackJobDoc } from './models/index.js';
import { isFinalStatus, type JobStatus, WAITING_STATUSES } from './types.js';

/** A job waiting or running: what the active-job checks ask about. */
export const ACTIVE_STATUSES: readonly JobStatus[] = [...WAITING_STATUSES, 'running'];

/**
 * An entry younger than this whose job is not in the store may be one being queued (the entry is
 * written first): only older ones are dropped as left over by a queueing that failed half-way.
 */
const UNBORN_GRACE_MS = 60_000;

type LiveModels = Pick<Models, 'LiveJob' | 'StackJob'>;
type JobFields = Pick<StackJobDoc, '_id' | 'tenantId' | 'resourceId' | 'stackFqdn' | 'operation' | 'planFor' | 'compensates'> & {
  options?: { upload?: string } | null;
  credentialId?: string | null;
};

/** The live entry of a job: the fields the active-job checks filter on. */
export function liveEntryOf(job: JobFields): Omit<LiveJobDoc, 'createdAt'> {
  const { upload } = job.options ?? {};
  return {
    _id: job._id,
    tenantId: job.tenantId,
    resourceId: job.resourceId,
    stackFqdn: job.stackFqdn,
    operation: job.operation,
    ...(job.credentialId ? { credentialId: job.credentialId } : {}),
    ...(upload ? { upload } : {}),
    ...(job.planFor ? { planFor: job.planFor } : {}),
    ...(job.compensates ? { compensates: job.compensates } : {}),
  };
}

/**
 * The jobs that have not ended, kept apart from the job history (FerretDB on SQLite answers any
 * filter but `_id` by reading every document; MongoDB would need an index per check). An entry is
 * written before its job and dropped after its job ends, so the entries are a superset of the live
 * jobs: every answer is confirmed by reading each candidate job by id, and an entry found stale
 * (its job ended, or never written) is dropped then.
 */
export function liveJobs(models: LiveModels) {
  /** Written before the job itself (queueStackJob): a job never lacks its entry. */
  async function record(job: JobFields): Promise<void> {
    await models.LiveJob.create(liveEntryOf(job)).catch((err: { code?: number }) => {
      if (err.code !== 11000) throw err; // recorded already (a backfill, a retried queueing)
    });
  }

  /** Dropped once its job has ended (best effort: a stale entry is dropped by the next check that finds it). */
  async function forget(jobId: string): Promise<void> {
    await models.LiveJob.deleteOne({ _id: jobId });
  }

  /** The run's credential, recorded before the job's own field so that a credential check finds it. */
  async function setCredential(jobId: string, credentialId: string): Promise<void> {
    await models.LiveJob.updateOne({ _id: jobId }, { $set: { credentialId } });
  }

  /** The entries matching `filter`: a superset of the live jobs matching it. */
  function entries(filter: QueryFilter<LiveJobDoc>): Promise<LiveJobDoc[]> {
    return Promise.resolve(models.LiveJob.find(filter).lean<LiveJobDoc[]>());
  }

  /** The jobs of `found` whose status is one of `statuses`, each read by id; stale entries are dropped. */
  async function confirm(found: readonly LiveJobDoc[], statuses: readonly JobStatus[] = ACTIVE_STATUSES): Promise<StackJobDoc[]> {
    const jobs = await Promise.all(
      found.map(async (entry) => {
        const job = await models.StackJob.findById(entry._id).lean<StackJobDoc>();
        const ended = job ? isFinalStatus(job.status as JobStatus) : Date.now() - entry.createdAt.getTime() > UNBORN_GRACE_MS;
        if (ended) await forget(entry._id).catch(() => undefined);
        return job && statuses.includes(job.status as JobStatus) ? job : undefined;
      }),
    );
    return jobs.filter((job): job is StackJobDoc => job !== undefined);
  }

  /** The live jobs matching `filter` whose status is one of `statuses` (waiting or running by default). */
  async function find(filter: QueryFilter<LiveJobDoc>, statuses: readonly JobStatus[] = ACTIVE_STATUSES): Promise<StackJobDoc[]> {
    return confirm(await entries(filter), statuses);
  }

  return { record, forget, setCredential, entries, confirm, find };
}

export type LiveJobs = ReturnType<typeof liveJobs>;

/**
 * Gives the jobs of a store from before live entries existed theirs, once: every job waiting or
 * running gets one (a scan of every job, at the first start of this version). Safe to run from
 * several processes at once. Returns how many it recorded.
 */
export async function backfillLiveJobs(models: LiveModels): Promise<number> {
  const live = await models.StackJob.find({ status: { $in: ACTIVE_STATUSES } }).lean<StackJobDoc[]>();
  const jobs = liveJobs(models);
  for (const job of live) await jobs.record(job);
  return live.length;
}
