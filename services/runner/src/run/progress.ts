import type { Redis } from 'ioredis';
import { jobProgressKey, type Progress, stackSizeKey } from '@pds/shared';

const PROVIDER_TYPE_PREFIX = 'pulumi:providers:';

/**
 * Counts steps from the compact engine events as they come. Pulumi announces no total before it
 * starts, so the estimate is the number of resources the stack held after its last run (remembered
 * per stack); a stack's first run shows counts without a percentage.
 */
export class ProgressTracker {
  private started = 0;
  private done = 0;
  private failed = 0;

  constructor(private readonly expected: number | undefined) {}

  /** The progress after this event (for resource steps and the summary), or undefined for other events. */
  update(event: Record<string, unknown>): Progress | undefined {
    if (event.kind === 'resource') {
      // Provider steps are not counted, as in Pulumi's own summary (which the total comes from).
      if (String(event.type).startsWith(PROVIDER_TYPE_PREFIX)) return undefined;
      if (event.state === 'started') this.started++;
      else if (event.state === 'done') this.done++;
      else if (event.state === 'failed') this.failed++;
      return this.snapshot(false);
    }
    if (event.kind === 'summary') return this.snapshot(true);
    return undefined;
  }

  private snapshot(ended: boolean): Progress {
    const progress: Progress = { started: this.started, done: this.done, failed: this.failed };
    if (ended) return { ...progress, total: this.started, percent: 100 };
    if (this.expected === undefined || this.expected === 0) return progress;
    const total = Math.max(this.expected, this.started);
    return { ...progress, total, percent: Math.min(99, Math.floor(((this.done + this.failed) * 100) / total)) };
  }
}

/**
 * How many resources a stack holds after an operation, from its summary: every step but the
 * deletes (a destroy leaves none). Undefined when the operation did not complete, or changes no
 * state (a preview).
 */
export function resourcesAfter(operation: string, summary: Record<string, number> | undefined): number | undefined {
  if (operation === 'preview' || !summary || Object.keys(summary).length === 0) return undefined;
  if (operation === 'destroy') return 0;
  return Object.entries(summary).reduce((sum, [op, count]) => (op === 'delete' ? sum : sum + count), 0);
}

/** The remembered size of each stack (Redis; an estimate, so losing it only loses a percentage). */
export class StackSizes {
  constructor(private readonly redis: Pick<Redis, 'get' | 'set'>) {}

  async get(stackFqdn: string): Promise<number | undefined> {
    const value = await this.redis.get(stackSizeKey(stackFqdn)).catch(() => null);
    return value === null ? undefined : Number(value);
  }

  async set(stackFqdn: string, resources: number): Promise<void> {
    // A hint for progress percentages only: without it the next run shows counts without a total.
    await this.redis.set(stackSizeKey(stackFqdn), String(resources), 'EX', 90 * 24 * 3600).catch(() => undefined);
  }
}

/**
 * Where a running job's latest progress is kept for readers of the job (the API), written at most
 * every `intervalMs` per job (the latest value wins; the last one is written after the interval).
 */
export class ProgressBoard {
  private readonly latest = new Map<string, Progress>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastWrite = new Map<string, number>();

  constructor(
    private readonly redis: Pick<Redis, 'set' | 'del'>,
    private readonly intervalMs = 500,
  ) {}

  record(jobId: string, progress: Progress): void {
    this.latest.set(jobId, progress);
    if (this.timers.has(jobId)) return;
    const wait = Math.max(0, (this.lastWrite.get(jobId) ?? 0) + this.intervalMs - Date.now());
    this.timers.set(
      jobId,
      setTimeout(() => this.write(jobId), wait),
    );
  }

  /** The job ended: its progress is gone (the job's summary says the rest). */
  async clear(jobId: string): Promise<void> {
    clearTimeout(this.timers.get(jobId));
    this.timers.delete(jobId);
    this.latest.delete(jobId);
    this.lastWrite.delete(jobId);
    await this.redis.del(jobProgressKey(jobId)).catch(() => undefined); // readers show progress only while running; it expires anyway
  }

  private write(jobId: string): void {
    this.timers.delete(jobId);
    const progress = this.latest.get(jobId);
    if (!progress) return;
    this.latest.delete(jobId);
    this.lastWrite.set(jobId, Date.now());
    // Expires on its own if the runner dies; a lost write only makes the figure a little older.
    void this.redis.set(jobProgressKey(jobId), JSON.stringify(progress), 'PX', 10 * 60_000).catch(() => undefined);
  }
}
