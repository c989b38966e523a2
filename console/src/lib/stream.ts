import { api, ApiError, apiUrl } from './api.js';

/** A message of the gateway's job stream (docs/stream-protocol.md). */
export type StreamMessage =
  | { type: 'status'; jobId: string; status: string; ts: string }
  | { type: 'line'; jobId: string; seq: number; stream: 'stdout' | 'stderr'; text: string; ts: string }
  | { type: 'event'; jobId: string; seq: number; stream: 'event'; event: EngineEvent; ts: string }
  | { type: 'end'; jobId: string; status: string; exitCode: number | null; error?: string; reason?: string; lastSeq: number; ts: string }
  | { type: 'error'; jobId: string; code: number; message: string };

export interface Progress {
  started?: number;
  done?: number;
  failed?: number;
  total?: number;
  percent?: number;
}

export type EngineEvent =
  | { kind: 'resource'; state: 'started' | 'done' | 'failed'; op: string; urn: string; type: string; progress?: Progress }
  | { kind: 'diagnostic'; severity: string; urn?: string; message: string }
  | { kind: 'summary'; resourceChanges?: Record<string, number>; durationSeconds?: number; progress?: Progress };

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'failed';

export interface StreamHandlers {
  message(message: StreamMessage): void;
  connection(state: Connection, detail?: string): void;
}

let settings: Promise<{ gatewayUrl?: string }> | undefined;

/** Where the gateway is for this browser (CONSOLE_GATEWAY_URL, in the console's settings.json), asked once. */
function gatewaySettings(): Promise<{ gatewayUrl?: string }> {
  settings ??= fetch(new URL('settings.json', location.href), { cache: 'no-store' }).then(
    (res) => (res.ok ? (res.json() as Promise<{ gatewayUrl?: string }>) : {}),
    () => ({}),
  );
  return settings;
}

const BACKOFF_MAX_MS = 30_000;
/** Close codes after which the job's stream cannot go on: an unknown job, lines swept as old history. */
const FINAL_ERRORS = [4404, 4410];

/**
 * Follows one job: replay from `from`, then live, each seq once. A ticket per connection (never the
 * token in a URL); after a drop it reconnects with backoff (1 s doubling to 30 s) and resumes from
 * the last seq it handed on. Stops at `end`, at an error the job cannot recover from, or on stop().
 */
export class JobStream {
  private socket?: WebSocket;
  private lastSeq: number;
  private stopped = false;
  private attempt = 0;
  private retryTimer?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly jobId: string,
    private readonly on: StreamHandlers,
    from = 0,
  ) {
    this.lastSeq = from;
  }

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.close(1000);
  }

  private async connect(): Promise<void> {
    this.on.connection(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let url: string;
    try {
      const [{ ticket }, { gatewayUrl }] = await Promise.all([
        api<{ ticket: string }>('POST', 'v1/stream-tickets', { body: { jobId: this.jobId } }),
        gatewaySettings(),
      ]);
      url = streamUrl(gatewayUrl, this.jobId, ticket, this.lastSeq);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 401 || err.status === 403)) {
        this.on.connection('failed', err.message);
        return;
      }
      return this.retry((err as Error).message);
    }
    if (this.stopped) return;
    const socket = new WebSocket(url);
    this.socket = socket;
    let ended = false;
    /** An error the job's stream cannot get past (unknown job, lines swept); others (1011) are retried from the last seq. */
    let final: string | undefined;
    socket.onopen = () => this.on.connection('live');
    socket.onmessage = (event) => {
      // A socket that delivers is a working one: only then does the backoff start again from 1 s.
      this.attempt = 0;
      let message: StreamMessage;
      try {
        message = JSON.parse(String(event.data)) as StreamMessage;
      } catch {
        // Not the gateway's JSON: drop this socket and resume from the last seq on a new one.
        socket.close(4000, 'a message that is not JSON');
        return;
      }
      if ('seq' in message) {
        if (message.seq <= this.lastSeq) return;
        this.lastSeq = message.seq;
      }
      if (message.type === 'end') ended = true;
      if (message.type === 'error') {
        if (FINAL_ERRORS.includes(message.code)) final = message.message;
        return;
      }
      this.on.message(message);
    };
    socket.onclose = (event) => {
      if (this.stopped || socket !== this.socket) return;
      if (ended) return this.on.connection('ended');
      if (final !== undefined) return this.on.connection('failed', final);
      if (event.code === 4401) return this.on.connection('failed', 'Your token no longer opens this stream: sign in again.');
      if (FINAL_ERRORS.includes(event.code)) return this.on.connection('failed', event.reason || `closed (${event.code})`);
      this.retry(`connection lost (${event.code})`);
    };
  }

  private retry(why: string): void {
    if (this.stopped) return;
    const delay = Math.min(BACKOFF_MAX_MS, 1_000 * 2 ** this.attempt++);
    this.on.connection('reconnecting', `${why}; retrying in ${Math.round(delay / 1000)} s`);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }
}

/** The job's stream address on the gateway (or on this origin, behind the same proxy as the API). */
export function streamUrl(gatewayUrl: string | undefined, jobId: string, ticket: string, from: number): string {
  const base = gatewayUrl ? new URL(gatewayUrl) : new URL(apiUrl('/'));
  if (!gatewayUrl) base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  const path = `${base.pathname.replace(/\/$/, '')}/v1/jobs/${encodeURIComponent(jobId)}/stream`;
  return `${base.origin.replace(/^http/, 'ws')}${path}?ticket=${encodeURIComponent(ticket)}&from=${from}`;
}
