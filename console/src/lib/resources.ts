import type { EngineEvent, Progress } from './stream.js';
import { urnName } from './format.js';

/** One resource step of a run, as the resource table shows it. */
export interface ResourceRow {
  urn: string;
  op: string;
  type: string;
  name: string;
  state: 'started' | 'done' | 'failed';
  startedAt: number;
  endedAt?: number;
}

/**
 * The resource table of a run, built from its engine events: one row per resource (its latest step),
 * unchanged resources counted rather than listed, the run's progress and its first error.
 */
export class ResourceModel {
  readonly rows = new Map<string, ResourceRow>();
  unchanged = 0;
  progress: Progress = {};
  firstError?: string;
  changes?: Record<string, number>;

  take(event: EngineEvent, ts: number): void {
    if (event.kind === 'resource') {
      if (event.progress) this.progress = event.progress;
      if (event.op === 'same') {
        if (event.state === 'done' && !this.rows.has(event.urn)) this.unchanged++;
        return;
      }
      const row = this.rows.get(event.urn);
      if (event.state === 'started' || !row) {
        this.rows.set(event.urn, {
          urn: event.urn,
          op: event.op,
          type: event.type,
          name: urnName(event.urn),
          state: event.state,
          startedAt: ts,
          ...(event.state === 'started' ? {} : { endedAt: ts }),
        });
      } else {
        row.state = event.state;
        row.endedAt = ts;
      }
    } else if (event.kind === 'diagnostic') {
      if (event.severity === 'error' && !this.firstError) this.firstError = event.message.trim();
    } else if (event.kind === 'summary') {
      if (event.progress) this.progress = event.progress;
      if (event.resourceChanges) this.changes = event.resourceChanges;
    }
  }

  /** Steps done so far by operation (`{ create: 2, update: 1 }`), for a run that has no summary yet. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const row of this.rows.values()) if (row.state === 'done') counts[row.op] = (counts[row.op] ?? 0) + 1;
    return counts;
  }

  /** In-progress rows first (oldest first), then the rest in the order they began. */
  sorted(): ResourceRow[] {
    const rows = [...this.rows.values()];
    const active = rows.filter((r) => r.state === 'started');
    return [...active, ...rows.filter((r) => r.state !== 'started')];
  }
}
