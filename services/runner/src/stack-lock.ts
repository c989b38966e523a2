import { randomUUID } from 'node:crypto';
import { stackLockKey } from '@pds/shared';
import type { Redis } from 'ioredis';

/** Deletes the key only if it still holds our token (a late runner never frees someone else's lock). */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
/** Extends the key's TTL only if it still holds our token. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export interface HeldLock {
  readonly token: string;
  release(): Promise<void>;
}

/**
 * A per-stack mutual-exclusion lock in Redis with a TTL that is renewed while held, so a lock
 * whose runner died expires by itself.
 */
export class StackLocks {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs = 30_000,
  ) {}

  /** Takes the stack's lock, or returns undefined when another run holds it. */
  async tryAcquire(stackFqdn: string): Promise<HeldLock | undefined> {
    const key = stackLockKey(stackFqdn);
    const token = randomUUID();
    const ok = await this.redis.set(key, token, 'PX', this.ttlMs, 'NX');
    if (ok !== 'OK') return undefined;
    const renewal = setInterval(() => {
      this.redis.eval(RENEW, 1, key, token, String(this.ttlMs)).catch(() => {
        // the next tick tries again; the TTL covers several missed renewals
      });
    }, this.ttlMs / 3);
    renewal.unref();
    return {
      token,
      release: async () => {
        clearInterval(renewal);
        await this.redis.eval(RELEASE, 1, key, token);
      },
    };
  }
}
