import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { JobListIndex } from './job-list-index.js';
import { announceJobsAmended } from './job-amend.js';
import { LINES_PER_CHUNK } from './line-store.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Models } from './models/index.js';
import { HISTORY_SWEEP_LOCK_KEY } from './names.js';
import { RELEASE_OWNED_KEY, RENEW_OWNED_KEY } from './owned-key.js';
import { FINAL_STATUSES } from './types.js';

/** How long history is kept, in days; 0 keeps it for ever. */
export interface HistoryAges {
  linesDays: number;
  jobsDays: number;
  auditDays: number;
}

/** What one sweep removed, or that another process was sweeping. */
export interface SweepResult {
  jobs: number;
  lineChunks: number;
  auditEntries: number;
  /** Set when the sweep did not run: another process holds the sweep lock. */
  skipped?: 'busy';
  /** More was due than one sweep takes (MAX_PER_SWEEP): the next sweep goes on. */
  more: boolean;
}

export interface HistorySweepDeps {
  models: Pick<Models, 'StackJob' | 'JobLineChunk' | 'AuditEntry' | 'UpdatePlanFile'>;
  /** The sweep lock, and announcing swept jobs to the API's caches. */
  redis: Pick<Redis, 'set' | 'eval' | 'publish'>;
  /** The job list's index: a deleted job leaves it. */
  jobList: Pick<JobListIndex, 'remove'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  metrics?: Metrics;
  ages: HistoryAges;
  /** The most documents deleted (or marked) per second, so a sweep never competes with live jobs for the store. */
  deletesPerSecond: number;
  now?: () => Date;
}

const LOCK_KEY = HISTORY_SWEEP_LOCK_KEY;
const LOCK_MS = 60_000;
/** Candidates one sweep collects (one pass over a collection); the rest waits for the next sweep. */
export const MAX_PER_SWEEP = 20_000;
const DAY_MS = 86_400_000;

type SweptJob = {
  _id: string;
  tenantId: string;
  resourceId: string;
  finishedAt: Date;
  lastSeq?: number;
  linesSweptAt?: Date;
  approval?: { updatePlan?: boolean };
};

/**
 * Deletes history past its age: ended jobs (with their lines) after `jobsDays`, the lines of ended
 * jobs after `linesDays` (the job, its result and summary stay, marked `linesSweptAt`), audit
 * entries after `auditDays`. No TTL indexes (FerretDB 1.x has none): a sweep finds what is due in
 * one pass per collection and deletes it one document at a time by `_id` (the one lookup the
 * embedded store answers from an index), at most `deletesPerSecond`. Any number of processes may
 * run it: a Redis lock lets one sweep at a time. It is resumable: whatever an interrupted sweep
 * left is still due, and found by the next.
 */
export class HistorySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepResult> | undefined;
  private readonly stopped = new AbortController();

  constructor(private readonly deps: HistorySweepDeps) {}

  /** Sweeps every `intervalMs` (the first time after `firstDelayMs`) until stopped. */
  start(intervalMs: number, firstDelayMs = Math.min(intervalMs, 60_000)): void {
    const tick = (delay: number) => {
      this.timer = setTimeout(() => {
        this.running = this.sweepOnce(this.stopped.signal);
        void this.running
          .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'history sweep failed; tried again next time'))
          .finally(() => {
            this.running = undefined;
            if (!this.stopped.signal.aborted) tick(intervalMs);
          });
      }, delay);
      this.timer.unref();
    };
    tick(firstDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined); // a sweep's failure was logged where it happened
  }

  /** One sweep now; `busy` when another process is sweeping. An aborted sweep stops between deletes. */
  async sweepOnce(signal?: AbortSignal): Promise<SweepResult> {
    const owner = randomUUID();
    const taken = await this.deps.redis.set(LOCK_KEY, owner, 'PX', LOCK_MS, 'NX');
    if (taken !== 'OK') return { jobs: 0, lineChunks: 0, auditEntries: 0, more: false, skipped: 'busy' };
    const lost = new AbortController();
    const renew = setInterval(() => {
      void Promise.resolve(this.deps.redis.eval(RENEW_OWNED_KEY, 1, LOCK_KEY, owner, LOCK_MS))
        .then((held) => {
          if (held !== 1) lost.abort(new Error('the history sweep lock was lost'));
        })
        .catch(() => undefined); // a Redis blip: the lock outlives a few missed renewals
    }, LOCK_MS / 3);
    const stop = signal ? AbortSignal.any([signal, lost.signal]) : lost.signal;
    try {
      const result = await new Sweep(this.deps, stop).run();
      this.record(result);
      return result;
    } finally {
      clearInterval(renew);
      // An unreleased lock expires by itself (its TTL): another runner sweeps a little later.
      await Promise.resolve(this.deps.redis.eval(RELEASE_OWNED_KEY, 1, LOCK_KEY, owner)).catch(() => undefined);
    }
  }

  private record(result: SweepResult): void {
    const { metrics, logger } = this.deps;
    const help = 'Documents the history sweep deleted, by collection';
    metrics?.inc('history_swept_total', help, { what: 'jobs' }, result.jobs);
    metrics?.inc('history_swept_total', help, { what: 'line_chunks' }, result.lineChunks);
    metrics?.inc('history_swept_total', help, { what: 'audit_entries' }, result.auditEntries);
    if (result.jobs + result.lineChunks + result.auditEntries > 0) logger.info(result, 'history swept');
  }
}

