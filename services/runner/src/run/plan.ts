import { type EngineEvent, STACK_TYPE } from '../pulumi/engine-events.js';

/** The most per-resource changes a plan lists (the counts are always whole). */
export const MAX_PLAN_CHANGES = 500;
/** Pulumi's steps that change nothing in the cloud (a --refresh preview reads each resource first). */
export const NO_CHANGE_STEPS = new Set(['same', 'refresh', 'read']);

/** The changes a preview plans, per resource (`create`, `update`, `replace`, `delete`, …; `same` left out). */
export class PlanCollector {
  readonly changes: { urn: string; type: string; op: string }[] = [];
  private readonly seen = new Set<string>();

  observe(event: EngineEvent): void {
    const step = event.resourcePreEvent?.metadata;
    // A preview with --refresh reads each resource first: that step changes nothing; the one after it may.
    if (!step?.urn || !step.op || NO_CHANGE_STEPS.has(step.op) || step.type === STACK_TYPE || this.seen.has(step.urn)) return;
    this.seen.add(step.urn);
    if (this.changes.length < MAX_PLAN_CHANGES) this.changes.push({ urn: step.urn, type: step.type ?? '', op: step.op });
  }
}
