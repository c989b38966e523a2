import { type ChannelMessage, jobChannel, type Logger } from '@pds/shared';
import type { Redis } from 'ioredis';

type Listener = (message: ChannelMessage) => void;

/**
 * One Redis subscription per job per gateway process, however many clients watch it: messages are
 * parsed once and fanned out in-process. The subscription ends when the last listener leaves.
 */
export class SubscriptionHub {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(
    private readonly subscriber: Redis,
    private readonly logger: Logger,
  ) {
    subscriber.on('message', (channel: string, raw: string) => {
      const set = this.listeners.get(channel);
      if (!set) return;
      let message: ChannelMessage;
      try {
        message = JSON.parse(raw) as ChannelMessage;
      } catch {
        this.logger.warn({ channel }, 'dropping a message that is not JSON');
        return;
      }
      for (const listener of set) listener(message);
    });
  }

  /** Number of channels this process is subscribed to. */
  get subscriptions(): number {
    return this.listeners.size;
  }

  /** Resolves once Redis confirmed the subscription, so nothing published after that is missed. */
  async subscribe(jobId: string, listener: Listener): Promise<() => Promise<void>> {
    const channel = jobChannel(jobId);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.pending.set(channel, this.subscriber.subscribe(channel));
    }
    set.add(listener);
    await this.pending.get(channel);
    return async () => {
      const current = this.listeners.get(channel);
      if (!current?.delete(listener) || current.size > 0) return;
      this.listeners.delete(channel);
      this.pending.delete(channel);
      await this.subscriber.unsubscribe(channel).catch(() => undefined);
    };
  }
}
