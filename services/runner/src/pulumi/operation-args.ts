import type { Operation } from '@pds/shared';

/** Options a job may carry, as Pulumi users know them from the CLI. */
export interface JobOptions {
  message?: string;
  expectNoChanges?: boolean;
  targets?: string[];
  refresh?: boolean;
  parallel?: number;
}

/** Operations whose program must run (the others work from the state alone). */
export function runsProgram(operation: Operation): boolean {
  return operation === 'up' || operation === 'preview';
}

/** Operations that may write the stack's state (its versions are kept: shared/src/stack-state.ts). */
export function writesState(operation: Operation): boolean {
  return operation === 'up' || operation === 'refresh' || operation === 'destroy';
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
): string[] {
  const args: string[] = [operation, '--stack', stackFqdn, '--non-interactive', '--color', 'never'];
  if (operation !== 'preview') args.push('--yes', '--skip-preview');
  if (runsProgram(operation)) {
    if (!host.languageAddress) throw new Error(`${operation} runs the program, but no program host was started`);
    args.push('--client', host.languageAddress);
  }
  args.push('--event-log', host.eventsAddress);
  if (options.message) args.push('--message', options.message);
  if (options.expectNoChanges) args.push('--expect-no-changes');
  if (options.refresh && operation !== 'refresh') args.push('--refresh');
  if (options.parallel) args.push('--parallel', String(options.parallel));
  for (const target of options.targets ?? []) args.push('--target', target);
  return args;
}
