import { type DriftedResource, type DriftIgnoreRule, type DriftReport, maskStateSecrets } from '@pds/shared';

export type { DriftedResource, DriftIgnoreRule, DriftReport };
import { type EngineEvent, STACK_TYPE } from '../pulumi/engine-events.js';

/** The most resources and properties a report holds, and the longest value text it shows (the rest is cut, and says so). */
const MAX_RESOURCES = 500;
const MAX_PROPERTIES = 50;
const MAX_VALUE_CHARS = 1_000;

interface Step {
  op?: string;
  urn?: string;
  type?: string;
  old?: { outputs?: Record<string, unknown> } | null;
  new?: { outputs?: Record<string, unknown>; id?: string } | null;
  diffs?: string[];
  detailedDiff?: Record<string, unknown> | null;
}

function shown(value: unknown): unknown {
  const masked = maskStateSecrets(value);
  const text = JSON.stringify(masked);
  if (text === undefined || text.length <= MAX_VALUE_CHARS) return masked;
  return `${text.slice(0, MAX_VALUE_CHARS)}… [${text.length - MAX_VALUE_CHARS} more characters]`;
}

/** The top-level output keys whose values differ (secrets compare by their masked form: ciphertexts change). */
function changedKeys(step: Step): string[] {
  if (step.diffs && step.diffs.length > 0) return step.diffs;
  if (step.detailedDiff && Object.keys(step.detailedDiff).length > 0) return Object.keys(step.detailedDiff);
  const before = step.old?.outputs ?? {};
  const after = step.new?.outputs ?? {};
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((key) => JSON.stringify(maskStateSecrets(before[key])) !== JSON.stringify(maskStateSecrets(after[key])));
}

/**
 * Collects what `pulumi refresh --preview-only` says of each resource: the steps whose op is
 * `update` (read back different) or `delete` (gone), with the properties that differ. `maskValue`
 * masks credential values in what is kept.
 */
export class DriftCollector {
  private readonly found = new Map<string, DriftedResource>();
  private ignored = 0;

  constructor(
    private readonly ignore: DriftIgnoreRule[] = [],
    private readonly maskValue: <T>(value: T) => T = (v) => v,
  ) {}

  observe(event: EngineEvent): void {
    const step = (event.resourcePreEvent?.metadata ?? event.resOutputsEvent?.metadata) as Step | undefined;
    if (!step?.urn || step.type === STACK_TYPE) return;
    const change = step.op === 'delete' || step.op === 'read-discard' ? 'delete' : step.op === 'update' ? 'update' : undefined;
    if (!change || this.found.has(step.urn)) return;
    const rule = this.ignore.find((r) => r.urn === step.urn);
    if (rule && (!rule.paths || rule.paths.length === 0)) return void this.ignored++;
    const paths = change === 'delete' ? [] : changedKeys(step).filter((path) => !rule?.paths?.includes(path));
    if (change === 'update' && paths.length === 0) return void this.ignored++;
    if (this.found.size >= MAX_RESOURCES) return;
    const properties = paths.slice(0, MAX_PROPERTIES).map((path) => ({
      path,
      // Masked whole, then cut: a cut value could otherwise show part of a secret.
      old: shown(this.maskValue(step.old?.outputs?.[path])),
      new: shown(this.maskValue(step.new?.outputs?.[path])),
    }));
    this.found.set(step.urn, { urn: step.urn, type: step.type ?? '', change, properties });
  }

  /** The report of a check that ended with `status`. */
  report(status: string, error?: string): DriftReport {
    if (status !== 'succeeded')
      return { result: 'unknown', resources: [], ignored: this.ignored, error: error ?? `the check ended ${status}` };
    const resources = [...this.found.values()];
    return { result: resources.length > 0 ? 'drifted' : 'no_drift', resources, ignored: this.ignored };
  }
}
