import { type LineMessage, type LineStore, type StoredLine } from '@pds/shared';
import type { SubscriptionHub } from './subscription-hub.js';

const PAGE = 4096;

export function toLineMessage(jobId: string, line: StoredLine | LineMessage): LineMessage {
  const { seq, stream, text, event, ts } = line;
  return stream === 'event' ? { type: 'event', jobId, seq, stream, event, ts } : { type: 'line', jobId, seq, stream, text, ts };
}

export interface LineSource {
  jobId: string;
  store: LineStore;
  hub: SubscriptionHub;
  signal: AbortSignal;
  /** How long to wait for a line that was published but is not persisted yet. */
  fillTimeoutMs: number;
}

/**
 * Where one client is in one job's lines: `next` is the first seq not sent yet. Every line goes out
 * once and in order, whichever way it came (the persisted replay, the hub's memory, a live message).
 */
export class LineCursor {
  private nextSeq: number;

  constructor(
    private readonly source: LineSource,
    from: number,
    private readonly send: (message: LineMessage, raw?: string) => void,
  ) {
    this.nextSeq = from + 1;
  }

  get next(): number {
    return this.nextSeq;
  }

  /** Sends `message` when it is the next line (true), else leaves it to the caller (false). */
  offer(message: LineMessage, raw?: string): boolean {
    if (message.seq !== this.nextSeq) return false;
    this.send(message, raw);
    this.nextSeq++;
    return true;
  }

  /** Sends what is persisted from `next` on, stopping at the first hole (no waiting). */
  async replayPersisted(): Promise<void> {
    const { jobId, store, signal } = this.source;
    for (;;) {
      const lines = await store.read(jobId, this.nextSeq - 1, PAGE);
      for (const line of lines) if (!this.offer(toLineMessage(jobId, line))) return;
      if (lines.length < PAGE || signal.aborted) return;
    }
  }

  /**
   * Sends every line up to `untilSeq`: from the hub's memory when it has them, else from the store,
   * waiting (with backoff) for the runner's batches to land; throws when a line never does.
   */
  async fillTo(untilSeq: number): Promise<void> {
    const { jobId, store, hub, signal } = this.source;
    const deadline = Date.now() + this.source.fillTimeoutMs;
    let pause = 10;
    while (this.nextSeq <= untilSeq && !signal.aborted) {
      const remembered = hub.recent(jobId, this.nextSeq, untilSeq);
      const lines =
        remembered.length > 0 ? remembered : await store.read(jobId, this.nextSeq - 1, Math.min(PAGE, untilSeq - this.nextSeq + 1));
      let progressed = false;
      for (const line of lines) {
        // A hole (published but not persisted yet) stops the pass.
        if (line.seq > untilSeq || !this.offer(toLineMessage(jobId, line))) break;
        progressed = true;
      }
      if (progressed) {
        pause = 10;
      } else {
        if (Date.now() > deadline) throw new Error(`line ${this.nextSeq} of job ${jobId} was never persisted`);
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 250);
      }
    }
  }
}
