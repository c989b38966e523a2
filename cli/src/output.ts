import { Option } from 'commander';
import type { StreamMessage } from './follow.js';

/** `-o, --output`: what every read command takes (json for scripts). */
export const outputOption = () =>
  new Option('-o, --output <format>', 'text, or json (for scripts)').choices(['text', 'json']).default('text');

/** Colours only for a person at a terminal: NO_COLOR turns them off, FORCE_COLOR on (https://no-color.org). */
export function colours(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env) {
  const on = env.FORCE_COLOR ? env.FORCE_COLOR !== '0' : !env.NO_COLOR && stream.isTTY === true && env.TERM !== 'dumb';
  const paint = (code: number) => (text: string) => (on ? `\u001b[${code}m${text}\u001b[0m` : text);
  return { green: paint(32), red: paint(31), yellow: paint(33), dim: paint(2), bold: paint(1) };
}

export interface JobView {
  id: string;
  status: string;
  operation: string;
  kind: string;
  stackFqdn: string;
  tenant?: string;
  createdAt?: string;
  startedAt?: string;
  finishedAt?: string;
  reason?: string;
  position?: number;
  blockedBy?: string;
  stateVersion?: number;
  result?: { exitCode: number | null; error?: string; summary?: Record<string, number>; outputs?: unknown };
}

/** A job as a few `key: value` lines (what `pds jobs show` prints). */
export function describeJob(job: JobView): string {
  const rows: [string, unknown][] = [
    ['id', job.id],
    ['status', job.reason ? `${job.status} (${job.reason})` : job.status],
    ['operation', job.operation],
    ['kind', job.kind],
    ['stack', job.stackFqdn],
    ['tenant', job.tenant],
    ['created', job.createdAt],
    ['started', job.startedAt],
    ['finished', job.finishedAt],
    ['position', job.position],
    ['waiting behind', job.blockedBy],
    ['changes', job.result?.summary ? summaryText(job.result.summary) : undefined],
    ['state version', job.stateVersion],
    ['error', job.result?.error],
  ];
  return rows
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${`${key}:`.padEnd(16)}${String(value)}`)
    .join('\n');
}

/** Rows under a header, each column as wide as its widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => (cell ?? '').padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Jobs as a table (what `pds jobs ls` prints). */
export function jobsTable(jobs: JobView[]): string {
  return table(
    ['ID', 'STATUS', 'OPERATION', 'STACK', 'CREATED'],
    jobs.map((job) => [job.id, job.status, job.operation, job.stackFqdn, job.createdAt ?? '']),
  );
}

/** `{ create: 2, same: 1 }` as `2 created, 1 unchanged`. */
export function summaryText(summary: Record<string, number>): string {
  const words: Record<string, string> = { create: 'created', update: 'updated', delete: 'deleted', replace: 'replaced', same: 'unchanged' };
  // What changed first, in the order Pulumi prints it; what stayed the same last.
  const order = ['create', 'update', 'replace', 'delete'];
  const rank = (op: string) => (op === 'same' ? order.length + 1 : order.includes(op) ? order.indexOf(op) : order.length);
  const parts = Object.entries(summary)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([op, n]) => `${n} ${words[op] ?? op}`);
  return parts.length > 0 ? parts.join(', ') : 'no changes';
}

/**
 * How `pds watch` shows a job in a log (CI, a pipe): one line per change of status, per resource
 * done or failed, per warning or error, and the summary; no spinner, nothing redrawn.
 */
export function changeLine(message: StreamMessage, paint = colours()): string | undefined {
  if (message.type === 'status') return `${paint.dim('status')} ${message.status}`;
  if (message.type !== 'event' || !message.event) return undefined;
  const event = message.event as {
    kind: string;
    state?: string;
    op?: string;
    type?: string;
    urn?: string;
    severity?: string;
    message?: string;
    resourceChanges?: Record<string, number>;
    durationSeconds?: number;
  };
  if (event.kind === 'resource' && (event.state === 'done' || event.state === 'failed')) {
    const name = event.urn?.split('::').at(-1) ?? '';
    const mark = event.state === 'failed' ? paint.red('✗ failed') : paint.green(`✓ ${event.op ?? 'done'}`);
    return `${mark} ${event.type ?? ''} ${paint.bold(name)}`;
  }
  if (event.kind === 'diagnostic' && (event.severity === 'error' || event.severity === 'warning')) {
    const text = (event.message ?? '').trim();
    return `${event.severity === 'error' ? paint.red('error') : paint.yellow('warning')}: ${text}`;
  }
  if (event.kind === 'summary' && event.resourceChanges) {
    const seconds = event.durationSeconds !== undefined ? ` in ${event.durationSeconds} s` : '';
    return `${paint.dim('summary')} ${summaryText(event.resourceChanges)}${seconds}`;
  }
  return undefined;
}

/** The last line of a followed job: its outcome, and why when it did not succeed. */
export function endLine(message: StreamMessage, paint = colours()): string {
  const status = message.status ?? 'unknown';
  const coloured = status === 'succeeded' ? paint.green(status) : status === 'failed' ? paint.red(status) : paint.yellow(status);
  const why = message.error ? `: ${message.error}` : message.reason && message.reason !== status ? ` (${message.reason})` : '';
  return `job ${message.jobId} ${coloured}${why}`;
}
