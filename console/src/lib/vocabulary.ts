// The service's words the console offers as choices; e2e/test/console-vocabulary.test.ts checks
// they are still exactly @pds/shared's (the browser bundle does not import the server package).

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
];
export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled', 'rejected', 'expired', 'stale'];
export const WAITING_STATUSES = ['queued', 'awaiting_approval', 'approved'];
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
];
export const ROLES = ['viewer', 'deployer', 'admin', 'platform'] as const;
export const WEBHOOK_EVENTS = [
  'update_succeeded',
  'update_failed',
  'preview_succeeded',
  'preview_failed',
  'refresh_succeeded',
  'refresh_failed',
  'destroy_succeeded',
  'destroy_failed',
  'state_operation_succeeded',
  'state_operation_failed',
  'stack_deleted',
  'drift_detected',
  'drift_detection_succeeded',
  'drift_detection_failed',
  'approval_required',
  'approved',
  'rejected',
  'compensated',
  'compensation_failed',
];
