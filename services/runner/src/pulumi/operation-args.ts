import type { JobOptions, Operation } from '@pds/shared';

/** Options a job may carry (shared/src/job-fields.ts), as Pulumi users know them from the CLI. */
export type { JobOptions };

/** Operations whose program must run (the others work from the state alone; so does a destroy's preview). */
export function runsProgram(operation: Operation, options: Pick<JobOptions, 'previewOf'> = {}): boolean {
  return operation === 'up' || (operation === 'preview' && options.previewOf !== 'destroy');
}

/** Where, in the job's workspace, a restore's preview keeps the state it previews against. */
export const SCRATCH_BACKEND_DIR = 'scratch-state';

/** Operations that may write the stack's state (its versions are kept: shared/src/stack-state.ts). */
export function writesState(operation: Operation): boolean {
  return operation !== 'preview' && operation !== 'drift-check';
}

/** Where an update plan is saved (preview) or read (up) in the job's folder. */
export const PLAN_FILE = 'update-plan.json';

/** Where a restore's deployment is written in the job's folder. */
export const RESTORE_FILE = 'restore.json';

/** The CLI arguments of a state operation (no engine events: `pulumi state` has no event log). */
export function stateArgs(operation: Operation, stackFqdn: string, options: JobOptions): string[] | undefined {
  const common = ['--stack', stackFqdn, '--yes', '--non-interactive', '--color', 'never'];
  if (operation === 'state-delete') return ['state', 'delete', options.urn ?? '', ...common];
  if (operation === 'state-unprotect') return ['state', 'unprotect', options.urn ?? '', ...common];
  if (operation === 'state-rename') return ['state', 'rename', options.urn ?? '', options.name ?? '', ...common];
  // The version's deployment, written into the job's folder by the runner (RESTORE_FILE).
  if (operation === 'stack-remove') return ['stack', 'rm', '--force', ...common];
  if (operation === 'restore')
    return ['stack', 'import', '--file', RESTORE_FILE, '--stack', stackFqdn, '--non-interactive', '--color', 'never'];
  return undefined;
}

/**
 * The CLI arguments of one operation: non-interactive, no colour, explicit stack, and (for `up` and
 * `preview`) the address of the language runtime our program host serves.
 */
export function operationArgs(
  operation: Operation,
  stackFqdn: string,
  options: JobOptions,
  host: { languageAddress?: string; eventsAddress: string },
  /** An up that applies the update plan written to PLAN_FILE. */
  applyPlan = false,
): string[] {
  const state = stateArgs(operation, stackFqdn, options);
  if (state) return state;
  // A repair is a refresh that deals with the pending creates an interrupted run left; a drift
  // check one that only reports (never `--expect-no-changes`, which writes the state before failing).
  const destroyPreview = operation === 'preview' && options.previewOf === 'destroy';
  const command = operation === 'repair' || operation === 'drift-check' ? 'refresh' : destroyPreview ? 'destroy' : operation;
  const args: string[] = [command, '--stack', stackFqdn, '--non-interactive', '--color', 'never'];
  if (operation === 'drift-check' || destroyPreview) args.push('--preview-only');
  if (operation === 'repair') {
    const creates = options.pendingCreates ?? [];
    if (creates.some((c) => c.action === 'clear')) args.push('--clear-pending-creates');
    for (const c of creates.filter((c) => c.action === 'import'))
      args.push('--import-pending-creates', c.urn, '--import-pending-creates', c.id ?? '');
  }
  if (operation !== 'preview' && operation !== 'drift-check') args.push('--yes', '--skip-preview');
  if (runsProgram(operation, options)) {
    if (!host.languageAddress) throw new Error(`${operation} runs the program, but no program host was started`);
    args.push('--client', host.languageAddress);
  }
  args.push('--event-log', host.eventsAddress);
  if (options.message) args.push('--message', options.message);
  if (options.expectNoChanges) args.push('--expect-no-changes');
  if (options.refresh && operation !== 'refresh') args.push('--refresh');
  if (operation === 'preview' && options.savePlan) args.push('--save-plan', PLAN_FILE);
  if (operation === 'up' && applyPlan) args.push('--plan', PLAN_FILE);
  if (options.parallel) args.push('--parallel', String(options.parallel));
  for (const target of options.targets ?? []) args.push('--target', target);
  return args;
}
