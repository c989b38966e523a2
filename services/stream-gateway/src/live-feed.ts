import type { ChannelMessage, EndMessage } from '@pds/shared';
import type { LineCursor } from './line-cursor.js';
import type { StreamMessage } from './job-stream.js';

/** Runs async work one item at a time, in the order given; knows whether any is still pending. */
class SerialWork {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(private readonly onError: (err: Error) => void) {}

  get idle(): boolean {
    return this.pending === 0;
  }

  add(work: () => Promise<void>): void {
    this.pending++;
    this.chain = this.chain
      .then(work)
      .finally(() => this.pending--)
      .catch(this.onError);
  }

  drained(): Promise<void> {
    return this.chain;
  }
}

/**
 * One client's live messages of one job. Held while the replay runs, then handled one at a time in
 * order: a line ahead of the cursor waits for the hole before it to be filled, a line already sent
 * is dropped, and the end message goes out after every line it counts. `onOver` is called once the
 * stream is over (ended, or failed with an error message sent).
 */
export class LiveFeed {
  private ended = false;
  private replaying = true;
  private readonly held: ChannelMessage[] = [];
  private readonly work: SerialWork;

  constructor(
    private readonly jobId: string,
    private readonly cursor: LineCursor,
    private readonly send: (message: StreamMessage, raw?: string) => void,
    private readonly signal: AbortSignal,
    private readonly onOver: () => void,
  ) {
    this.work = new SerialWork((err) => this.fail(err));
  }

  /** A message from the job's channel. */
  receive(message: ChannelMessage, raw: string): void {
    if (this.replaying) {
      this.held.push(message);
      return;
    }
    // The common case while tailing: the next line, nothing pending. Forward the published text.
    const tailing = this.work.idle && !this.ended && message.type !== 'end' && message.type !== 'status';
    if (tailing && this.cursor.offer(message, raw)) return;
    this.work.add(() => this.handle(message));
  }

  /** The replay is done: what was held goes first, then live messages as they come. */
  goLive(): void {
    this.work.add(async () => {
      this.replaying = false;
      for (const message of this.held.splice(0)) await this.handle(message);
    });
  }

  /** Ends the stream with `message` after the work before it (an end found by reading the job). */
  endLater(message: EndMessage): void {
    this.work.add(() => this.end(message));
  }

  /** Sends every line `message` counts, then `message`; once. */
  async end(message: EndMessage): Promise<void> {
    if (this.ended) return;
    await this.cursor.fillTo(message.lastSeq);
    this.ended = true;
    this.send(message);
    this.onOver();
  }

  drained(): Promise<void> {
    return this.work.drained();
  }

  private async handle(message: ChannelMessage): Promise<void> {
    if (this.ended || this.signal.aborted) return;
    if (message.type === 'end') return this.end(message);
    if (message.type === 'status') return this.send(message);
    if (message.seq < this.cursor.next) return; // already sent during the replay
    if (message.seq > this.cursor.next) await this.cursor.fillTo(message.seq - 1);
    this.cursor.offer(message);
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.send({ type: 'error', jobId: this.jobId, code: 1011, message: err.message });
    this.onOver();
  }
}
