import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';

/** A resource's drift schedule, as its owner set it. */
export interface DriftSchedule {
  /** Cron, 5 fields (or 6, seconds first), UTC. */
  cron: string;
  /** Queue an `up` when a check finds drift (the gate of approvals applies once it exists). */
  autoRemediate: boolean;
  /** Differences not to report: a resource (by URN), or only some of its property paths. */
  ignore: { urn: string; paths?: string[] }[];
  paused: boolean;
  updatedBy: string;
  /**
   * The identity that set it (`identityOf` its token; absent on schedules of earlier versions): its
   * checks and remediations act for that identity, so it is not a second person approving them.
   */
  updatedByIdentity?: string;
  updatedAt: string;
}

/** The work a drift scheduler fires: check this resource. */
export interface DriftTick {
  resourceId: string;
  /** Set once the tick has waited its spread (driftSpreadMs). */
  spread?: boolean;
}

/**
 * The shortest time between two runs of a cron expression (over its next 10 runs), in seconds; an
 * Error naming what is wrong with one that does not parse.
 */
export function cronIntervalSeconds(cron: string): number {
  const expression = CronExpressionParser.parse(cron, { tz: 'UTC' });
  let previous = expression.next().getTime();
  let shortest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    const next = expression.next().getTime();
    shortest = Math.min(shortest, next - previous);
    previous = next;
  }
  return shortest / 1000;
}

/**
 * How long a check of this resource waits after its cron fires: the same for a resource every time,
 * spread over a window of at most `maxSeconds` and a tenth of the cron's interval, so that schedules
 * sharing a cron (every hour on the hour) check one after another, not all at once. 0 for a window
 * under a second.
 */
export function driftSpreadMs(resourceId: string, cron: string, maxSeconds: number): number {
  let intervalSeconds: number;
  try {
    intervalSeconds = cronIntervalSeconds(cron);
  } catch {
    return 0; // checked when the schedule was set; a parser that reads it differently now must not stop checks
  }
  const windowMs = Math.floor(Math.min(maxSeconds * 1000, (intervalSeconds * 1000) / 10));
  if (windowMs < 1000) return 0;
  return createHash('sha256').update(resourceId).digest().readUInt32BE(0) % windowMs;
}

/** Puts a resource's schedule into effect: a BullMQ job scheduler firing its checks, or none while paused. */
export async function applyDriftSchedule(
  queue: Pick<Queue, 'upsertJobScheduler' | 'removeJobScheduler'>,
  resourceId: string,
  schedule: Pick<DriftSchedule, 'cron' | 'paused'> | undefined,
): Promise<void> {
  if (!schedule || schedule.paused) {
    await queue.removeJobScheduler(resourceId);
    return;
  }
  await queue.upsertJobScheduler(
    resourceId,
    { pattern: schedule.cron, tz: 'UTC' },
    { name: 'drift-check', data: { resourceId } satisfies DriftTick, opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );
}
