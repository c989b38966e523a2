import type { StackJobDoc } from './models/index.js';
import type { EndMessage, JobStatus } from './types.js';

/** What an `end` message is made of: an ended job as stored, or the result its runner is writing. */
export type EndedJob = Pick<StackJobDoc, '_id' | 'status' | 'error' | 'reason' | 'summary' | 'lastSeq' | 'finishedAt' | 'updatedAt'> & {
  exitCode?: number | null;
};

/** The `end` message of an ended job, as the gateway and every publisher of it build it. */
export function endMessageFor(job: EndedJob): EndMessage {
  return {
    type: 'end',
    jobId: job._id,
    status: job.status as JobStatus,
    exitCode: job.exitCode ?? null,
    ...(job.error ? { error: job.error } : {}),
    ...(job.reason ? { reason: job.reason } : {}),
    summary: job.summary ?? {},
    lastSeq: job.lastSeq ?? 0,
    ts: (job.finishedAt ?? job.updatedAt).toISOString(),
  };
}
