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

/** An entry whose job ended, or whose job was never written (older than a queueing takes). */
function isStale(entry: LiveJobDoc, job: Pick<StackJobDoc, 'status'> | null): boolean {
  return job ? isFinalStatus(job.status as JobStatus) : Date.now() - entry.createdAt.getTime() > UNBORN_GRACE_MS;
}

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

  /**
   * The jobs of `found` whose status is one of `statuses`, each read by id, one at a time, up to
   * `limit` of them (a check that needs one stops at the first); stale entries met are dropped.
   */
  async function confirm(
    found: readonly LiveJobDoc[],
    statuses: readonly JobStatus[] = ACTIVE_STATUSES,
    limit = Infinity,
  ): Promise<StackJobDoc[]> {
    const jobs: StackJobDoc[] = [];
    for (const entry of found) {
      if (jobs.length >= limit) break;
      const job = await models.StackJob.findById(entry._id).lean<StackJobDoc>();
      if (isStale(entry, job)) await forget(entry._id).catch(() => undefined);
      if (job && statuses.includes(job.status as JobStatus)) jobs.push(job);
    }
    return jobs;
  }

  /** The live jobs matching `filter` whose status is one of `statuses` (waiting or running by default), up to `limit`. */
  async function find(
    filter: QueryFilter<LiveJobDoc>,
    statuses: readonly JobStatus[] = ACTIVE_STATUSES,
    limit = Infinity,
  ): Promise<StackJobDoc[]> {
    return confirm(await entries(filter), statuses, limit);
  }

  /**
   * Keeps the entries true to the store (the reconcilers' full scan, which reads every live job):
   * records those `live` jobs lack (queued by a process of an earlier version during an upgrade) and
   * drops entries whose job ended (their drop at the end failed). Returns how many it recorded and dropped.
   */
  async function mend(live: readonly JobFields[]): Promise<{ recorded: number; dropped: number }> {
    const known = await entries({});
    const ids = new Set(known.map((entry) => entry._id));
    const missing = live.filter((job) => !ids.has(job._id));
    for (const job of missing) await record(job);
    const liveIds = new Set(live.map((job) => job._id));
    let dropped = 0;
    // Only entries the scan did not see live are read again: the scan may predate a job queued since.
    for (const entry of known) {
      if (liveIds.has(entry._id)) continue;
      const job = await models.StackJob.findById(entry._id, { status: 1 }).lean<Pick<StackJobDoc, 'status'>>();
      if (!isStale(entry, job)) continue;
      await forget(entry._id);
      dropped++;
    }
    return { recorded: missing.length, dropped };
  }

  return { record, forget, setCredential, entries, confirm, find, mend };
}

/**
 * Gives the jobs of a store from before live entries existed theirs, once: every job waiting or
 * running gets one (a scan of every job, at the first start of this version). Safe to run from
 * several processes at once. Returns how many it recorded.
 */
export async function backfillLiveJobs(models: LiveModels): Promise<number> {
  const live = await models.StackJob.find({ status: { $in: ACTIVE_STATUSES } }).lean<StackJobDoc[]>();
  return (await liveJobs(models).mend(live)).recorded;
}
