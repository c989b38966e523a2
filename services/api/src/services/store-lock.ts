import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { errors, type Models } from '@pds/shared';

export interface StoreLockOptions {
  /** How long a holder keeps it at most (a crashed holder's lock is taken over after this). */
  ttlMs?: number;
  /** How long to wait for it before answering 409. */
  waitMs?: number;
}

/**
 * Runs `fn` holding the lock `key` in the store, so that a check and the write it allows (count the
 * tenant's resources, then create one) do not interleave with another request's. The lock is a
 * document with an owner token and an expiry: created if absent, taken over once expired, removed
 * by its owner only. Waits up to `waitMs` (5 s), then answers 409 asking to retry.
 */
export async function withStoreLock<T>(
  models: Pick<Models, 'StoreLock'>,
  key: string,
  fn: () => Promise<T>,
  { ttlMs = 10_000, waitMs = 5_000 }: StoreLockOptions = {},
): Promise<T> {
  const token = randomUUID();
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    const now = Date.now();
    const until = new Date(now + ttlMs);
    try {
      await models.StoreLock.create({ _id: key, token, until });
      break;
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    const taken = await models.StoreLock.findOneAndUpdate({ _id: key, until: { $lt: new Date(now) } }, { $set: { token, until } });
    if (taken) break;
    if (Date.now() >= deadline) throw errors.conflict(`another change of the same kind is in progress (${key}); retry`);
    await sleep(Math.min(200, 10 * 2 ** Math.min(attempt, 4)));
  }
  try {
    return await fn();
  } finally {
    await models.StoreLock.deleteOne({ _id: key, token }).catch(() => undefined); // an unreleased lock expires (its TTL)
  }
}
