import {
  ACTIVE_STATUSES,
  jobHeartbeatKey,
  jobStackKey,
  jobLostClaimKey,
  type JobListIndex,
  type JobStatus,
  liveJobs,
  type Models,
  type RunningJobs,
  type StackJobDoc,
  type StackQueue,
} from '@pds/shared';
import { endJob, type EndJobDeps, type EndPath, type PendingAfterEnd, requeueAfterEnd } from '@pds/shared/lifecycle';
import type { Redis } from 'ioredis';

export interface ReconcilerDeps extends EndJobDeps {
  models: Models;
  stacks: StackQueue;
  /** The jobs runners have taken: where lost ones are looked for. */
  running: RunningJobs;
  /** Publishes end messages; also where heartbeats live (exists) and claims are taken (set NX). */
  publisher: Pick<Redis, 'publish' | 'exists' | 'set'>;
  /** A running job whose heartbeat is older than this is lost. */
  staleAfterMs: number;
  /** Wakes the next job in a stack's line. */
  promote(jobId: string): Promise<void>;
  /** True for a job running in this process: alive, whatever Redis says (its beat may just be late). */
  runsHere?(jobId: string): boolean;
  /** The job list's index: the full scan lists what queueing did not (see `catchUpJobList`). */
  jobList: Pick<JobListIndex, 'addAll' | 'builtSince'>;
}

/** What a full scan asks of the store besides, and what it does with it. */
export interface FullScanOptions {
  fullScan?: boolean;
  /**
   * How far back the scan lists jobs in the job list's index: this long (the scans' period, twice),
   * or, when absent (a process's first scan), back to when the index was built, a day at most.
   */
  indexWindowMs?: number;
}

/** The furthest back a process's first full scan lists jobs (an upgrade's roll is over well within a day). */
const FIRST_SCAN_WINDOW_MS = 24 * 3_600_000;

/** The fields a full scan reads of each job: its status, its live entry's, its place in the job list. */
const SCANNED_FIELDS = {
  _id: 1,
  status: 1,
  startedAt: 1,
  afterEndPending: 1,
  tenantId: 1,
  resourceId: 1,
  stackFqdn: 1,
  operation: 1,
  'options.upload': 1,
  planFor: 1,
  compensates: 1,
  credentialId: 1,
  createdAt: 1,
} as const;

/** From when a full scan lists jobs in the job list's index; undefined while the index is not complete (its build lists them all). */
async function listedSince(deps: ReconcilerDeps, now: Date, windowMs = FIRST_SCAN_WINDOW_MS): Promise<Date | undefined> {
  const built = await deps.jobList.builtSince().catch(() => undefined);
  if (!built) return undefined;
  return new Date(Math.max(built.getTime(), now.getTime() - windowMs));
}

/**
 * Lists in the job list's index the jobs queueing may have left out: those a process of an earlier
 * version queued during an upgrade (every job created since `since`), and live jobs whose queueing
 * stopped between writing the job and listing it. Adding a listed job changes nothing.
 */
async function catchUpJobList(deps: ReconcilerDeps, scanned: readonly StackJobDoc[], since: Date): Promise<void> {
  const missed = scanned.filter((doc) => doc.createdAt >= since || ACTIVE_STATUSES.includes(doc.status as JobStatus));
  try {
    for (let start = 0; start < missed.length; start += 1_000) await deps.jobList.addAll(missed.slice(start, start + 1_000));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message }, 'the job list index not caught up yet');
  }
}

/** The live entries kept true to the scan (a failure is logged: the next full scan tries again). */
async function mendLiveEntries(deps: ReconcilerDeps, scanned: readonly StackJobDoc[]): Promise<void> {
  const live = scanned.filter((doc) => ACTIVE_STATUSES.includes(doc.status as JobStatus));
  try {
    const { recorded, dropped } = await liveJobs(deps.models).mend(live);
    if (recorded + dropped > 0) deps.logger.info({ recorded, dropped }, 'live job entries mended');
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message }, 'live job entries not mended yet');
  }
}

/**
 * Ends jobs whose runner disappeared: `running`, but their heartbeat (a Redis key the runner renews,
 * expiring after `staleAfterMs`) is gone. Every runner runs this; for each lost job one of them
 * takes a claim in Redis (SET NX) and only that one acts. The claim, not a conditional document
 * update, decides: a MongoDB wire server without atomic find-and-modify (FerretDB on SQLite) lets
 * two conditional updates both win. The job ends `failed`, reason `runner_lost` (endJob: its
 * after-end reactions decide its recovery and the compensation it was), its stack's lock is freed,
 * the stack marked for repair (Pulumi's own lock may be stale) and the next job in line woken.
 * Returns the ids it ended.
 */
export async function reconcileLostJobs(deps: ReconcilerDeps, now = new Date(), options: FullScanOptions = {}): Promise<string[]> {
  const cutoff = new Date(now.getTime() - deps.staleAfterMs);
  // Jobs taken a while ago (a fresh one may not have beaten yet). The store is asked too only now
  // and then (`fullScan`): for jobs whose entry Redis lost; on FerretDB that is a scan of every job.
  const tracked = await deps.running.takenBefore(cutoff);
  const indexSince = options.fullScan ? await listedSince(deps, now, options.indexWindowMs) : undefined;
  // One scan finds them all: running jobs Redis lost, ended jobs whose after-end work was never
  // queued, the live jobs the live entries must hold, and the recent jobs the job list must hold.
  const scanned = options.fullScan
    ? await deps.models.StackJob.find(
        {
          $or: [
            { status: { $in: ACTIVE_STATUSES } },
            { afterEndPending: { $exists: true } },
            ...(indexSince ? [{ createdAt: { $gte: indexSince } }] : []),
          ],
        },
        SCANNED_FIELDS,
      ).lean<(StackJobDoc & { afterEndPending?: EndPath })[]>()
    : [];
  const pending = scanned.filter((doc): doc is StackJobDoc & PendingAfterEnd => doc.afterEndPending !== undefined);
  if (pending.length > 0)
    await requeueAfterEnd(deps, pending).catch((err: Error) =>
      deps.logger.warn({ err: err.message }, 'late after-end work not queued yet'),
    );
  if (options.fullScan) await mendLiveEntries(deps, scanned);
  if (indexSince) await catchUpJobList(deps, scanned, indexSince);
  const lost = scanned.filter((doc) => doc.status === 'running' && doc.startedAt && doc.startedAt < cutoff).map((doc) => doc._id);
  const candidates = [...new Set([...tracked, ...lost])];
  const ended: string[] = [];
  for (const _id of candidates) {
    if (deps.runsHere?.(_id) || (await deps.publisher.exists(jobHeartbeatKey(_id))) === 1) continue;
    const claimed = await deps.publisher.set(jobLostClaimKey(_id), '1', 'PX', 10 * deps.staleAfterMs, 'NX');
    if (claimed !== 'OK') continue; // another runner is ending it
    const error = `the runner running this job stopped answering (no heartbeat for ${Math.round(deps.staleAfterMs / 1000)} s)`;
    const job = await endJob(deps, _id, { status: 'failed', reason: 'runner_lost', error }, 'reconciler');
    await deps.running.remove(_id);
    if (!job) continue; // it ended meanwhile (or its runner died before starting it)
    ended.push(_id);
    deps.logger.warn({ jobId: _id, stack: job.stackFqdn, runnerId: job.runnerId }, 'job lost with its runner');
    const next = await deps.stacks.releaseLost(jobStackKey(job), _id);
    if (next) await deps.promote(next);
  }
  return ended;
}
