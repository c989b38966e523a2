import WebSocket from 'ws';
import type { Credentials } from './credentials.js';
import { CliError, EXIT } from './exit-codes.js';

/** A message of a job's stream (docs/stream-protocol.md). */
export interface StreamMessage {
  type: 'status' | 'line' | 'event' | 'end' | 'error';
  jobId: string;
  seq?: number;
  status?: string;
  stream?: string;
  text?: string;
  event?: Record<string, unknown>;
  code?: number;
  message?: string;
  error?: string;
  reason?: string;
  lastSeq?: number;
}

export interface FollowOptions {
  /** Messages after this seq (0: from the start). */
  from: number;
  onMessage(message: StreamMessage): void;
  /** Told of each reconnection, for stderr. */
  onReconnect?(attemptInMs: number, why: string): void;
  /** How long to keep trying without hearing from the gateway before giving up (default 5 minutes). */
  giveUpMs?: number;
  /** First and longest wait between tries (default 1 s and 30 s). */
  backoffMs?: readonly [number, number];
}

/** Why one connection ended: the job's end, or something to retry after. */
type Attempt = { end: StreamMessage } | { retry: string };

/**
 * Follows a job's stream to its `end`: replay from `from`, then live; after a dropped connection (a
 * gateway restart, a network blip) it resumes from the last seq it saw, waiting 1 s, 2 s, … up to
 * 30 s between tries, and gives up (exit 5) after five minutes without hearing from the gateway.
 */
export async function followJob(credentials: Credentials, jobId: string, options: FollowOptions): Promise<StreamMessage> {
  const [firstWait, longestWait] = options.backoffMs ?? [1_000, 30_000];
  const giveUpMs = options.giveUpMs ?? 5 * 60_000;
  let last = options.from;
  let heardAt = Date.now();
  let wait = firstWait;
  for (;;) {
    const attempt = await connectOnce(credentials, jobId, last, (message) => {
      heardAt = Date.now();
      wait = firstWait;
      if (message.seq !== undefined) {
        if (message.seq <= last) return; // already shown (a replay after a resume)
        last = message.seq;
      }
      options.onMessage(message);
    });
    if ('end' in attempt) return attempt.end;
    if (Date.now() - heardAt + wait > giveUpMs)
      throw new CliError(
        `gave up following job ${jobId} after ${Math.round(giveUpMs / 1000)} s without the stream gateway (${attempt.retry})`,
        EXIT.gaveUp,
      );
    options.onReconnect?.(wait, attempt.retry);
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, longestWait);
  }
}

function streamUrl(credentials: Credentials, jobId: string, from: number): string {
  const base = credentials.gatewayUrl.replace(/^http/, 'ws');
  return `${base}/v1/jobs/${encodeURIComponent(jobId)}/stream?from=${from}`;
}

/** One connection to the job's stream, until its end, a refusal (thrown), or a drop (to retry). */
function connectOnce(credentials: Credentials, jobId: string, from: number, deliver: (message: StreamMessage) => void): Promise<Attempt> {
  return new Promise<Attempt>((resolve, reject) => {
    const socket = new WebSocket(streamUrl(credentials, jobId, from), { headers: { authorization: `Bearer ${credentials.token}` } });
    let settled = false;
    const settle = (outcome: Attempt | CliError) => {
      if (settled) return;
      settled = true;
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.terminate();
      if (outcome instanceof CliError) reject(outcome);
      else resolve(outcome);
    };
    // Refused before any socket opened: said over HTTP (docs/stream-protocol.md).
    socket.on('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0;
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk));
      response.on('end', () => {
        const message = messageOf(body);
        if (status === 401)
          settle(new CliError(`the stream gateway refused the token (401: ${message}): log in again with \`pds login\``, EXIT.auth));
        else if (status === 403) settle(new CliError(`not allowed to follow job ${jobId} (403): ${message}`, EXIT.auth));
        else if (status === 404) settle(new CliError(`job ${jobId} not found`, EXIT.usage));
        else if (status === 400) settle(new CliError(`the stream gateway refused the request (400): ${message}`, EXIT.usage));
        else settle({ retry: `HTTP ${status}` });
      });
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as StreamMessage;
      if (message.type === 'error') {
        if (message.code === 4404) return settle(new CliError(`job ${jobId} not found`, EXIT.usage));
        if (message.code === 4410)
          return settle(
            new CliError(`job ${jobId}'s lines were removed as old history: \`pds jobs show ${jobId}\` has its result`, EXIT.usage),
          );
        return settle({ retry: `the gateway said ${message.code}: ${message.message ?? ''}` });
      }
      deliver(message);
      if (message.type === 'end') settle({ end: message });
    });
    socket.on('close', (code) => {
      if (code === 4401) settle(new CliError('the token was revoked or has expired: log in again with `pds login`', EXIT.auth));
      else settle({ retry: `connection closed (${code})` });
    });
    socket.on('error', (err) => settle({ retry: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

function messageOf(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    return body.slice(0, 200);
  }
}
