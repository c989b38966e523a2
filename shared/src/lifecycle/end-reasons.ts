import type { Operation } from '../types.js';
import type { FinalStatus } from './transitions.js';

/**
 * Why a job ended as it did when its status alone does not say (docs/api.md, "Why a job ended"):
 * each reason with the statuses it comes with. `infrastructure`: neither the program's nor a
 * person's doing; only these lead to a recovery (RECOVERY).
 */
export const END_REASONS = {
  cancelled: { statuses: ['cancelled'] },
  superseded: { statuses: ['cancelled'] },
  timeout: { statuses: ['cancelled'] },
  shutdown: { statuses: ['cancelled'] },
  rejected: { statuses: ['rejected'] },
  expired: { statuses: ['expired'] },
  stale: { statuses: ['stale'] },
  preview_failed: { statuses: ['failed'] },
  plan_violation: { statuses: ['failed'] },
  plan_missing: { statuses: ['failed'] },
  nothing_to_reapply: { statuses: ['failed'] },
  stack_locked: { statuses: ['failed'] },
  credential_missing: { statuses: ['failed'] },
  memory_limit: { statuses: ['failed'] },
  process_limit: { statuses: ['failed'] },
  disk_limit: { statuses: ['failed'] },
  resource_deleted: { statuses: ['failed'] },
  unknown_kind: { statuses: ['failed'] },
  state_version_missing: { statuses: ['failed'] },
  backend_shared: { statuses: ['failed'] },
  internal_error: { statuses: ['failed'] },
  runner_lost: { statuses: ['failed'], infrastructure: true },
  lock_lost: { statuses: ['failed'], infrastructure: true },
  lines_not_persisted: { statuses: ['failed', 'succeeded'], infrastructure: true },
} as const satisfies Record<string, { statuses: readonly FinalStatus[]; infrastructure?: true }>;
export type EndReason = keyof typeof END_REASONS;

export const INFRASTRUCTURE_REASONS = (Object.keys(END_REASONS) as EndReason[]).filter(
  (reason) => (END_REASONS[reason] as { infrastructure?: true }).infrastructure,
);
export type InfrastructureReason = 'runner_lost' | 'lock_lost' | 'lines_not_persisted';

export function isInfrastructureReason(reason: string | undefined): reason is InfrastructureReason {
  return (INFRASTRUCTURE_REASONS as readonly string[]).includes(reason ?? '');
}

/**
 * What the service does with a run the infrastructure cut short (`failed` with an infrastructure
 * reason): runs of `retried` operations change no resource, so they are queued again as a new job,
 * up to `maxAttempts` (not a gated job's preview: its gated job fails without it); any other
 * operation may have changed resources half-way and is left to a person (its stack marked for repair).
 */
export const RECOVERY = {
  retried: ['preview', 'refresh'] as readonly Operation[],
  maxAttempts: 3,
} as const;
