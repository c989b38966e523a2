import {
  type ChannelMessage,
  type EndMessage,
  endMessageFor,
  isFinalStatus,
  type JobStatus,
  type LineMessage,
  lineStore,
  type Models,
  type StackJobDoc,
  type StatusMessage,
  type StoredLine,
  canSee,
  type TenantViewer,
} from '@pds/shared';
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

const PAGE = 4096;

function toMessage(jobId: string, line: StoredLine | LineMessage): LineMessage {
  const { seq, stream, text, event, ts } = line;
  return stream === 'event' ? { type: 'event', jobId, seq, stream, event, ts } : { type: 'line', jobId, seq, stream, text, ts };
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
  const store = lineStore(models);
  let next = from + 1;
  let ended = false;
  let chain: Promise<void> = Promise.resolve();
  let wake: (() => void) | undefined;
  const finished = new Promise<void>((resolve) => {
    wake = resolve;
  });

  /** Sends every message up to `untilSeq`: from the hub's memory when it has them, else from MongoDB, waiting for batches to land. */
  async function sendUpTo(untilSeq: number): Promise<void> {
    const deadline = Date.now() + (deps.fillTimeoutMs ?? 30_000);
    let pause = 10;
    while (next <= untilSeq && !signal.aborted) {
      const remembered = hub.recent(jobId, next, untilSeq);
      const lines = remembered.length > 0 ? remembered : await store.read(jobId, next - 1, Math.min(PAGE, untilSeq - next + 1));
      let progressed = false;
      for (const line of lines) {
        if (line.seq !== next || line.seq > untilSeq) break; // a hole: published but not persisted yet
        send(toMessage(jobId, line));
        next++;
        progressed = true;
      }
      if (progressed) {
        pause = 10;
      } else {
        if (Date.now() > deadline) throw new Error(`line ${next} of job ${jobId} was never persisted`);
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 250);
      }
    }
  }

  /** Sends what is persisted from `next` on, stopping at the first hole (no waiting). */
  async function replayPersisted(): Promise<void> {
    for (;;) {
      const lines = await store.read(jobId, next - 1, PAGE);
      for (const line of lines) {
        if (line.seq !== next) return;
        send(toMessage(jobId, line));
        next++;
      }
      if (lines.length < PAGE || signal.aborted) return;
    }
  }

  async function end(message: EndMessage): Promise<void> {
    if (ended) return;
    await sendUpTo(message.lastSeq);
    ended = true;
    send(message);
    wake?.();
  }

  async function handle(message: ChannelMessage): Promise<void> {
    if (ended || signal.aborted) return;
    if (message.type === 'end') return end(message);
    if (message.type === 'status') return send(message);
    if (message.seq < next) return; // already sent during replay
    if (message.seq > next) await sendUpTo(message.seq - 1);
    if (message.seq === next) {
      send(message);
      next++;
    }
  }

  let queued = 0; // work items on `chain` not finished yet
  const enqueue = (work: () => Promise<void>) => {
    queued++;
    chain = chain
      .then(work)
      .finally(() => queued--)
      .catch((err: Error) => {
        if (!ended) {
          ended = true;
          send({ type: 'error', jobId, code: 1011, message: err.message });
          wake?.();
        }
      });
  };

  // Subscribe first, and hold live messages until the replay is done: nothing falls in between.
  const held: ChannelMessage[] = [];
  let replaying = true;
  const unsubscribe = await hub.subscribe(jobId, (message, raw) => {
    if (replaying) held.push(message);
    else if (queued === 0 && !ended && message.type !== 'end' && message.type !== 'status' && message.seq === next) {
      // The common case while tailing: the next line, nothing pending. Forward the published text.
      send(message, raw);
      next++;
    } else enqueue(() => handle(message));
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  // A client that left while the subscribe was under way fired `abort` before anyone listened:
  // without this the stream would wait forever, subscribed and polling MongoDB.
  if (signal.aborted) onAbort();
  let timer: NodeJS.Timeout | undefined;
  try {
    const job = await models.StackJob.findById(jobId).lean<StackJobDoc>();
    // Another tenant's job answers as an unknown one: existence does not leak.
    if (!job || !canSee(viewer, job.tenantId)) throw new JobNotFoundError(`job ${jobId} not found`);
    if (isFinalStatus(job.status as JobStatus)) {
      if (job.linesSweptAt && from < (job.lastSeq ?? 0)) {
        throw new LinesSweptError(
          `the lines of job ${jobId} were removed as old history on ${job.linesSweptAt.toISOString()}; its result is at GET /v1/jobs/${jobId}`,
        );
      }
      await end(endMessageFor(job));
      return;
    }
    send({ type: 'status', jobId, status: job.status as JobStatus, ts: new Date().toISOString() });
    await replayPersisted();
    enqueue(async () => {
      replaying = false;
      for (const message of held.splice(0)) await handle(message);
    });
    // If the end message is lost (a Redis blip), the job document still tells.
    const check = async () => {
      const current = await models.StackJob.findById(jobId).lean<StackJobDoc>();
      if (current && isFinalStatus(current.status as JobStatus)) enqueue(() => end(endMessageFor(current)));
    };
    timer = setInterval(() => void check().catch(() => undefined), deps.checkEveryMs ?? 5_000);
    await finished;
    await chain;
  } finally {
    clearInterval(timer);
    signal.removeEventListener('abort', onAbort);
    await unsubscribe();
  }
}
