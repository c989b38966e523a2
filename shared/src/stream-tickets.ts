import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { type AuthOutcome, hashToken, type Principal } from './auth.js';
import { streamTicketKey } from './names.js';

/** How long a stream ticket may wait to be used. */
export const STREAM_TICKET_SECONDS = 60;

const TICKET_FORMAT = /^pst_[A-Za-z0-9_-]{43}$/;

/** What a ticket opens: one job's stream, or the multiplexed socket (`jobId` absent). */
export interface TicketTarget {
  jobId?: string;
}

interface StoredTicket extends TicketTarget {
  principal: Principal;
  tokenHash: string;
}

/**
 * A short-lived, single-use stand-in for a token, for browsers (which cannot set headers on a
 * WebSocket or an EventSource) so that no long-lived token ever sits in a URL. Only its hash is
 * stored; it carries the hash of the token that asked for it, so the gateway checks that token again
 * (revoked → refused) when the ticket is used and while the socket stays open.
 */
export async function issueStreamTicket(
  redis: Pick<Redis, 'set'>,
  holder: { principal: Principal; tokenHash: string },
  target: TicketTarget,
): Promise<{ ticket: string; expiresAt: string }> {
  const ticket = `pst_${randomBytes(32).toString('base64url')}`;
  const stored: StoredTicket = { principal: holder.principal, tokenHash: holder.tokenHash, ...target };
  await redis.set(streamTicketKey(hashToken(ticket)), JSON.stringify(stored), 'EX', STREAM_TICKET_SECONDS);
  return { ticket, expiresAt: new Date(Date.now() + STREAM_TICKET_SECONDS * 1000).toISOString() };
}

/**
 * Uses a ticket up (GETDEL: two clients racing with one ticket, one wins) and answers who it was
 * issued to, if it opens `target`. `recheck` asks whether the issuing token is still good.
 */
export async function redeemStreamTicket(
  redis: Pick<Redis, 'getdel'>,
  ticket: string,
  target: TicketTarget,
  recheck: (tokenHash: string) => Promise<AuthOutcome>,
): Promise<AuthOutcome> {
  const refused = { ok: false as const, message: 'the stream ticket is not valid (unknown, used, or older than 60 s)' };
  if (!TICKET_FORMAT.test(ticket)) return refused;
  const raw = await redis.getdel(streamTicketKey(hashToken(ticket)));
  if (raw === null) return refused;
  const stored = JSON.parse(raw) as StoredTicket;
  if ((stored.jobId ?? null) !== (target.jobId ?? null)) {
    return {
      ok: false,
      message: stored.jobId ? `the stream ticket is for job ${stored.jobId} only` : 'the stream ticket is for /v1/stream only',
    };
  }
  const holder = await recheck(stored.tokenHash);
  if (!holder.ok) return holder;
  return { ok: true, principal: holder.principal, tokenHash: stored.tokenHash };
}
