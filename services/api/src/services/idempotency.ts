import { createHash } from 'node:crypto';
import { errors, idempotencyKey } from '@pds/shared';
import type { Redis } from 'ioredis';

const TTL_SECONDS = 24 * 3600;
const PENDING = 'pending';

/**
 * `Idempotency-Key` for creating requests: the first request with a key does the work and records
 * its result id; a retry with the same key and the same body gets that id back; the same key with
 * another body is a 409. Keys are per caller and kept 24 h. Recorded in Redis with SET NX, so two
 * concurrent retries cannot both create.
 */
export function idempotency(redis: Pick<Redis, 'set' | 'get' | 'del'>) {
  return {
    /**
     * Runs `create` once per (caller, key, body). Returns the id `create` returned, and whether
     * this call created it or replayed an earlier one.
     */
    async once(principalId: string, key: string, body: unknown, create: () => Promise<string>): Promise<{ id: string; replayed: boolean }> {
      const redisKey = idempotencyKey(principalId, key);
      const fingerprint = createHash('sha256').update(JSON.stringify(body)).digest('hex');
      const unavailable = (err: Error) => {
        throw errors.unavailable(`Idempotency-Key cannot be checked (Redis is unavailable); nothing was created: ${err.message}`);
      };
      const taken = await redis.set(redisKey, `${PENDING}:${fingerprint}`, 'EX', TTL_SECONDS, 'NX').catch(unavailable);
      if (taken === null) {
        const recorded = (await redis.get(redisKey).catch(unavailable)) ?? '';
        const [state, recordedPrint] = recorded.split(':');
        if (recordedPrint !== fingerprint) {
          throw errors.conflict(`Idempotency-Key "${key}" was already used with a different request body; use a new key for a new request`);
        }
        if (state === PENDING) throw errors.conflict(`a request with Idempotency-Key "${key}" is still being processed; retry shortly`);
        return { id: state!, replayed: true };
      }
      try {
        const id = await create();
        // Created either way. Not recorded (Redis failed just now): the key stays pending, so a retry is
        // refused (409) until it expires rather than creating twice.
        await redis.set(redisKey, `${id}:${fingerprint}`, 'EX', TTL_SECONDS).catch(() => undefined);
        return { id, replayed: false };
      } catch (err) {
        // Nothing was created: the key is free for a retry.
        // Not freed (Redis failed just now): a retry with this key is refused as pending until it
        // expires (24 h); a new key works.
        await redis.del(redisKey).catch(() => undefined);
        throw err;
      }
    },
  };
}
