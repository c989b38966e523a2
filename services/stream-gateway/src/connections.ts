import { type AuthOutcome, errors } from '@pds/shared';
import type { WebSocket } from 'ws';
import { CloseCodes } from './outbox.js';

/** Every bound on what one caller may hold open; each has a number. */
export interface ConnectionLimits {
  /** A client with more than this waiting to be sent is closed (default 8 MiB). */
  maxBufferedBytes: number;
  /** WebSocket ping / SSE comment interval (default 15 s). */
  heartbeatMs: number;
  /** Open sockets and SSE streams per token (default 20); more are refused with 429. */
  maxConnectionsPerToken: number;
  /** Jobs followed at once on one multiplexed socket (default 100). */
  maxSubscriptionsPerSocket: number;
  /** `subscribe` messages per second on one socket, as a token bucket of the same burst (default 20). */
  subscribesPerSecond: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxBufferedBytes: 8 * 1024 * 1024,
  heartbeatMs: 15_000,
  maxConnectionsPerToken: 20,
  maxSubscriptionsPerSocket: 100,
  subscribesPerSecond: 20,
};

/** One open client connection, as the registry sees it. */
export interface Connection {
  /** Whose token holds it open (checked again every `recheckMs`). */
  tokenHash: string;
  /** Keeps the connection alive, or finds it dead (WebSocket ping, SSE comment). */
  beat(): void;
  close(code: number, reason: string): void;
}

/**
 * The gateway's open connections: per-token caps, one heartbeat timer for all, and the token of
 * each connection checked again every `recheckMs` (the authenticator's cache lifetime), so a
 * revoked or expired token loses its open sockets within that time.
 */
export class Connections {
  private readonly open = new Set<Connection>();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly recheck: (tokenHash: string) => Promise<AuthOutcome>,
    recheckMs: number,
  ) {
    this.timers.push(setInterval(() => this.open.forEach((c) => c.beat()), limits.heartbeatMs));
    this.timers.push(setInterval(() => void this.recheckAll(), recheckMs));
    for (const timer of this.timers) timer.unref();
  }

  get size(): number {
    return this.open.size;
  }

  /** Refuses (429) a caller that holds as many open streams as it may; run before the upgrade. */
  assertRoom(tokenHash: string): void {
    let held = 0;
    for (const connection of this.open) if (connection.tokenHash === tokenHash) held++;
    if (held >= this.limits.maxConnectionsPerToken) {
      throw errors.tooManyRequests(
        `this token already holds ${held} open streams (at most ${this.limits.maxConnectionsPerToken}); close some first`,
      );
    }
  }

  /** Tracks a connection until the returned function is called (on close). */
  add(connection: Connection): () => void {
    this.open.add(connection);
    return () => void this.open.delete(connection);
  }

  private async recheckAll(): Promise<void> {
    const verdicts = new Map<string, Promise<AuthOutcome>>();
    for (const connection of this.open) {
      let verdict = verdicts.get(connection.tokenHash);
      if (!verdict) {
        verdict = this.recheck(connection.tokenHash).catch(() => ({ ok: true }) as AuthOutcome); // a store blip closes nothing
        verdicts.set(connection.tokenHash, verdict);
      }
      const outcome = await verdict;
      if (!outcome.ok) connection.close(CloseCodes.unauthorized, outcome.message);
    }
  }

  /** Closes every connection (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const timer of this.timers) clearInterval(timer);
    for (const connection of this.open) connection.close(code, reason);
  }
}

/** A token bucket: `rate` per second, bursts of up to `rate`. */
export function rateLimiter(rate: number, now: () => number = Date.now): () => boolean {
  let tokens = rate;
  let last = now();
  return () => {
    const at = now();
    tokens = Math.min(rate, tokens + ((at - last) / 1000) * rate);
    last = at;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

/**
 * Tracks a WebSocket until it closes: pinged every heartbeat and terminated when no pong came back
 * since the previous one, closed with 4401 when its token goes bad. The signal aborts on close.
 */
export function trackSocket(connections: Connections, socket: WebSocket, tokenHash: string): AbortSignal {
  const controller = new AbortController();
  let alive = true;
  socket.on('pong', () => (alive = true));
  const release = connections.add({
    tokenHash,
    beat: () => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    },
    close: (code, reason) => socket.close(code, reason),
  });
  socket.on('close', () => {
    release();
    controller.abort();
  });
  return controller.signal;
}
