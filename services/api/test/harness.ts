import { randomUUID } from 'node:crypto';
import { startLocalRedis } from '@pds/devkit';
import { type Teardowns, testMongo } from '@pds/devkit/tap';
import {
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  loadConfig,
  loadKindRegistry,
  STACK_JOBS_QUEUE,
  StackQueue,
  redisReady,
  syncIndexes,
} from '@pds/shared';
import { Queue } from 'bullmq';
import { buildApp } from '../src/app.js';

export const TOKEN = 'api-test-token-0123456789';
export const auth = { authorization: `Bearer ${TOKEN}` };

/** The API on a real MongoDB wire server and its own redis-server (so a test may stop it). */
export async function startApi(t: Teardowns) {
  const [mongoUrl, redisServer] = await Promise.all([testMongo(t), startLocalRedis()]);
  t.teardown(() => redisServer.stop());
  const config = loadConfig({}, { MONGO_URL: mongoUrl, REDIS_URL: redisServer.url, ADMIN_TOKEN: TOKEN });
  const logger = createLogger({ name: 'api-test', level: 'silent' });
  const connection = await connectMongo(config.MONGO_URL);
  t.teardown(() => connection.close());
  const models = createModels(connection);
  await syncIndexes(models);
  const kinds = await loadKindRegistry(config.MODULES_DIR);
  const redis = createRedis(config.REDIS_URL, 'command', logger);
  t.teardown(() => redis.disconnect());
  // Fail-fast connection: wait until it is up, or the first request would be a (correct) 503.
  await redisReady(redis);
  const queue = new Queue(STACK_JOBS_QUEUE, { connection: redis, prefix: `test-${randomUUID()}` });
  queue.on('error', () => undefined);
  t.teardown(() => queue.close().catch(() => undefined));
  const app = await buildApp(
    config,
    { models, kinds, queue, redis, stacks: new StackQueue(redis), mongoPing: () => connection.db!.admin().ping() },
    logger,
  );
  t.teardown(() => app.close());
  return { app, models, queue, redisServer };
}

export const manifest = (name: string, extra = '') => `apiVersion: deploy.pulumi.dev/v1
kind: LocalFileSet
metadata:
  name: ${name}
${extra}spec:
  directory: /tmp/${name}
  files: []
`;
