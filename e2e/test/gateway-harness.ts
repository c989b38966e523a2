import { randomUUID } from 'node:crypto';
import { testMongo, testRedis, type Teardowns } from '@pds/devkit/tap';
import { LineSink } from '@pds/runner';
import { connectMongo, createLogger, createModels, createRedis, lineStore, type Models, redisReady, prepareStore } from '@pds/shared';
import { buildGateway, type GatewayOptions, SubscriptionHub } from '@pds/stream-gateway';
import type { Redis } from 'ioredis';

export const TOKEN = 'gateway-test-token-0123456789-abcdefghijklmnop';
const logger = createLogger({ name: 'gateway-test', level: 'silent' });

/** A gateway on real Redis and MongoDB, and a way to make jobs whose lines a test produces. */
export async function startGateway(t: Teardowns, options: GatewayOptions & { redisUrl?: string } = {}) {
  const [redisUrl, mongoUrl] = await Promise.all([options.redisUrl ?? testRedis(t), testMongo(t)]);
  const connection = await connectMongo(mongoUrl);
  t.teardown(() => connection.close());
  const models = createModels(connection);
  await prepareStore(models);
  const publisher = createRedis(redisUrl, 'worker', logger);
  const command = createRedis(redisUrl, 'command', logger);
  t.teardown(() => Promise.allSettled([publisher.quit(), command.quit()]));
  await Promise.all([publisher, command].map(redisReady));

  async function gateway() {
    const subscriber = createRedis(redisUrl, 'subscriber', logger);
    t.teardown(() => subscriber.quit().catch(() => undefined));
    const hub = new SubscriptionHub(subscriber, logger);
    const app = await buildGateway(
      { ADMIN_TOKEN: TOKEN },
      { models, hub, redis: command, mongoPing: async () => undefined },
      logger,
      options,
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.teardown(() => app.close());
    const port = (app.server.address() as { port: number }).port;
    return { app, hub, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}` };
  }

  return {
    models,
    publisher,
    command,
    redisUrl,
    gateway,
    job: async (status: 'queued' | 'running' = 'running') => {
      const made = await createJob(models, publisher, status);
      // A sink left open keeps retrying its writes once MongoDB is gone (for its outage tolerance),
      // which holds the test process open: flush it while the stores are still up.
      t.teardown(() => made.sink.close().catch(() => undefined));
      return made;
    },
  };
}

/** A job document plus the runner's line sink for it (what a runner would write and publish). */
export async function createJob(models: Models, publisher: Redis, status: 'queued' | 'running') {
  const jobId = randomUUID();
  await models.StackJob.create({
    _id: jobId,
    resourceId: 'r',
    resourceVersion: 1,
    kind: 'LocalFileSet',
    stackFqdn: `organization/p/${jobId}`,
    operation: 'up',
    status,
  });
  const sink = new LineSink({ jobId, publisher, store: lineStore(models).writer(jobId), logger, batchMs: 20 });
  return {
    jobId,
    sink,
    /** Ends the job as the runner does: lines persisted, document final, then `end` published. */
    async finish(status: 'succeeded' | 'failed' = 'succeeded') {
      const lastSeq = await sink.close();
      await models.StackJob.updateOne(
        { _id: jobId },
        { $set: { status, exitCode: status === 'succeeded' ? 0 : 1, lastSeq, finishedAt: new Date(), summary: { create: 1 } } },
      );
      sink.publish({
        type: 'end',
        jobId,
        status,
        exitCode: status === 'succeeded' ? 0 : 1,
        summary: { create: 1 },
        lastSeq,
        ts: new Date().toISOString(),
      });
      return lastSeq;
    },
  };
}
