/**
 * Every queue name, Redis key and pub/sub channel the services share. Nothing else spells them.
 */

/** The BullMQ queue that carries stack jobs; the BullMQ job id is the stack job's id. */
export const STACK_JOBS_QUEUE = 'stack-jobs';

/** The BullMQ queue whose job schedulers fire drift checks (one scheduler per resource, its id the resource's). */
export const DRIFT_QUEUE = 'drift-schedules';

/** The BullMQ queue of webhook work: fanning an event out to a tenant's webhooks, and each delivery. */
export const WEBHOOKS_QUEUE = 'webhooks';
/** What follows a job's end (lifecycle/after-end.ts): every path that ends a job queues it, runners work it. */
export const JOB_LIFECYCLE_QUEUE = 'job-lifecycle';

const PREFIX = 'pds';

/** Pub/sub channel on which a job's lines, events and end message are published. */
export function jobChannel(jobId: string): string {
  return `${PREFIX}:job:${jobId}`;
}

/** Key of the lock that serialises operations on one stack (value `<jobId>:<fencing token>`). */
export function stackLockKey(stackFqdn: string): string {
  return `${PREFIX}:stack:${stackFqdn}:lock`;
}

/** Sorted set of the stack's jobs that wait for it, in creation order. */
export function stackWaitingKey(stackFqdn: string): string {
  return `${PREFIX}:stack:${stackFqdn}:waiting`;
}

/** Counter that hands out the stack's fencing tokens. */
export function stackFenceKey(stackFqdn: string): string {
  return `${PREFIX}:stack:${stackFqdn}:fence`;
}

/** Set when a run on the stack was lost: Pulumi's own lock may be stale and must be cleared first. */
export function stackDirtyKey(stackFqdn: string): string {
  return `${PREFIX}:stack:${stackFqdn}:dirty`;
}

/** How many resources the stack held after its last completed run (for progress percentages). */
export function stackSizeKey(stackFqdn: string): string {
  return `${PREFIX}:stack:${stackFqdn}:size`;
}

/** Counter that orders jobs by creation across every API process. */
export const JOB_ORDER_KEY = `${PREFIX}:jobs:order`;

/**
 * The job list's index (job-list-index.ts): sorted sets of job ids scored by creation time, one of
 * every job, one per tenant and one per resource; and the mark that they hold the whole store.
 */
export function jobListKey(scope: { tenant: string } | { resource: string } | 'all'): string {
  if (scope === 'all') return `${PREFIX}:jobs:list:all`;
  return 'tenant' in scope ? `${PREFIX}:jobs:list:tenant:${scope.tenant}` : `${PREFIX}:jobs:list:resource:${scope.resource}`;
}
/** Set once the index holds every job of the store (a build finished). */
export const JOB_LIST_COMPLETE_KEY = `${PREFIX}:jobs:list:complete`;
/** Held by the one process filling the job list's index from the store. */
export const JOB_LIST_BUILD_LOCK_KEY = `${PREFIX}:jobs:list:building`;

/** The jobs runners have taken, scored by when (RunningJobs): what the reconciler reads. */
export const RUNNING_JOBS_KEY = `${PREFIX}:jobs:running`;

/** A slot uid's fleet-wide lease (value: the runner holding it), renewed with the runner's beat. */
export function uidLeaseKey(uid: number): string {
  return `${PREFIX}:uid-lease:${uid}`;
}

/** Channel on which the API asks every runner to cancel a running job (message: the job id). */
export const CANCEL_CHANNEL = `${PREFIX}:cancel`;

/** Channel on which a write to a job that may have ended is announced (message: the job id), so views cached of it are dropped. */
export const JOB_AMENDED_CHANNEL = `${PREFIX}:jobs:amended`;

/** A running job's heartbeat (expires when its runner stops renewing it). */
export function jobHeartbeatKey(jobId: string): string {
  return `${PREFIX}:job:${jobId}:heartbeat`;
}

/** A running job's latest progress (JSON), for `GET /v1/jobs/:id`; expires if its runner stops. */
export function jobProgressKey(jobId: string): string {
  return `${PREFIX}:job:${jobId}:progress`;
}

/** Taken by the one reconciler that ends a lost job. */
export function jobLostClaimKey(jobId: string): string {
  return `${PREFIX}:job:${jobId}:lost`;
}

/** Set once by whoever moves a job out of `queued` (a runner starting it, or the API cancelling it). */
export function jobClaimKey(jobId: string): string {
  return `${PREFIX}:job:${jobId}:claim`;
}

