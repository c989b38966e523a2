import {
  type EndMessage,
  endMessageFor,
  isFinalStatus,
  type JobStatus,
  type LineMessage,
  lineStore,
  type Models,
  type StackJobDoc,
  type StatusMessage,
  canSee,
  type TenantViewer,
} from '@pds/shared';
import { LineCursor } from './line-cursor.js';
import { LiveFeed } from './live-feed.js';
import type { SubscriptionHub } from './subscription-hub.js';

/** An error ending one job's stream (the job is unknown, or its lines could not be delivered). */
export interface ErrorMessage {
  type: 'error';
  jobId: string;
  /** A WebSocket close code telling why (4404 unknown job, 4410 lines swept, 1011 internal). */
  code: number;
  message: string;
}

/** What a client receives; the wire protocol is documented in docs/stream-protocol.md. */
export type StreamMessage = LineMessage | StatusMessage | EndMessage | ErrorMessage;

export interface JobStreamDeps {
  models: Models;
  hub: SubscriptionHub;
  /** How long to wait for a line that was published but is not persisted yet. */
  fillTimeoutMs?: number;
  /** How often an idle stream re-reads the job, in case its end message was lost. */
  checkEveryMs?: number;
}

export class JobNotFoundError extends Error {
  readonly code = 4404;
}

/** The job's lines were removed as old history (HISTORY_LINES_DAYS): its result is on the REST API. */
export class LinesSweptError extends Error {
  readonly code = 4410;
}

/** The job, if `viewer` may see it and its lines are still there to stream (else the error saying why). */
async function openJob(models: Models, jobId: string, from: number, viewer: TenantViewer): Promise<StackJobDoc> {
  const job = await models.StackJob.findById(jobId).lean<StackJobDoc>();
  // Another tenant's job answers as an unknown one: existence does not leak.
  if (!job || !canSee(viewer, job.tenantId)) throw new JobNotFoundError(`job ${jobId} not found`);
  if (isFinalStatus(job.status as JobStatus) && job.linesSweptAt && from < (job.lastSeq ?? 0)) {
    throw new LinesSweptError(
      `the lines of job ${jobId} were removed as old history on ${job.linesSweptAt.toISOString()}; its result is at GET /v1/jobs/${jobId}`,
    );
  }
  return job;
}

/** Re-reads the job now and then: if its end message was lost (a Redis blip), the document still tells. Returns the stop. */
function watchForEnd(models: Models, jobId: string, feed: LiveFeed, everyMs: number): () => void {
  const check = async () => {
    const current = await models.StackJob.findById(jobId).lean<StackJobDoc>();
    if (current && isFinalStatus(current.status as JobStatus)) feed.endLater(endMessageFor(current));
  };
  const timer = setInterval(() => void check().catch(() => undefined), everyMs);
  return () => clearInterval(timer);
}

/**
 * Streams one job to one client: its current status, then every message with seq > `from` exactly
 * once and in order (persisted replay, then live), then the end message. Live messages that arrive
 * ahead of what has been sent are held while the hole is filled (from the hub's memory, else from
 * MongoDB), so the hand-off from replay to live has no gap and no duplicate even while the runner
 * persists in batches. Rejects with JobNotFoundError for an unknown job, or one of a tenant `viewer` may not see.
 */
export async function streamJob(
  deps: JobStreamDeps,
  jobId: string,
  from: number,
  send: (message: StreamMessage, raw?: string) => void,
  signal: AbortSignal,
  viewer: TenantViewer,
): Promise<void> {
  const { models, hub } = deps;
  const source = { jobId, store: lineStore(models), hub, signal, fillTimeoutMs: deps.fillTimeoutMs ?? 30_000 };
  const cursor = new LineCursor(source, from, send);
  let stop: () => void = () => undefined;
  const over = new Promise<void>((resolve) => (stop = resolve));
  const feed = new LiveFeed(jobId, cursor, send, signal, stop);

  // Subscribe first (the feed holds live messages until the replay is done): nothing falls in between.
  const unsubscribe = await hub.subscribe(jobId, (message, raw) => feed.receive(message, raw));
  signal.addEventListener('abort', stop);
  // A client that left while the subscribe was under way fired `abort` before anyone listened:
  // without this the stream would wait forever, subscribed and polling MongoDB.
  if (signal.aborted) stop();
  let stopWatching: (() => void) | undefined;
  try {
    const job = await openJob(models, jobId, from, viewer);
    if (isFinalStatus(job.status as JobStatus)) return await feed.end(endMessageFor(job));
    send({ type: 'status', jobId, status: job.status as JobStatus, ts: new Date().toISOString() });
    await cursor.replayPersisted();
    feed.goLive();
    stopWatching = watchForEnd(models, jobId, feed, deps.checkEveryMs ?? 5_000);
    await over;
    await feed.drained();
  } finally {
    stopWatching?.();
    signal.removeEventListener('abort', stop);
    await unsubscribe();
  }
}
