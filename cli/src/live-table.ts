import type { StreamMessage } from './follow.js';
import { colours, summaryText } from './output.js';

interface Row {
  op: string;
  type: string;
  name: string;
  state: 'started' | 'done' | 'failed';
  startedAt: number;
  endedAt?: number;
}

interface Progress {
  done?: number;
  failed?: number;
  total?: number;
  percent?: number;
}

const FRAME_MS = 100;
const TICK_MS = 1_000;

/** The terminal's size (a pty reports it; a default where it does not). */
export interface Screen {
  columns(): number;
  rows(): number;
}

const PROCESS_SCREEN: Screen = { columns: () => process.stdout.columns || 100, rows: () => process.stdout.rows || 30 };

/**
 * What `pds watch` shows a person at a terminal: the job's resources as a table redrawn in place
 * (those in progress first, with their elapsed time), a progress bar, the job's status, its last
 * error and the connection's state. At most ten frames a second (and one a second while a resource
 * is in progress, for its clock); each line cut to the screen's width and the table to its height,
 * so the frame is erased exactly; the last frame stays when the job ends.
 */
export class LiveTable {
  private readonly rows = new Map<string, Row>();
  private status = 'queued';
  private progress: Progress = {};
  private summary?: string;
  private lastError?: string;
  private connection?: string;
  private drawnLines = 0;
  private timer?: NodeJS.Timeout;
  private ticker?: NodeJS.Timeout;
  private readonly paint;

  constructor(
    private readonly write: (text: string) => void,
    private readonly screen: Screen = PROCESS_SCREEN,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.paint = colours({ isTTY: true } as NodeJS.WriteStream, env);
  }

  /** Takes one message of the job's stream; redraws soon. */
  take(message: StreamMessage): void {
    this.connection = undefined;
    if ((message.type === 'status' || message.type === 'end') && message.status) this.status = message.status;
    if (message.type === 'event' && message.event) this.takeEvent(message.event as Record<string, unknown>, message.ts);
    this.soon();
  }

  /** A note about the connection (lost, trying again), shown in the frame instead of between frames. */
  note(text: string): void {
    this.connection = text;
    this.soon();
  }

  /** The last frame, drawn at once (the job has ended, or following stopped). */
  finish(): void {
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    this.timer = undefined;
    this.ticker = undefined;
    this.draw();
  }

  private soon(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, FRAME_MS);
    // Elapsed times move while something is in progress, messages or not.
    this.ticker ??= setInterval(() => {
      if ([...this.rows.values()].some((row) => row.state === 'started')) this.draw();
    }, TICK_MS);
  }

  private takeEvent(event: Record<string, unknown>, ts: string | undefined): void {
    if (event.progress) this.progress = event.progress as Progress;
    if (event.kind === 'summary') {
      this.summary = summaryText((event.resourceChanges as Record<string, number>) ?? {});
      return;
    }
    if (event.kind === 'diagnostic' && event.severity === 'error') this.lastError = String(event.message ?? '').trim();
    if (event.kind !== 'resource' || typeof event.urn !== 'string') return;
    // When it happened (a replay's events are old), else now.
    const at = ts ? Date.parse(ts) || Date.now() : Date.now();
    const state = event.state as Row['state'];
    const row: Row = this.rows.get(event.urn) ?? {
      op: String(event.op ?? ''),
      type: String(event.type ?? ''),
      name: event.urn.split('::').at(-1) ?? event.urn,
      state,
      startedAt: at,
    };
    row.state = state;
    if (state !== 'started') row.endedAt = at;
    this.rows.set(event.urn, row);
  }

  /** The frame as lines, each at most the screen's width (before colour), at most its height less two. */
  frame(now = Date.now()): string[] {
    const { paint } = this;
    const width = Math.max(20, this.screen.columns() - 1);
    const fit = (text: string) => (text.length > width ? `${text.slice(0, width - 1)}…` : text);
    const percent =
      this.progress.percent ?? (this.progress.total ? Math.round(((this.progress.done ?? 0) / this.progress.total) * 100) : undefined);
    const barWidth = 20;
    const filled = percent === undefined ? 0 : Math.round((percent / 100) * barWidth);
    const bar = percent === undefined ? '' : ` [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${percent}%`;
    const status = fit(`${this.status}${bar}${this.summary ? `  ${this.summary}` : ''}`);
    const lines = [paint.bold(status)];
    if (this.connection) lines.push(paint.yellow(fit(this.connection)));
    if (this.lastError) lines.push(paint.red(fit(`error: ${this.lastError.split('\n')[0]}`)));
    const rows = [...this.rows.values()].sort((a, b) => Number(b.state === 'started') - Number(a.state === 'started'));
    const room = Math.max(1, this.screen.rows() - 2 - lines.length);
    const shown = rows.length > room ? rows.slice(0, room - 1) : rows;
    for (const row of shown) {
      const seconds = (((row.endedAt ?? now) - row.startedAt) / 1000).toFixed(1);
      const mark = row.state === 'started' ? '…' : row.state === 'failed' ? '✗' : '✓';
      const text = fit(`${mark} ${row.op.padEnd(8)} ${row.type} ${row.name} ${seconds}s`);
      const colour = row.state === 'started' ? paint.yellow : row.state === 'failed' ? paint.red : paint.green;
      lines.push(`${colour(text.slice(0, 1))}${text.slice(1)}`);
    }
    if (shown.length < rows.length) lines.push(paint.dim(fit(`+${rows.length - shown.length} more`)));
    return lines;
  }

  private draw(): void {
    const lines = this.frame();
    // Back to where the last frame began (cursor up, column 1), clear below, draw anew: no line is
    // printed twice in the scrollback. (CSI F would do both at once, but tmux ignores it.)
    const up = this.drawnLines > 0 ? `\u001b[${this.drawnLines}A\r\u001b[J` : '';
    this.write(`${up}${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }
}
