import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import t from 'tap';
import { isTransientError, retryTransient } from '../src/transient.js';

/** A port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

t.test('the errors real clients give for an unreachable server are transient; others are not', async (t) => {
  const port = await closedPort();
  const mongo = mongoose.createConnection(`mongodb://127.0.0.1:${port}/x`, { serverSelectionTimeoutMS: 300 });
  const mongoError = await mongo.asPromise().then(
    () => undefined,
    (err: unknown) => err,
  );
  await mongo.close().catch(() => undefined);
  t.ok(isTransientError(mongoError), `MongoDB driver: ${(mongoError as Error)?.name}`);

  const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  const redisError = await redis.get('k').then(
    () => undefined,
    (err: unknown) => err,
  );
  redis.disconnect();
  t.ok(isTransientError(redisError), `ioredis: ${(redisError as Error)?.message}`);

  t.notOk(isTransientError(new TypeError('x is undefined')), 'a bug is not');
  t.notOk(isTransientError(new Error('E11000 duplicate key error')), 'a refused write is not');
  t.ok(isTransientError(new Error('wrapped', { cause: Object.assign(new Error('read'), { code: 'ECONNRESET' }) })), 'a cause counts');
  const bulk = Object.assign(new Error('connection 6 to 127.0.0.1:41569 closed'), { name: 'MongoBulkWriteError' });
  t.ok(isTransientError(bulk), 'a pooled MongoDB connection closed under a write, whatever the error is named');
  t.notOk(isTransientError(new Error('the connection 6 to the past closed a chapter')), 'only that message, not any text with the words');
});

t.test('retryTransient retries transient failures until they pass, within the tolerance only', async (t) => {
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  let calls = 0;
  const waits: number[] = [];
  const value = await retryTransient(
    async () => {
      if (++calls < 4) throw refused();
      return 'stored';
    },
    { toleranceMs: 5_000, firstWaitMs: 10, onRetry: (_err, _attempt, wait) => waits.push(wait) },
  );
  t.equal(value, 'stored');
  t.equal(calls, 4);
  t.same(waits, [10, 20, 40], 'the waits double');

  let tries = 0;
  const started = Date.now();
  await t.rejects(
    retryTransient(
      async () => {
        tries++;
        throw refused();
      },
      { toleranceMs: 200, firstWaitMs: 10, maxWaitMs: 50 },
    ),
    { code: 'ECONNREFUSED' },
    'past the tolerance the last error comes out',
  );
  t.ok(Date.now() - started >= 200 && tries > 3, `gave up after ${tries} tries`);

  let once = 0;
  await t.rejects(
    retryTransient(
      async () => {
        once++;
        throw new TypeError('a bug');
      },
      { toleranceMs: 5_000 },
    ),
    TypeError,
  );
  t.equal(once, 1, 'a non-transient error is not retried');
});
