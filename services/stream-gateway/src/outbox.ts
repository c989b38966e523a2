import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { StreamMessage } from './job-stream.js';

/** WebSocket close codes (4000–4999 are the application's). */
export const CloseCodes = {
  normal: 1000,
  goingAway: 1001,
  tooSlow: 1008,
  internal: 1011,
  badRequest: 4400,
  unauthorized: 4401,
  tooMany: 4429,
  notFound: 4404,
  linesSwept: 4410,
} as const;

/**
 * Where one client's messages go, whatever the transport. A client that does not read fast enough
 * has at most `maxBufferedBytes` waiting for it; past that it is closed with a reason (and can
 * reconnect with `from` = the last seq it saw), so it never holds up anyone else.
 */
export interface Outbox {
  /** Sends a message; `raw`, when given, is its JSON text already (forwarded as published). */
  send(message: StreamMessage, raw?: string): void;
  close(code: number, reason: string): void;
  readonly closed: boolean;
}

const TOO_SLOW = 'client is not reading fast enough; reconnect with from=<last seq>';

export function webSocketOutbox(socket: WebSocket, maxBufferedBytes: number): Outbox {
  return {
    get closed() {
      return socket.readyState !== socket.OPEN;
    },
    send(message, raw) {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > maxBufferedBytes) return socket.close(CloseCodes.tooSlow, TOO_SLOW);
      socket.send(raw ?? JSON.stringify(message));
    },
    close(code, reason) {
      if (socket.readyState === socket.OPEN) socket.close(code, reason);
    },
  };
}

/**
 * Server-Sent Events: `id` is the seq (so a browser's EventSource resumes with Last-Event-ID),
 * `event` is the message type, `data` the JSON message.
 */
export function sseOutbox(response: ServerResponse, maxBufferedBytes: number): Outbox {
  let closed = false;
  response.on('close', () => {
    closed = true;
  });
  const end = () => {
    if (!closed) response.end();
    closed = true;
  };
  return {
    get closed() {
      return closed || response.destroyed;
    },
    send(message, raw) {
      if (closed) return;
      if (response.writableLength > maxBufferedBytes) {
        response.write(`event: error\ndata: ${JSON.stringify({ type: 'error', code: CloseCodes.tooSlow, message: TOO_SLOW })}\n\n`);
        return end();
      }
      const id = 'seq' in message ? `id: ${message.seq}\n` : '';
      response.write(`${id}event: ${message.type}\ndata: ${raw ?? JSON.stringify(message)}\n\n`);
    },
    close() {
      end();
    },
  };
}
