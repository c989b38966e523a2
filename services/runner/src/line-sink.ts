import {
  LINES_PER_CHUNK,
  type ChannelMessage,
  type ChunkWriter,
  jobChannel,
  type LineMessage,
  type LineStream,
  type Logger,
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
}

/**
 * Numbers a job's lines and events (seq 1, 2, 3 … without holes), publishes each at once on the
 * job's channel (never awaiting Redis per line) and persists them in ordered batches, one write
 * at a time, so Mongo holds a prefix of the sequence at every moment.
 */
/** A single line longer than this is cut (Pulumi can print huge diffs; documents have a size limit). */
export const MAX_LINE_CHARS = 16 * 1024;
const MAX_BATCH_CHARS = 2 * 1024 * 1024;

export class LineSink {
  private seq = 0;
  private batch: LineMessage[] = [];
  private batchChars = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private writeError: Error | undefined;
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
    this.options.publisher.publish(jobChannel(this.options.jobId), JSON.stringify(message)).catch((err: Error) => {
      // Live watchers fill the hole from Mongo; the line itself is not lost.
      this.options.logger.warn({ err: err.message }, 'publish failed');
    });
  }

  private push(message: LineMessage): void {
    this.publish(message);
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

  /** Writes what is buffered; writes are chained so batches land in seq order. */
  flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    this.batchChars = 0;
    if (batch.length === 0) return this.writing;
    this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  private async write(batch: LineMessage[]): Promise<void> {
    const lines = batch.map(({ jobId: _, type: __, ...line }) => line);
    for (let attempt = 1; ; attempt++) {
      try {
        // Appending a chunk is idempotent, so a retry after a lost answer cannot duplicate lines.
        await this.options.store.append(lines);
        return;
      } catch (err) {
        if (attempt >= 5) {
          this.writeError = err as Error;
          this.options.logger.error({ err: (err as Error).message, lines: lines.length }, 'cannot persist job lines');
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  /** Flushes everything; rejects if some lines could not be persisted. */
  async close(): Promise<number> {
    clearTimeout(this.timer);
    await this.flush();
    if (this.writeError) throw new Error(`job lines could not be persisted: ${this.writeError.message}`);
    return this.seq;
  }
}
