import { duration } from '../lib/format.js';
import { useNow } from '../lib/hooks.js';
import type { ResourceRow } from '../lib/resources.js';
import { Empty, StatusBadge } from './ui.js';

/** The run's resources: in progress first with their running time, then the rest; unchanged counted. */
export function ResourceTable({ rows, unchanged, running }: { rows: ResourceRow[]; unchanged: number; running: boolean }) {
  const now = useNow(running && rows.some((r) => r.state === 'started'));
  if (rows.length === 0) {
    return <Empty>{unchanged ? `${unchanged} unchanged` : running ? 'No resource step yet.' : 'No resource changed.'}</Empty>;
  }
  return (
    <div class="table-wrap">
      <table class="compact resources">
        <caption class="sr-only">Resources of this run</caption>
        <thead>
          <tr>
            <th scope="col">Operation</th>
            <th scope="col">Type</th>
            <th scope="col">Name</th>
            <th scope="col">Status</th>
            <th scope="col">Time</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.urn}>
              <td class={`op op-${row.op}`}>{row.op}</td>
              <td class="mono">{row.type}</td>
              <td class="mono">{row.name}</td>
              <td>
                <StatusBadge status={row.state === 'started' ? 'running' : row.state === 'done' ? 'done' : 'failed'} />
              </td>
              <td>{duration((row.endedAt ?? now) - row.startedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {unchanged > 0 && <p class="muted small">{unchanged} unchanged</p>}
    </div>
  );
}
