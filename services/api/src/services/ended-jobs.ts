import { JOB_AMENDED_CHANNEL, LruCache } from '@pds/shared';
import type { Redis } from 'ioredis';

/** How long a cached view is served at most, should an announcement of a change have been lost. */
export const ENDED_VIEW_MAX_AGE_MS = 60_000;

/**
 * Views of ended jobs, so that polling an ended job costs no store read. An ended job can still
 * change (its recovery and retry, a compensating job, its lines swept, its deletion): every such
 * write is announced on JOB_AMENDED_CHANNEL (`amendJob`), and the view is dropped here. Views are
 * kept only while the subscription is up (everything is dropped when it goes, nothing is kept until
 * it is back), and one read while an announcement arrived is not kept (`epoch`): a view read before
 * a change and stored after its announcement would otherwise stay.
 */
export class EndedJobViews<V> {
  private readonly views: LruCache<string, { view: V; at: number }>;
  /** Moves on every announcement and every loss of the subscription. */
  private epoch = 0;
  private listening = false;
  private readonly onMessage = (channel: string, id: string) => {
    if (channel !== JOB_AMENDED_CHANNEL) return;
    this.epoch++;
    this.views.delete(id);
  };
  private readonly onDown = () => {
    this.listening = false;
    this.epoch++;
    this.views.clear();
  };
  /** (Re)subscribes: ioredis reports `ready` before its own resubscription is done. */
  private readonly onReady = () => {
    void this.subscriber?.subscribe(JOB_AMENDED_CHANNEL).then(
      () => {
        if (this.subscriber?.status === 'ready') this.listening = true;
      },
      () => this.onDown(),
    );
  };

  constructor(
    private readonly subscriber: Redis | undefined,
    capacity = 10_000,
    private readonly maxAgeMs = ENDED_VIEW_MAX_AGE_MS,
  ) {
    this.views = new LruCache(capacity);
  }

  /** Subscribes; without a subscriber (or until it answers) nothing is cached. */
  async start(): Promise<void> {
    if (!this.subscriber) return;
    this.subscriber.on('message', this.onMessage);
    this.subscriber.on('close', this.onDown);
    this.subscriber.on('ready', this.onReady);
    await this.subscriber.subscribe(JOB_AMENDED_CHANNEL).then(
      () => {
        this.listening = this.subscriber?.status === 'ready';
      },
      () => this.onDown(),
    );
  }

  async stop(): Promise<void> {
    if (!this.subscriber) return;
    this.onDown();
    this.subscriber.off('message', this.onMessage);
    this.subscriber.off('close', this.onDown);
    this.subscriber.off('ready', this.onReady);
    // A subscriber waits for Redis through an outage: closing never waits for it.
    if (this.subscriber.status === 'ready') void this.subscriber.unsubscribe(JOB_AMENDED_CHANNEL).catch(() => undefined);
  }

  get(id: string): V | undefined {
    const entry = this.views.get(id);
    if (!entry) return undefined;
    if (Date.now() - entry.at > this.maxAgeMs) {
      this.views.delete(id);
      return undefined;
    }
    return entry.view;
  }

  /** A token to pass to `set`: taken before the store is read. */
  mark(): number {
    return this.epoch;
  }

  /** Keeps a view read after `mark()`, unless something was announced (or the subscription dropped) since. */
  set(id: string, view: V, mark: number): void {
    if (this.listening && mark === this.epoch) this.views.set(id, { view, at: Date.now() });
  }

  get size(): number {
    return this.views.size;
  }
}
