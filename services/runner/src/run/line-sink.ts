import {
  LINES_PER_CHUNK,
  type ChannelMessage,
  type ChunkWriter,
  jobChannel,
  type LineMessage,
  type LineStream,
  type Logger,
  retryTransient,
} from '@pds/shared';
import type { Redis } from 'ioredis';

export interface LineSinkOptions {
  jobId: string;
  publisher: Pick<Redis, 'publish'>;
  /** Where the lines are persisted (`lineStore(models).writer(jobId)`). */
  store: Pick<ChunkWriter, 'append'>;
  logger: Logger;
  /** A batch is written when it reaches this many lines (or MAX_BATCH_CHARS of text) … */
  batchSize?: number;
  /** … or when its oldest line is this old. */
  batchMs?: number;
  /** How long an unreachable store is retried before the lines are given up on (default 60 s). */
  outageToleranceMs?: number;
}

/**
 * Numbers a job's lines and events (seq 1, 2, 3 … without holes), publishes each at once on the
 * job's channel (never awaiting Redis per line) and persists them in ordered batches, one write
 * at a time, so Mongo holds a prefix of the sequence at every moment.
 */
/** A single line longer than this is cut (Pulumi can print huge diffs; documents have a size limit). */
export const MAX_LINE_CHARS = 16 * 1024;
const MAX_BATCH_CHARS = 2 * 1024 * 1024;
/** One persistence round trip writes at most this many lines (10 chunks) or this much text. */
const MAX_WRITE_LINES = 10 * LINES_PER_CHUNK;
const MAX_WRITE_CHARS = 8 * 1024 * 1024;
/** Lines not yet persisted or not yet published beyond which the producer is asked to wait … */
const HIGH_WATER = 20_000;
/** … until the backlog is down to this. */
const LOW_WATER = 5_000;

export class LineSink {
  private seq = 0;
  private batch: LineMessage[] = [];
  private batchChars = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  /** Lines handed to the writer, not yet written. */
  private queued: LineMessage[] = [];
  private writeError: Error | undefined;
  /** Lines buffered or being written, and publishes Redis has not answered yet: the memory in use. */
  private unpersisted = 0;
  private unpublished = 0;
  private waiters: (() => void)[] = [];
  /** Set by close(): everything is written now, nothing held back. */
  private closing = false;
  private readonly batchSize: number;
  private readonly batchMs: number;

  constructor(private readonly options: LineSinkOptions) {
    this.batchSize = options.batchSize ?? LINES_PER_CHUNK;
    this.batchMs = options.batchMs ?? 100;
  }

  get lastSeq(): number {
    return this.seq;
  }

  line(stream: Exclude<LineStream, 'event'>, text: string): void {
    if (text.length > MAX_LINE_CHARS) text = `${text.slice(0, MAX_LINE_CHARS)} … [${text.length - MAX_LINE_CHARS} characters cut]`;
    this.push({ type: 'line', jobId: this.options.jobId, seq: ++this.seq, stream, text, ts: new Date().toISOString() });
  }

  event(event: Record<string, unknown>): void {
    this.push({ type: 'event', jobId: this.options.jobId, seq: ++this.seq, stream: 'event', event, ts: new Date().toISOString() });
  }

  /** Publishes a message that is not a line (the end message), after everything before it. */
  publish(message: ChannelMessage): void {
    this.unpublished++;
    this.options.publisher
      .publish(jobChannel(this.options.jobId), JSON.stringify(message))
      .catch((err: Error) => {
        // Live watchers fill the hole from Mongo; the line itself is not lost.
        this.options.logger.warn({ err: err.message }, 'publish failed');
      })
      .finally(() => {
        this.unpublished--;
        this.wakeIfDrained();
      });
  }

  /** How many lines are held in memory (not yet persisted, or not yet published). */
  get backlog(): number {
    return Math.max(this.unpersisted, this.unpublished);
  }

