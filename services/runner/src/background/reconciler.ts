import {
  ACTIVE_STATUSES,
  jobHeartbeatKey,
  jobStackKey,
  jobLostClaimKey,
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
}

/** The live entries kept true to the scan (a failure is logged: the next full scan tries again). */
async function mendLiveEntries(deps: ReconcilerDeps, scanned: readonly StackJobDoc[]): Promise<void> {
  const live = scanned.filter((doc) => ACTIVE_STATUSES.includes(doc.status as (typeof ACTIVE_STATUSES)[number]));
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
export async function reconcileLostJobs(deps: ReconcilerDeps, now = new Date(), options: { fullScan?: boolean } = {}): Promise<string[]> {
  const cutoff = new Date(now.getTime() - deps.staleAfterMs);
  // Jobs taken a while ago (a fresh one may not have beaten yet). The store is asked too only now
  // and then (`fullScan`): for jobs whose entry Redis lost; on FerretDB that is a scan of every job.
  const tracked = await deps.running.takenBefore(cutoff);
  // One scan finds them all: running jobs Redis lost, ended jobs whose after-end work was never
  // queued, and the live jobs the live entries must hold.
  const scanned = options.fullScan
    ? await deps.models.StackJob.find({ $or: [{ status: { $in: ACTIVE_STATUSES } }, { afterEndPending: { $exists: true } }] }).lean<
        (StackJobDoc & { afterEndPending?: EndPath })[]
      >()
    : [];
  const pending = scanned.filter((doc): doc is StackJobDoc & PendingAfterEnd => doc.afterEndPending !== undefined);
  if (pending.length > 0)
    await requeueAfterEnd(deps, pending).catch((err: Error) =>
      deps.logger.warn({ err: err.message }, 'late after-end work not queued yet'),
    );
  if (options.fullScan) await mendLiveEntries(deps, scanned);
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
