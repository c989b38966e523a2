import { createLogger, createRedis, JOB_AMENDED_CHANNEL, jobChannel, redisReady } from '@pds/shared';
import type { Redis } from 'ioredis';

const JOB_CHANNEL_PREFIX = jobChannel('');

/**
 * What the service announces about jobs, heard on one Redis subscription: each job's `status` and
 * `end` messages (its lines are skipped unparsed) and the ids of ended jobs written to afterwards
 * (JOB_AMENDED_CHANNEL). A test waits on these rather than polling the store.
 */
export class JobWatch {
  private readonly listeners = new Map<string, Set<() => void>>();

  private constructor(private readonly redis: Redis) {
    redis.on('pmessage', (_pattern: string, channel: string, text: string) => {
      if (text.startsWith('{"type":"status"') || text.startsWith('{"type":"end"')) this.wake(channel.slice(JOB_CHANNEL_PREFIX.length));
    });
    redis.on('message', (channel: string, jobId: string) => {
      if (channel === JOB_AMENDED_CHANNEL) this.wake(jobId);
    });
  }

  static async open(redisUrl: string): Promise<JobWatch> {
    const redis = createRedis(redisUrl, 'subscriber', createLogger({ name: 'job-watch', level: 'silent' }));
    await redisReady(redis);
    await redis.psubscribe(jobChannel('*'));
    await redis.subscribe(JOB_AMENDED_CHANNEL);
    return new JobWatch(redis);
  }

  /** Calls `listener` on each announcement about the job, until the returned function is called. */
  on(jobId: string, listener: () => void): () => void {
    const set = this.listeners.get(jobId) ?? new Set();
    this.listeners.set(jobId, set.add(listener));
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(jobId);
    };
  }

  close(): Promise<unknown> {
    return this.redis.quit();
  }

  private wake(jobId: string): void {
    for (const listener of this.listeners.get(jobId) ?? []) listener();
  }
}
