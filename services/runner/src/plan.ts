import { type EngineEvent, STACK_TYPE } from './pulumi/engine-events.js';

/** The most per-resource changes a plan lists (the counts are always whole). */
export const MAX_PLAN_CHANGES = 500;
const NOT_CHANGES = new Set(['same', 'refresh', 'read']);

/** The changes a preview plans, per resource (`create`, `update`, `replace`, `delete`, …; `same` left out). */
export class PlanCollector {
  readonly changes: { urn: string; type: string; op: string }[] = [];
  private readonly seen = new Set<string>();

  observe(event: EngineEvent): void {
    const step = event.resourcePreEvent?.metadata;
    // A preview with --refresh reads each resource first: that step changes nothing; the one after it may.
    if (!step?.urn || !step.op || NOT_CHANGES.has(step.op) || step.type === STACK_TYPE || this.seen.has(step.urn)) return;
    this.seen.add(step.urn);
    if (this.changes.length < MAX_PLAN_CHANGES) this.changes.push({ urn: step.urn, type: step.type ?? '', op: step.op });
  }
}
