import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Config, decodePolicy, type JobLimitsPolicy, type Models } from '@pds/shared';
import type { JobLimits, SlotUsage } from './cgroups.js';

const MIB = 1024 * 1024;

/** A job's limits: its cgroup's, and what it may write in its folders. */
export interface JobLimitsAll extends JobLimits {
  diskBytes: number;
}

/** What a job used and the limits it ran under, as the job's view shows them. */
export type { JobUsage } from '@pds/shared';

/** How long a tenant's limits are kept: a changed policy holds for jobs that start this much later at most. */
const POLICY_CACHE_MS = 30_000;
const tenantLimits = new Map<string, { limits: JobLimitsPolicy; until: number }>();

/** A tenant's `jobLimits`, read at most every POLICY_CACHE_MS. */
async function tenantJobLimits(models: Pick<Models, 'Tenant'>, tenant: string): Promise<JobLimitsPolicy> {
  const cached = tenantLimits.get(tenant);
  if (cached && cached.until > Date.now()) return cached.limits;
  const doc = await models.Tenant.findById(tenant, { policy: 1 }).lean<{ policy?: string }>();
  const limits = decodePolicy(doc?.policy).jobLimits ?? {};
  if (tenantLimits.size > 10_000) tenantLimits.clear(); // bounded: tenants are few, names are not checked here
  tenantLimits.set(tenant, { limits, until: Date.now() + POLICY_CACHE_MS });
  return limits;
}

/** The runner's defaults, each lowered by the tenant's policy (`jobLimits`) where it says less. */
export async function jobLimitsOf(
  config: Pick<Config, 'JOB_MEMORY_MAX_MB' | 'JOB_CPUS' | 'JOB_PIDS_MAX' | 'JOB_DISK_MAX_MB'>,
  models: Pick<Models, 'Tenant'>,
  tenant: string,
): Promise<JobLimitsAll> {
  const policy = await tenantJobLimits(models, tenant);
  const lower = (own: number, tenants?: number) => (tenants === undefined ? own : Math.min(own, tenants));
  return {
    memoryBytes: lower(config.JOB_MEMORY_MAX_MB, policy.memoryMb) * MIB,
    cpus: lower(config.JOB_CPUS, policy.cpus),
    pids: lower(config.JOB_PIDS_MAX, policy.pids),
    diskBytes: lower(config.JOB_DISK_MAX_MB, policy.diskMb) * MIB,
  };
}

/** Why a failed job failed when a limit of its sandbox did it: the kernel's OOM killer, refused forks. */
export function limitReached(
  usage: SlotUsage,
  limits: JobLimitsAll,
): { reason: 'memory_limit' | 'process_limit'; error: string } | undefined {
  if (usage.oomKills > 0) {
    return {
      reason: 'memory_limit',
      error: `the job used all of its memory (${limits.memoryBytes / MIB} MiB): the kernel stopped ${usage.oomKills} of its processes (limit: JOB_MEMORY_MAX_MB, or the tenant policy's jobLimits.memoryMb)`,
    };
  }
  if (usage.forksRefused > 0) {
    return {
      reason: 'process_limit',
      error: `the job reached its limit of ${limits.pids} processes and threads: ${usage.forksRefused} were refused (limit: JOB_PIDS_MAX, or the tenant policy's jobLimits.pids)`,
    };
  }
  return undefined;
}

/** How often a job's folders and its cgroup's refused forks are looked at. */
const WATCH_MS = 1_000;

/** The limits a running job is stopped at once for: its disk, and its processes (a job at pids.max may hang rather than fail). */
export type WatchedLimit = 'disk_limit' | 'process_limit';

/**
 * Looks at a running job every second: what it has written in its folders since it began, and whether its cgroup
 * refused a fork. Past its disk limit, or at its process limit, it aborts (`signal`, reason
 * `disk_limit` or `process_limit`) and the job is killed at once and ends failed. A single file
 * larger than the disk limit is refused by the kernel already (RLIMIT_FSIZE), so between two looks
 * a job can overshoot by what it writes in a second.
 */
export class LimitWatch {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private looking = false;
  /** What the folders held when the job began (its stack's history, its local files): only growth counts. */
  private readonly before: Promise<number>;

  constructor(
    private readonly dirs: readonly string[],
    private readonly limits: JobLimitsAll,
    private readonly usage: () => Promise<SlotUsage>,
  ) {
    this.before = this.measure(Number.POSITIVE_INFINITY).catch(() => Number.POSITIVE_INFINITY);
    this.timer = setInterval(() => void this.look(), WATCH_MS);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The limit the job was stopped for, if any. */
  get reached(): WatchedLimit | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as WatchedLimit) : undefined;
  }

  private async look(): Promise<void> {
    if (this.looking || this.reached) return;
    this.looking = true;
    try {
      if ((await this.usage()).forksRefused > 0) return this.controller.abort('process_limit');
      // Folders too large to measure at the start (over MAX_ENTRIES) are left to RLIMIT_FSIZE.
      const before = await this.before;
      if (!Number.isFinite(before)) return;
      if ((await this.measure(before + this.limits.diskBytes + 1)) - before > this.limits.diskBytes) this.controller.abort('disk_limit');
    } catch {
      // a look that failed (a folder gone under it) is followed by the next
    } finally {
      this.looking = false;
    }
  }

  /** The bytes under the job's folders, counted until `enough` is passed. */
  private async measure(enough: number): Promise<number> {
    let total = 0;
    for (const dir of this.dirs) total += await sizeOf(dir, enough - total);
    return total;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** What the job's error says when it was stopped for `limit`. */
  error(limit: WatchedLimit): string {
    return limit === 'disk_limit'
      ? `the job wrote more than its ${this.limits.diskBytes / MIB} MiB into its folders and was stopped (limit: JOB_DISK_MAX_MB, or the tenant policy's jobLimits.diskMb)`
      : `the job reached its limit of ${this.limits.pids} processes and threads and was stopped (limit: JOB_PIDS_MAX, or the tenant policy's jobLimits.pids)`;
  }
}

/** What one entry costs at least (an inode and its block): a million empty files fill a disk's inodes. */
const ENTRY_BYTES = 4096;
/** The most entries one look walks: past it the folders count as over any limit (the walk stays cheap). */
const MAX_ENTRIES = 200_000;

/**
 * The bytes under `dir` (links not followed, folders included, each entry at least ENTRY_BYTES),
 * counted until `enough` is passed.
 */
async function sizeOf(dir: string, enough: number): Promise<number> {
  let total = 0;
  let entries = 0;
  const pending = [dir];
  while (pending.length > 0 && total < enough) {
    const current = pending.pop() as string;
    for (const entry of await readdir(current, { withFileTypes: true }).catch(() => [])) {
      if (++entries > MAX_ENTRIES) return Number.POSITIVE_INFINITY;
      const path = join(current, entry.name);
      if (entry.isDirectory()) pending.push(path);
      const allocated = ((await lstat(path).catch(() => undefined))?.blocks ?? 0) * 512; // allocated, as a disk fills
      total += Math.max(ENTRY_BYTES, allocated);
    }
  }
  return total;
}
