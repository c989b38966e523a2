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
  ts?: string;
}

export interface FollowOptions {
  /** Messages after this seq (0: from the start). */
  from: number;
  onMessage(message: StreamMessage): void;
  /** Told of each reconnection, for stderr. */
  onReconnect?(attemptInMs: number, why: string): void;
  /** How long to keep trying while no connection holds before giving up (default 5 minutes). */
  giveUpMs?: number;
  /** First and longest wait between tries (default 1 s and 30 s). */
  backoffMs?: readonly [number, number];
}

/** The job's lines were swept as old history: its result is all there is to show. */
export class LinesSweptError extends CliError {
  constructor(jobId: string) {
    super(`job ${jobId}'s lines were removed as old history: \`pds jobs show ${jobId}\` has its result`, EXIT.usage);
  }
}

/** Why one connection ended: the job's end, or something to retry after (and whether the connection had held). */
type Attempt = { end: StreamMessage } | { retry: string; held: boolean };

/** A connection that brought a new message, or stayed open this long, held: the backoff starts again. */
const HELD_MS = 10_000;
/** The gateway pings every 15 s: a socket that heard nothing for this long is dead. */
const SILENCE_MS = 45_000;
const HANDSHAKE_MS = 10_000;

/**
 * Follows a job's stream to its `end`: replay from `from`, then live; after a dropped connection (a
 * gateway restart, a network blip) it resumes from the last seq it saw, waiting 1 s, 2 s, … up to
 * 30 s between tries, and gives up (exit 5) after five minutes without a connection that holds.
 */
export async function followJob(credentials: Credentials, jobId: string, options: FollowOptions): Promise<StreamMessage> {
  const [firstWait, longestWait] = options.backoffMs ?? [1_000, 30_000];
  const giveUpMs = options.giveUpMs ?? 5 * 60_000;
  let last = options.from;
  let lastStatus: string | undefined;
  let lostAt = Date.now();
  let wait = firstWait;
  for (;;) {
    const attempt = await connectOnce(credentials, jobId, last, (message) => {
      if (message.seq !== undefined) {
        if (message.seq <= last) return false; // already shown (a replay after a resume)
        last = message.seq;
      } else if (message.type === 'status') {
        if (message.status === lastStatus) return false; // said again on each reconnection
        lastStatus = message.status;
      }
      options.onMessage(message);
      return message.seq !== undefined;
    });
    if ('end' in attempt) return attempt.end;
    if (attempt.held) {
      lostAt = Date.now();
      wait = firstWait;
    }
    if (Date.now() - lostAt + wait > giveUpMs)
      throw new CliError(
        `gave up following job ${jobId}: no connection to the stream gateway held for ${Math.round(giveUpMs / 1000)} s (${attempt.retry})`,
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

/**
 * One connection to the job's stream, until its end, a refusal (thrown), or a drop (to retry).
 * `deliver` says whether a message was new progress (a seq not seen before).
 */
function connectOnce(
  credentials: Credentials,
  jobId: string,
  from: number,
  deliver: (message: StreamMessage) => boolean,
): Promise<Attempt> {
  return new Promise<Attempt>((resolve, reject) => {
    const socket = new WebSocket(streamUrl(credentials, jobId, from), {
      headers: { authorization: `Bearer ${credentials.token}` },
      handshakeTimeout: HANDSHAKE_MS,
    });
    let settled = false;
    let openedAt: number | undefined;
    let progressed = false;
    let silence: NodeJS.Timeout | undefined;
    const held = () => progressed || (openedAt !== undefined && Date.now() - openedAt >= HELD_MS);
    const settle = (outcome: Attempt | CliError) => {
      if (settled) return;
      settled = true;
      clearTimeout(silence);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.terminate();
      if (outcome instanceof CliError) reject(outcome);
      else resolve(outcome);
    };
    const listen = () => {
      clearTimeout(silence);
      silence = setTimeout(() => settle({ retry: `nothing heard for ${SILENCE_MS / 1000} s`, held: held() }), SILENCE_MS);
    };
    socket.on('open', () => {
      openedAt = Date.now();
      listen();
    });
    socket.on('ping', listen);
    // Refused before any socket opened: said over HTTP (docs/stream-protocol.md).
    socket.on('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0;
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk));
      response.on('end', () => settle(refusal(status, messageOf(body), jobId, credentials) ?? { retry: `HTTP ${status}`, held: false }));
    });
    socket.on('message', (data) => {
      listen();
      let message: StreamMessage;
      try {
        message = JSON.parse(String(data)) as StreamMessage;
      } catch {
        return settle({ retry: 'the gateway sent something that is not JSON', held: held() });
      }
      if (message.type === 'error') {
        const ended = endedBy(message.code, jobId);
        return settle(ended ?? { retry: `the gateway said ${message.code}: ${message.message ?? ''}`, held: held() });
      }
      if (deliver(message)) progressed = true;
      if (message.type === 'end') settle({ end: message });
    });
    socket.on('close', (code) => settle(endedBy(code, jobId) ?? { retry: `connection closed (${code})`, held: held() }));
    socket.on('error', (err) => settle({ retry: (err as NodeJS.ErrnoException).code ?? err.message, held: held() }));
  });
}

/** A stream that cannot go on, by its code (in an `error` message or as the close code). */
function endedBy(code: number | undefined, jobId: string): CliError | undefined {
  if (code === 4404) return new CliError(`job ${jobId} not found`, EXIT.usage);
  if (code === 4410) return new LinesSweptError(jobId);
  if (code === 4401) return new CliError('the token was revoked or has expired: log in again with `pds login`', EXIT.auth);
  return undefined;
}

/** What an HTTP refusal of the upgrade means; undefined for one worth trying again (429, 5xx). */
function refusal(status: number, message: string, jobId: string, credentials: Credentials): CliError | undefined {
  if (status === 401)
    return new CliError(`the stream gateway refused the token (401: ${message}): log in again with \`pds login\``, EXIT.auth);
  if (status === 403) return new CliError(`not allowed to follow job ${jobId} (403): ${message}`, EXIT.auth);
  if (status === 404)
    return new CliError(
      `job ${jobId} not found at the stream gateway ${credentials.gatewayUrl} (${message}); if the gateway has an address of its own, give it: pds login --gateway <url>, or PDS_GATEWAY_URL`,
      EXIT.usage,
    );
  if (status === 400) return new CliError(`the stream gateway refused the request (400): ${message}`, EXIT.usage);
  return undefined;
}

function messageOf(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    return body.replace(/\s+/g, ' ').trim().slice(0, 200);
  }
}
