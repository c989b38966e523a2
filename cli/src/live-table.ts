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

/**
 * What `pds watch` shows a person at a terminal: the job's resources as a table redrawn in place
 * (those in progress first, with their elapsed time), a progress bar, and the job's status. At most
 * ten frames a second; the last one stays on screen when the job ends.
 */
export class LiveTable {
  private readonly rows = new Map<string, Row>();
  private status = 'queued';
  private progress: Progress = {};
  private summary?: string;
  private drawnLines = 0;
  private timer?: NodeJS.Timeout;
  private readonly paint;

  constructor(
    private readonly write: (text: string) => void,
    private readonly width = () => process.stdout.columns || 100,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.paint = colours({ isTTY: true } as NodeJS.WriteStream, env);
  }

  /** Takes one message of the job's stream; redraws soon. */
  take(message: StreamMessage): void {
    if ((message.type === 'status' || message.type === 'end') && message.status) this.status = message.status;
    if (message.type === 'event' && message.event) this.takeEvent(message.event as Record<string, unknown>);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, FRAME_MS);
  }

  /** The last frame, drawn at once (the job has ended). */
  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
  }

  private takeEvent(event: Record<string, unknown>): void {
    if (event.progress) this.progress = event.progress as Progress;
    if (event.kind === 'summary') {
      this.summary = summaryText((event.resourceChanges as Record<string, number>) ?? {});
      return;
    }
    if (event.kind !== 'resource' || typeof event.urn !== 'string') return;
    const known = this.rows.get(event.urn);
    const state = event.state as Row['state'];
    const row: Row = known ?? {
      op: String(event.op ?? ''),
      type: String(event.type ?? ''),
      name: event.urn.split('::').at(-1) ?? event.urn,
      state,
      startedAt: Date.now(),
    };
    row.state = state;
    if (state !== 'started') row.endedAt = Date.now();
    this.rows.set(event.urn, row);
  }

  /** The frame as lines: a header with the status and bar, then the rows (in progress first). */
  frame(now = Date.now()): string[] {
    const { paint } = this;
    const width = Math.max(40, this.width());
    const rows = [...this.rows.values()].sort((a, b) => Number(b.state === 'started') - Number(a.state === 'started'));
    const percent =
      this.progress.percent ?? (this.progress.total ? Math.round(((this.progress.done ?? 0) / this.progress.total) * 100) : undefined);
    const barWidth = 20;
    const filled = percent === undefined ? 0 : Math.round((percent / 100) * barWidth);
    const bar = percent === undefined ? '' : ` [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${percent}%`;
    const lines = [`${paint.bold(this.status)}${bar}${this.summary ? `  ${this.summary}` : ''}`];
    for (const row of rows) {
      const seconds = (((row.endedAt ?? now) - row.startedAt) / 1000).toFixed(1);
      const mark = row.state === 'started' ? paint.yellow('…') : row.state === 'failed' ? paint.red('✗') : paint.green('✓');
      const text = `${mark} ${row.op.padEnd(8)} ${row.type} ${row.name} ${paint.dim(`${seconds}s`)}`;
      lines.push(text.length > width + 30 ? `${text.slice(0, width + 29)}…` : text);
    }
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
