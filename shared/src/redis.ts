import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * What a connection is for decides how it behaves while Redis is away:
 * - `command`: fail fast (no offline queue), so an API call answers 503 instead of hanging;
 * - `worker`: wait forever (BullMQ workers and blocking commands need maxRetriesPerRequest null);
 * - `subscriber`: its own connection, reconnects and resubscribes by itself.
 */
export type RedisRole = 'command' | 'worker' | 'subscriber';

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  command: { enableOfflineQueue: false, maxRetriesPerRequest: 1 },
  worker: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null },
};

/** A Redis connection for one role, with an error listener so a blip is logged, not thrown. */
export function createRedis(url: string, role: RedisRole, logger: Logger): Redis {
  // No CLIENT SETINFO (Redis 7.2+): the gateway's Redis user may not send it (store-users.ts).
  const redis = new Redis(url, { ...ROLE_OPTIONS[role], connectionName: `pds-${role}`, disableClientInfo: true });
  redis.on('error', (err) => logger.warn({ err: err.message, role }, 'redis connection error'));
  return redis;
}

/** Resolves once the connection is ready (the offline queue is off for `command` connections). */
export async function redisReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  // Ended already: its 'end' event is gone, and no 'ready' will come without a connect().
  if (redis.status === 'end') throw new Error('redis connection ended before it was ready');
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      redis.off('end', onEnd);
      resolve();
    };
    const onEnd = () => {
      redis.off('ready', onReady);
      reject(new Error('redis connection ended before it was ready'));
    };
    redis.once('ready', onReady);
    redis.once('end', onEnd);
  });
}

/**
 * The body of a /ready answer: each dependency `ok` or `unavailable`, and whether all are ok
 * (callers answer 200 or 503 with it).
 */
export async function readiness(checks: Record<string, () => Promise<unknown>>): Promise<{ ready: boolean; body: Record<string, string> }> {
  const names = Object.keys(checks);
  const results = await Promise.allSettled(names.map((name) => (checks[name] as () => Promise<unknown>)()));
  const body: Record<string, string> = {};
  results.forEach((result, i) => {
    body[names[i] as string] = result.status === 'fulfilled' ? 'ok' : 'unavailable';
  });
  const ready = Object.values(body).every((v) => v === 'ok');
  return { ready, body: { status: ready ? 'ok' : 'unavailable', ...body } };
}
