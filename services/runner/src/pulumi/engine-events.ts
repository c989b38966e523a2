/**
 * Pulumi engine events (one JSON object per event, from `--event-log`) and the compact form we
 * publish and persist as `event` messages.
 */

interface StepMetadata {
  op?: string;
  urn?: string;
  type?: string;
  new?: { outputs?: Record<string, unknown> } | null;
}

export interface EngineEvent {
  sequence?: number;
  timestamp?: number;
  resourcePreEvent?: { metadata?: StepMetadata };
  resOutputsEvent?: { metadata?: StepMetadata };
  resOpFailedEvent?: { metadata?: StepMetadata; status?: number; steps?: number };
  diagnosticEvent?: { urn?: string; message?: string; severity?: string; ephemeral?: boolean };
  summaryEvent?: {
    resourceChanges?: Record<string, number>;
    durationSeconds?: number;
    isPreview?: boolean;
    result?: string;
  };
  [other: string]: unknown;
}

export const STACK_TYPE = 'pulumi:pulumi:Stack';

/** The longest text an `event` message carries (a diagnostic's message); the rest is cut, and says so. */
export const MAX_EVENT_TEXT = 16 * 1024;

/** A text cut to `max` characters, saying how much was left out. */
function capped(text: string | undefined, max = MAX_EVENT_TEXT): string | undefined {
  if (text === undefined || text.length <= max) return text;
  return `${text.slice(0, max)}… [${text.length - max} more characters cut; the full text is in the job's lines]`;
}

function step(state: string, metadata: StepMetadata | undefined): Record<string, unknown> {
  return { kind: 'resource', state, op: metadata?.op, urn: metadata?.urn, type: metadata?.type };
}

/**
 * The part of an engine event a watcher needs, or undefined for events that only repeat what the
 * text lines say (stdout echoes, debug diagnostics, the prelude and the closing cancel event).
 */
export function compactEvent(event: EngineEvent): Record<string, unknown> | undefined {
  if (event.resourcePreEvent) return step('started', event.resourcePreEvent.metadata);
  if (event.resOutputsEvent) return step('done', event.resOutputsEvent.metadata);
  if (event.resOpFailedEvent) return step('failed', event.resOpFailedEvent.metadata);
  const diagnostic = event.diagnosticEvent;
  if (diagnostic && (diagnostic.severity === 'error' || diagnostic.severity === 'warning')) {
    return { kind: 'diagnostic', severity: diagnostic.severity, urn: diagnostic.urn, message: capped(diagnostic.message?.trimEnd()) };
  }
  const summary = event.summaryEvent;
  if (summary) {
    return {
      kind: 'summary',
      resourceChanges: summary.resourceChanges ?? {},
      durationSeconds: summary.durationSeconds,
      isPreview: summary.isPreview,
      result: summary.result,
    };
  }
  return undefined;
}

/** The stack outputs carried by the root stack's outputs event, if this is that event. */
export function stackOutputsOf(event: EngineEvent): Record<string, unknown> | undefined {
  const metadata = event.resOutputsEvent?.metadata;
  if (metadata?.type !== STACK_TYPE) return undefined;
  return metadata.new?.outputs ?? {};
}

/** Error diagnostics' text, for the job's error message. */
export function errorMessageOf(event: EngineEvent): string | undefined {
  const diagnostic = event.diagnosticEvent;
  if (diagnostic?.severity !== 'error' || !diagnostic.message) return undefined;
  return diagnostic.message.trim();
}
