import type { Redis } from 'ioredis';
import { RUNNING_JOBS_KEY } from './names.js';

/**
 * The jobs runners have taken, scored by when: where the reconciler looks for jobs lost with their
 * runner. Asking the store instead (`{status: 'running'}`) is a scan of every job ever run on
 * FerretDB 1.x, which pushes down nothing but `_id`: 100,000 jobs made every store call of the
 * service 5-10x slower (docs/benchmarks.md). A runner adds a job when it takes it (after its first
 * heartbeat) and removes it when done; an entry left by a dead runner is what the reconciler finds.
 */
export class RunningJobs {
  constructor(private readonly redis: Pick<Redis, 'zadd' | 'zrem' | 'zrangebyscore'>) {}

  async add(jobId: string, at = Date.now()): Promise<void> {
    await this.redis.zadd(RUNNING_JOBS_KEY, at, jobId);
  }

  async remove(jobId: string): Promise<void> {
    await this.redis.zrem(RUNNING_JOBS_KEY, jobId);
  }

  /** Jobs taken before `cutoff`, oldest first, at most `limit`. */
  takenBefore(cutoff: Date, limit = 1_000): Promise<string[]> {
    return this.redis.zrangebyscore(RUNNING_JOBS_KEY, '-inf', cutoff.getTime(), 'LIMIT', 0, limit);
  }
}