/** One sweep's work and counts. */
class Sweep {
  private readonly result: SweepResult = { jobs: 0, lineChunks: 0, auditEntries: 0, more: false };
  /** When the first write of the sweep went out: the pace is counted from there, not from the scans. */
  private started: number | undefined;
  private writes = 0;
  private readonly now: Date;

  constructor(
    private readonly deps: HistorySweepDeps,
    private readonly signal: AbortSignal,
  ) {
    this.now = deps.now?.() ?? new Date();
  }

  async run(): Promise<SweepResult> {
    await this.sweepJobs();
    await this.sweepAudit();
    return this.result;
  }

  private cutoff(days: number): Date | undefined {
    return days > 0 ? new Date(this.now.getTime() - days * DAY_MS) : undefined;
  }

  /** Jobs past `jobsDays` go with their lines; jobs past `linesDays` lose their lines only. */
  private async sweepJobs(): Promise<void> {
    const { StackJob } = this.deps.models;
    const jobsBefore = this.cutoff(this.deps.ages.jobsDays);
    const linesBefore = this.cutoff(this.deps.ages.linesDays);
    // Due: past the jobs age, or past the lines age with lines still there (swept ones are not
    // candidates again, or they would fill every sweep's share).
    const due = [
      ...(jobsBefore ? [{ finishedAt: { $lt: jobsBefore } }] : []),
      ...(linesBefore ? [{ finishedAt: { $lt: linesBefore }, linesSweptAt: { $exists: false } }] : []),
    ];
    if (due.length === 0) return;
    const candidates = await StackJob.find(
      { status: { $in: [...FINAL_STATUSES] }, $or: due },
      { _id: 1, tenantId: 1, resourceId: 1, finishedAt: 1, lastSeq: 1, linesSweptAt: 1, 'approval.updatePlan': 1 },
    )
      .limit(MAX_PER_SWEEP + 1)
      .lean<SweptJob[]>();
    this.result.more ||= candidates.length > MAX_PER_SWEEP;
    for (const job of candidates.slice(0, MAX_PER_SWEEP)) {
      const expired = jobsBefore !== undefined && job.finishedAt < jobsBefore;
      if (!expired && job.linesSweptAt) continue;
      if (!job.linesSweptAt) await this.deleteLines(job);
      if (this.signal.aborted) return;
      if (expired) {
        // An update plan a gated job never applied (its process died before it could drop it) goes with it.
        if (job.approval?.updatePlan) await this.paced(() => this.deps.models.UpdatePlanFile.deleteOne({ _id: job._id }));
        await this.deleteOne(() => StackJob.deleteOne({ _id: job._id }), 'jobs');
        // Listed no more (an id left behind is dropped by the first list that meets it).
        await this.deps.jobList
          .remove(job)
          .catch((err: Error) => this.deps.logger.warn({ err: err.message, jobId: job._id }, 'a swept job is still in the job list index'));
      } else {
        await this.paced(() => StackJob.updateOne({ _id: job._id }, { $set: { linesSweptAt: this.now } }));
      }
      // A view cached of the job (its lines there, or the job at all) is out of date now.
      await announceJobsAmended(this.deps.redis, [job._id]);
    }
  }

  /**
   * A job's line chunks, by id (`<jobId>:<k>`), from the last one down: an interrupted sweep leaves
   * chunks 0..j, which the next finds from chunk 0 up (the last seq may be 0 on a job that was
   * ended from outside its run, so the chunks that exist are what counts).
   */
  private async deleteLines(job: SweptJob): Promise<void> {
    const { JobLineChunk } = this.deps.models;
    let last = Math.ceil((job.lastSeq ?? 0) / LINES_PER_CHUNK) - 1;
    while (await JobLineChunk.exists({ _id: `${job._id}:${last + 1}` })) last++;
    for (let k = last; k >= 0 && !this.signal.aborted; k--) {
      await this.deleteOne(() => JobLineChunk.deleteOne({ _id: `${job._id}:${k}` }), 'lineChunks');
    }
  }

  private async sweepAudit(): Promise<void> {
    const before = this.cutoff(this.deps.ages.auditDays);
    if (!before || this.signal.aborted) return;
    const { AuditEntry } = this.deps.models;
    const due = await AuditEntry.find({ at: { $lt: before } }, { _id: 1 })
      .limit(MAX_PER_SWEEP + 1)
      .lean<{ _id: string }[]>();
    this.result.more ||= due.length > MAX_PER_SWEEP;
    for (const entry of due.slice(0, MAX_PER_SWEEP)) {
      if (this.signal.aborted) return;
      await this.deleteOne(() => AuditEntry.deleteOne({ _id: entry._id }), 'auditEntries');
    }
  }

  /** Deletes one document, paced; answers whether it existed. */
  private async deleteOne(
    remove: () => Promise<{ deletedCount?: number }>,
    counter: 'jobs' | 'lineChunks' | 'auditEntries',
  ): Promise<boolean> {
    const { deletedCount } = await this.paced(remove);
    if (deletedCount) this.result[counter] += deletedCount;
    return (deletedCount ?? 0) > 0;
  }

  /** Runs one write, then waits so that writes go at most `deletesPerSecond` on average. */
  private async paced<T>(write: () => Promise<T>): Promise<T> {
    this.started ??= Date.now();
    const result = await write();
    this.writes++;
    const wait = this.started + (this.writes * 1000) / this.deps.deletesPerSecond - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal: this.signal }).catch(() => undefined); // aborted: stop() ends the sweep
    return result;
  }
}
