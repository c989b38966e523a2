import { type ChannelMessage, jobChannel, type LineMessage, type LineStream, type Logger, type Models } from '@pds/shared';
import type { Redis } from 'ioredis';

export interface LineSinkOptions {
  jobId: string;
  publisher: Pick<Redis, 'publish'>;
  lines: Models['JobLine'];
  logger: Logger;
  /** A batch is written when it reaches this many lines … */
  batchSize?: number;
  /** … or when its oldest line is this old. */
  batchMs?: number;
}

/**
 * Numbers a job's lines and events (seq 1, 2, 3 … without holes), publishes each at once on the
 * job's channel (never awaiting Redis per line) and persists them in ordered batches, one write
 * at a time, so Mongo holds a prefix of the sequence at every moment.
 */
export class LineSink {
  private seq = 0;
  private batch: LineMessage[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private writeError: Error | undefined;
  private readonly batchSize: number;
  private readonly batchMs: number;

  constructor(private readonly options: LineSinkOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.batchMs = options.batchMs ?? 100;
  }

  get lastSeq(): number {
    return this.seq;
  }

  line(stream: Exclude<LineStream, 'event'>, text: string): void {
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
    if (this.batch.length >= this.batchSize) this.flushSoon(0);
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
    if (batch.length === 0) return this.writing;
    this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  private async write(batch: LineMessage[]): Promise<void> {
    const docs = batch.map(({ jobId, seq, stream, text, event, ts }) => ({ jobId, seq, stream, text, event, ts: new Date(ts) }));
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.lines.insertMany(docs, { ordered: true, lean: true });
        return;
      } catch (err) {
        // A retry after a partial write hits the unique (jobId, seq) index for what already landed.
        if ((err as { code?: number }).code === 11000) {
          const landed = await this.options.lines
            .find({ jobId: this.options.jobId, seq: { $in: docs.map((d) => d.seq) } }, { seq: 1 })
            .lean();
          const have = new Set(landed.map((d) => d.seq));
          docs.splice(0, docs.length, ...docs.filter((d) => !have.has(d.seq)));
          if (docs.length === 0) return;
        }
        if (attempt >= 5) {
          this.writeError = err as Error;
          this.options.logger.error({ err: (err as Error).message, lines: docs.length }, 'cannot persist job lines');
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