/** What an `Idempotency-Key` of a caller was first used for (job creation); kept 24 h. */
export function idempotencyKey(principalId: string, key: string): string {
  return `${PREFIX}:idempotency:${principalId}:${key}`;
}

/** A stream ticket not yet used (JSON: principal, token hash, what it opens), by the ticket's SHA-256; 60 s. */
export function streamTicketKey(ticketHash: string): string {
  return `${PREFIX}:stream-ticket:${ticketHash}`;
}

/** Taken by the one runner that sweeps old history at a time (shared/src/history-sweep.ts). */
export const HISTORY_SWEEP_LOCK_KEY = `${PREFIX}:history-sweep:lock`;

/** A sorted set of a tenant's running jobs (member: job id, score: when its hold expires): `maxConcurrentJobs`. */
export function tenantRunningKey(tenant: string): string {
  return `${PREFIX}:tenant:${tenant}:running`;
}

/** Who waits for the runner pool (shared/src/dispatch): a job's class. People's jobs go before the service's own checks. */
export type JobClass = 'people' | 'checks';
export const JOB_CLASSES: readonly JobClass[] = ['people', 'checks'];

/** A tenant's jobs of one class that wait for the dispatcher, in creation order (score: JOB_ORDER_KEY). */
export function tenantWaitingKey(jobClass: JobClass, tenant: string): string {
  return `${PREFIX}:jobs:waiting:${jobClass}:${tenant}`;
}

/** The tenants with jobs of one class waiting for the dispatcher. */
export function waitingTenantsKey(jobClass: JobClass): string {
  return `${PREFIX}:jobs:waiting-tenants:${jobClass}`;
}

/** What the dispatcher puts on the runner queue for each waiting job (hash: job id → JSON), until it is there. */
export const WAITING_ENTRIES_KEY = `${PREFIX}:jobs:waiting-entries`;

/** Jobs the dispatcher took and is putting on the runner queue (score: when taken): finished by any dispatcher should one die. */
export const DISPATCHING_KEY = `${PREFIX}:jobs:dispatching`;

/** One entry per job waiting for the dispatcher: the backlog an autoscaler (KEDA) watches by its length. */
export const JOBS_BACKLOG_LIST = `${PREFIX}:jobs:backlog`;

/** Set when the dispatcher hands a job to the runner queue (until it takes its stack or leaves the line; 31 days at most): the next in its stack's line waits for it. */
export function jobDispatchedKey(jobId: string): string {
  return `${PREFIX}:job:${jobId}:dispatched`;
}

/** The one dispatcher that leads (value: its process), renewed while it lives. */
export const DISPATCHER_LEADER_KEY = `${PREFIX}:jobs:dispatcher`;

/** The runners alive (score: when their registration expires) and their slots (hash): the pool's size. */
export const RUNNERS_KEY = `${PREFIX}:jobs:runners`;
export const RUNNER_SLOTS_KEY = `${PREFIX}:jobs:runner-slots`;

/** Channel that wakes the dispatcher: a job waits, a slot or a stack was freed. */
export const DISPATCH_CHANNEL = `${PREFIX}:jobs:dispatch`;

/** BullMQ's key prefix (its default): every key of a queue starts `bull:<queue>:`. */
const QUEUE_PREFIX = 'bull';

/**
 * The patterns of the keys and channels above, by who needs them: what a store user per service
 * is allowed (store-users.ts). A key added above belongs to one of them.
 */
export const KEY_PATTERNS = {
  queues: [STACK_JOBS_QUEUE, DRIFT_QUEUE, WEBHOOKS_QUEUE, JOB_LIFECYCLE_QUEUE].map((queue) => `${QUEUE_PREFIX}:${queue}:*`),
  /** Jobs (heartbeat, progress, claims), job order, running jobs, stacks and tenants' running sets. */
  jobs: [`${PREFIX}:job:*`, `${PREFIX}:jobs:*`, `${PREFIX}:stack:*`, `${PREFIX}:tenant:*`],
  idempotency: [`${PREFIX}:idempotency:*`],
  streamTickets: [`${PREFIX}:stream-ticket:*`],
  uidLeases: [`${PREFIX}:uid-lease:*`],
  historySweep: [HISTORY_SWEEP_LOCK_KEY],
} as const;

export const CHANNEL_PATTERNS = {
  jobLines: `${PREFIX}:job:*`,
  control: [CANCEL_CHANNEL, JOB_AMENDED_CHANNEL, DISPATCH_CHANNEL],
} as const;