  /**
   * Backpressure for the producer: undefined while the backlog is small; past HIGH_WATER, a promise
   * that resolves once it is back under LOW_WATER. A producer that waits (the runner stops reading
   * Pulumi's stdout, so the pipe fills and Pulumi waits) keeps memory bounded however much is printed.
   */
  pressure(): Promise<void> | undefined {
    if (this.backlog < HIGH_WATER) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wakeIfDrained(): void {
    if (this.waiters.length === 0 || this.backlog > LOW_WATER) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private push(message: LineMessage): void {
    this.publish(message);
    this.unpersisted++;
    this.batch.push(message);
    this.batchChars += message.text?.length ?? 256;
    if (this.batch.length >= this.batchSize || this.batchChars >= MAX_BATCH_CHARS) this.flushSoon(0);
    else this.flushSoon(this.batchMs);
  }

  private flushSoon(delayMs: number): void {
    if (delayMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.flush();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, delayMs);
    }
  }

  /**
   * Writes what is buffered. One write at a time, in seq order; lines that arrive while a write is
   * in flight are written together by the next one (so a backlog costs few round trips).
   */
  flush(): Promise<void> {
    if (this.batch.length > 0) {
      this.queued.push(...this.batch);
      this.batch = [];
      this.batchChars = 0;
    }
    // Cleared once the drain has settled (never synchronously: a drain with nothing to write must
    // not leave a settled promise here, or later flushes would return it and write nothing).
    this.writing ??= this.drain().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  private async drain(): Promise<void> {
    while (this.queued.length > 0) {
      // At most MAX_WRITE_LINES / MAX_WRITE_CHARS per round trip (a command has a size limit).
      let take = 0;
      let chars = 0;
      while (take < this.queued.length && take < MAX_WRITE_LINES && chars < MAX_WRITE_CHARS)
        chars += this.queued[take++]?.text?.length ?? 256;
      // In a flood, a trailing part of a chunk behind whole ones waits for the next write (or the
      // batch timer): written once, whole, instead of written now and rewritten later.
      const held = this.closing ? 0 : this.partChunkBehindWholeOnes(take);
      const batch = this.queued.splice(0, take - held);
      await this.write(batch);
      if (held > 0 && this.queued.length === held) {
        this.flushSoon(this.batchMs);
        break;
      }
    }
  }

  /** How many of the first `take` queued lines end a chunk they do not fill, when whole chunks come before them. */
  private partChunkBehindWholeOnes(take: number): number {
    const first = this.queued[0]?.seq ?? 0;
    const last = this.queued[take - 1]?.seq ?? 0;
    const part = last % LINES_PER_CHUNK;
    return part !== 0 && last - part >= first ? part : 0;
  }

  private async write(batch: LineMessage[]): Promise<void> {
    const lines = batch.map(({ jobId: _, type: __, ...line }) => line);
    if (!this.writeError) {
      try {
        // Appending a chunk is idempotent, so a retry after a lost answer cannot duplicate lines.
        // While the store is away the backlog grows to HIGH_WATER, then Pulumi is made to wait.
        await retryTransient(() => this.options.store.append(lines), {
          toleranceMs: this.options.outageToleranceMs ?? 60_000,
          onRetry: (err, attempt) =>
            attempt === 1 && this.options.logger.warn({ err: err.message }, 'cannot persist job lines yet; retrying'),
        });
      } catch (err) {
        // Given up: later lines are not written either, so the stored lines stay a prefix without holes.
        this.writeError = err as Error;
        this.options.logger.error({ err: (err as Error).message, lines: lines.length }, 'cannot persist job lines');
      }
    }
    this.unpersisted -= lines.length;
    this.wakeIfDrained();
  }

  /** Flushes everything; rejects if some lines could not be persisted. */
  async close(): Promise<number> {
    this.closing = true;
    // A write in flight may have held a part-chunk back: flush until nothing is left.
    do await this.flush();
    while (this.queued.length > 0 || this.batch.length > 0);
    clearTimeout(this.timer);
    if (this.writeError) throw new Error(`job lines could not be persisted: ${this.writeError.message}`);
    return this.seq;
  }
}
