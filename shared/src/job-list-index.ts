import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from './logger.js';
import type { Models, StackJobDoc } from './models/index.js';
import { JOB_LIST_BUILD_LOCK_KEY, JOB_LIST_COMPLETE_KEY, jobListKey } from './names.js';
import { RELEASE_OWNED_KEY, RENEW_OWNED_KEY } from './owned-key.js';

/** Which jobs a list reads: every job, a tenant's, or a resource's. */
export type JobListScope = Parameters<typeof jobListKey>[0];

/** What the index keeps of a job: its id, where it is listed and when it was created (the sort key). */
export type IndexedJob = Pick<StackJobDoc, '_id' | 'tenantId' | 'resourceId' | 'createdAt'>;

/** Where a page starts: after the job created at `at` (ms) with id `id`, newest first. */
export interface ListPosition {
  at: number;
  id: string;
}

/** Jobs the build writes per round trip, and how long its lock lasts without a renewal. */
const BUILD_BATCH = 1_000;
const BUILD_LOCK_MS = 60_000;
/** Marks the index complete only while the build still holds its lock (a Redis restarted mid-build has neither). */
const MARK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[2], ARGV[2]) else return false end`;

type IndexRedis = Pick<Redis, 'multi' | 'get' | 'set' | 'zrange' | 'zrem' | 'eval'>;

function keysOf(job: Pick<IndexedJob, 'tenantId' | 'resourceId'>): string[] {
  return [jobListKey('all'), jobListKey({ tenant: job.tenantId }), jobListKey({ resource: job.resourceId })];
}

/**
 * The job list's index, in Redis: FerretDB on SQLite answers any filter but `_id` by reading every
 * job, so `GET /v1/jobs` newest first reads ids from sorted sets (scored by creation time, ties by
 * id, as the store sorts) and then each job by `_id`. Queueing adds every job before it is on any
 * line; the history sweep removes those it deletes. The index is used only while it is marked
 * complete: a Redis that lost its data (or a store from before the index) lists from the store
 * until one process has filled the index again (`build`).
 */
export class JobListIndex {
  constructor(private readonly redis: IndexRedis) {}

  /** Listed in every scope it belongs to (the caller's queueing fails, and takes the job back, if this does). */
  async add(job: IndexedJob): Promise<void> {
    await this.addAll([job]);
  }

  /** Many at once (a build's batch, the reconcilers' catch-up); adding a job listed already changes nothing. */
  async addAll(jobs: readonly IndexedJob[]): Promise<void> {
    const multi = this.redis.multi();
    for (const job of jobs) if (job.createdAt) for (const key of keysOf(job)) multi.zadd(key, job.createdAt.getTime(), job._id);
    await execAll(multi);
  }

  /** Out of every scope (the job was deleted). */
  async remove(job: Pick<IndexedJob, '_id' | 'tenantId' | 'resourceId'>): Promise<void> {
    const multi = this.redis.multi();
    for (const key of keysOf(job)) multi.zrem(key, job._id);
    await execAll(multi);
  }

  /** An id listed whose job is gone (a build that read it before the sweep deleted it): dropped from the scope it was met in. */
  async forget(scope: JobListScope, jobId: string): Promise<void> {
    await this.redis.zrem(jobListKey(scope), jobId);
  }

  /** True when the index holds every job of the store. */
  async complete(): Promise<boolean> {
    return (await this.builtSince()) !== undefined;
  }

  /** When the build that completed the index began (what it may have missed of an earlier version's queueing is after it); undefined while not complete. */
  async builtSince(): Promise<Date | undefined> {
    const mark = await this.redis.get(JOB_LIST_COMPLETE_KEY);
    return mark ? new Date(Number(mark)) : undefined;
  }

  /** Up to `n` jobs of `scope`, newest first, after `after` (created before it, or at the same ms with a smaller id). */
  async page(scope: JobListScope, n: number, after?: ListPosition): Promise<ListPosition[]> {
    const key = jobListKey(scope);
    const found: ListPosition[] = [];
    const batch = n + 16; // ties at `after.at` are skipped here
    for (let offset = 0; ; offset += batch) {
      const raw = await this.redis.zrange(key, after ? after.at : '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', offset, batch, 'WITHSCORES');
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const position = { id: raw[i] as string, at: Number(raw[i + 1]) };
        if (after && position.at === after.at && position.id >= after.id) continue;
        found.push(position);
        if (found.length === n) return found;
      }
      if (raw.length < 2 * batch) return found;
    }
  }

  /**
   * Fills the index from the store (every job; one scan, read in batches, the lock renewed every
   * 20 s), then marks it complete with the time it began. One process at a time (a Redis lock);
   * jobs queued meanwhile are added by their queueing. Returns false when another process is building.
   */
  async build(models: Pick<Models, 'StackJob'>, logger?: Pick<Logger, 'info'>): Promise<boolean> {
    const token = randomUUID();
    const began = Date.now();
    if ((await this.redis.set(JOB_LIST_BUILD_LOCK_KEY, token, 'PX', BUILD_LOCK_MS, 'NX')) !== 'OK') return false;
    // Renewed on a timer, not per batch: the store may take longer than the lock's life to send the first batch.
    let lost = false;
    const renew = setInterval(() => {
      void Promise.resolve(this.redis.eval(RENEW_OWNED_KEY, 1, JOB_LIST_BUILD_LOCK_KEY, token, BUILD_LOCK_MS)).then(
        (held) => void (lost ||= held !== 1),
        () => undefined,
      );
    }, BUILD_LOCK_MS / 3);
    try {
      let batch: IndexedJob[] = [];
      let count = 0;
      const flush = async () => {
        if (lost) throw new Error('the job list build lost its lock');
        await this.addAll(batch);
        count += batch.length;
        batch = [];
      };
      const jobs = models.StackJob.find({}, { _id: 1, tenantId: 1, resourceId: 1, createdAt: 1 }).lean<IndexedJob[]>().cursor();
      for await (const job of jobs) {
        batch.push(job as IndexedJob);
        if (batch.length === BUILD_BATCH) await flush();
      }
      await flush();
      if ((await this.redis.eval(MARK, 2, JOB_LIST_BUILD_LOCK_KEY, JOB_LIST_COMPLETE_KEY, token, began)) === null)
        throw new Error('the job list build lost its lock');
      logger?.info({ jobs: count }, 'job list index built from the store');
      return true;
    } finally {
      clearInterval(renew);
      await this.redis.eval(RELEASE_OWNED_KEY, 1, JOB_LIST_BUILD_LOCK_KEY, token).catch(() => undefined);
    }
  }
}

/** Runs a MULTI; an error of any command in it is thrown (ioredis reports them per command). */
async function execAll(multi: ReturnType<IndexRedis['multi']>): Promise<void> {
  const results = await multi.exec();
  const failed = results?.find(([err]) => err !== null);
  if (failed) throw failed[0] as Error;
}
