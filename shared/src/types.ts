/** The job model and the live log protocol, shared by the API, the runner and the gateway. */

export const OPERATIONS = [
  'up',
  'preview',
  'refresh',
  'destroy',
  'repair',
  'state-delete',
  'state-unprotect',
  'state-rename',
  'restore',
  'stack-remove',
  'drift-check',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Operations that mend a stack's state rather than deploy (docs/api.md, Mending a stack's state). */
export const STATE_OPERATIONS: readonly Operation[] = ['repair', 'state-delete', 'state-unprotect', 'state-rename', 'restore'];

/** Removes the stack from the backend without destroying what it holds, then the resource (DELETE ?keepResources=true). */
export const STACK_REMOVE: Operation = 'stack-remove';

/** Compares the cloud with the stack's state without writing it (`pulumi refresh --preview-only`); run by drift schedules. */
export const DRIFT_CHECK: Operation = 'drift-check';

export const JOB_STATUSES = [
  'queued',
  'awaiting_approval',
  'approved',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'rejected',
  'expired',
  'stale',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'rejected', 'expired', 'stale'];
/** Not started yet: waiting for its stack, or for approval (the stack's line held), or approved and waiting for a runner. */
export const WAITING_STATUSES: readonly JobStatus[] = ['queued', 'awaiting_approval', 'approved'];

export function isFinalStatus(status: JobStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

export type LineStream = 'stdout' | 'stderr' | 'event';

/** One persisted and published unit of a job's output. `seq` starts at 1 and has no holes. */
export interface LineMessage {
  type: 'line' | 'event';
  jobId: string;
  seq: number;
  stream: LineStream;
  text?: string;
  event?: Record<string, unknown>;
  ts: string;
}

/** A change of the job's status while it is not final (`queued` → `running`); it has no seq. */
export interface StatusMessage {
  type: 'status';
  jobId: string;
  status: JobStatus;
  ts: string;
}

/** The last message of a job's stream. */
export interface EndMessage {
  type: 'end';
  jobId: string;
  status: JobStatus;
  exitCode: number | null;
  error?: string;
  /** Why the job ended as it did, when the status alone does not say (timeout, runner_lost, …). */
  reason?: string;
  /** Resource changes by kind of operation. */
  summary: ChangeSummary;
  /** The seq of the job's last line, so a client can check it saw everything. */
  lastSeq: number;
  ts: string;
}

export type ChannelMessage = LineMessage | StatusMessage | EndMessage;

/**
 * A running count of an operation's resource steps, and a percentage when their total can be told
 * (on resource and summary events, and on `GET /v1/jobs/:id` while the job runs).
 */
export interface Progress {
  /** Steps begun (one per resource the operation visits, the stack itself included, providers not). */
  started: number;
  /** Steps ended well. */
  done: number;
  failed: number;
  /** Steps expected: the stack's size after its last run, grown to `started` if more appear. */
  total?: number;
  /** done + failed of total, held at 99 until Pulumi's summary says the operation ended. */
  percent?: number;
}

/** Resource changes by kind of operation, as Pulumi's summary event reports them. */
export type ChangeSummary = Record<string, number>;

/** The structured result of a finished job (bounded tails; full text lives in job lines). */
export interface JobResult {
  status: JobStatus;
  timestamp: string;
  stackFqdn: string;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  error?: string;
  outputs: Record<string, unknown>;
  summary: ChangeSummary;
}

/**
 * Access roles, each allowing what the ones before it allow. The first three are roles in a tenant;
 * `platform` belongs to no tenant: the platform team's admins, who run the service for every tenant.
 */
export const ROLES = ['viewer', 'deployer', 'admin', 'platform'] as const;
export type Role = (typeof ROLES)[number];

/** The roles a token can have in a tenant. */
export const TENANT_ROLES = ['viewer', 'deployer', 'admin'] as const;
export type TenantRole = (typeof TENANT_ROLES)[number];
