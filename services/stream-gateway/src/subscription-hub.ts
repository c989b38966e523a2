import { type ChannelMessage, jobChannel, type LineMessage, type Logger, redisReady } from '@pds/shared';
import type { Redis } from 'ioredis';

/** Gets each message parsed, and its JSON text as published (to forward without serializing again). */
type Listener = (message: ChannelMessage, raw: string) => void;

/** How many recent lines per watched job a gateway process keeps in memory for gap filling… */
const RECENT_LINES = 8192;
/** …and how many bytes of them at most (JSON as published), whatever their number. */
export const RECENT_BYTES = 4 * 1024 * 1024;

interface Channel {
  listeners: Set<Listener>;
  ready: Promise<unknown>;
  /** Recent line/event messages by seq, oldest first (Map keeps insertion order), with their sizes. */
  recent: Map<number, { message: LineMessage; bytes: number }>;
  /** The bytes `recent` holds. */
  recentBytes: number;
}

/**
 * One Redis subscription per job per gateway process, however many clients watch it: messages are
 * parsed once and fanned out in-process. The hub also remembers the job's recent lines, so a client
 * that must fill a hole (lines published before it subscribed, not yet persisted) usually finds
 * them here instead of asking MongoDB. The subscription ends when the last listener leaves.
 */
export class SubscriptionHub {
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly subscriber: Redis,
    private readonly logger: Logger,
  ) {
    subscriber.on('message', (name: string, raw: string) => {
      const channel = this.channels.get(name);
      if (!channel) return;
      let message: ChannelMessage;
      try {
        message = JSON.parse(raw) as ChannelMessage;
      } catch {
        this.logger.warn({ channel: name }, 'dropping a message that is not JSON');
        return;
      }
      if (message.type === 'line' || message.type === 'event') this.remember(channel, message, raw.length);
      for (const listener of channel.listeners) listener(message, raw);
    });
  }

  /** Keeps a message for gap filling, forgetting the oldest past the count or byte bound. */
  private remember(channel: Channel, message: LineMessage, bytes: number): void {
    channel.recentBytes += bytes - (channel.recent.get(message.seq)?.bytes ?? 0); // a seq delivered again replaces itself
    channel.recent.set(message.seq, { message, bytes });
    while (channel.recent.size > RECENT_LINES || channel.recentBytes > RECENT_BYTES) {
      const [oldest, entry] = channel.recent.entries().next().value as [number, { bytes: number }];
      channel.recent.delete(oldest);
      channel.recentBytes -= entry.bytes;
    }
  }

  /** The bytes of recent messages held for a job (for tests and metrics). */
  recentBytes(jobId: string): number {
    return this.channels.get(jobChannel(jobId))?.recentBytes ?? 0;
  }

  /** Number of channels this process is subscribed to. */
  get subscriptions(): number {
    return this.channels.size;
  }

  /** The contiguous run of remembered messages from `fromSeq` up to `toSeq` (may be empty). */
  recent(jobId: string, fromSeq: number, toSeq: number): LineMessage[] {
    const recent = this.channels.get(jobChannel(jobId))?.recent;
    const out: LineMessage[] = [];
    for (let seq = fromSeq; seq <= toSeq; seq++) {
      const entry = recent?.get(seq);
      if (!entry) break;
      out.push(entry.message);
    }
    return out;
  }

  /** Resolves once Redis confirmed the subscription, so nothing published after that is missed. */
  async subscribe(jobId: string, listener: Listener): Promise<() => Promise<void>> {
    const name = jobChannel(jobId);
    let channel = this.channels.get(name);
    if (!channel) {
      channel = {
        listeners: new Set(),
        recent: new Map(),
        recentBytes: 0,
        // SUBSCRIBE only on a ready connection: queued before ioredis's ready check, it puts the
        // connection in subscriber mode first and the check (INFO) fails, dropping the connection.
        ready: redisReady(this.subscriber).then(() => this.subscriber.subscribe(name)),
      };
      this.channels.set(name, channel);
    }
    channel.listeners.add(listener);
    try {
      await channel.ready;
    } catch (err) {
      // Redis refused the SUBSCRIBE: this watcher goes, and so does the channel, so that the next
      // watcher of the job subscribes afresh rather than inherit the failure.
      channel.listeners.delete(listener);
      if (this.channels.get(name) === channel) this.channels.delete(name);
      throw err;
    }
    return async () => {
      const current = this.channels.get(name);
      if (!current?.listeners.delete(listener) || current.listeners.size > 0) return;
      this.channels.delete(name);
      await this.subscriber.unsubscribe(name).catch(() => undefined);
    };
  }
}
