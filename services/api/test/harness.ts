import { randomUUID } from 'node:crypto';
import { startLocalRedis } from '@pds/devkit';
import { type Teardowns, testMongo } from '@pds/devkit/tap';
import {
  type Config,
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  loadConfig,
  loadKindRegistry,
  StackQueue,
  WaitingJobs,
  redisReady,
  prepareStore,
} from '@pds/shared';
import { buildApp } from '../src/app.js';
import { createApiQueues } from '../src/queues.js';

export const TOKEN = 'api-test-token-0123456789-abcdefghijklmnop';
export const auth = { authorization: `Bearer ${TOKEN}` };

export const CREDENTIALS_KEY = Buffer.alloc(32, 7).toString('base64');

/**
 * The API on a real MongoDB wire server and its own redis-server (so a test may stop it).
 * `logs` receives every log line when given (to check what the API writes).
 */
export async function startApi(t: Teardowns, options: { config?: Partial<Config>; logs?: (line: string) => void } = {}) {
  const [mongoUrl, redisServer] = await Promise.all([testMongo(t), startLocalRedis()]);
  t.teardown(() => redisServer.stop());
  const config = loadConfig(
    {},
    { MONGO_URL: mongoUrl, REDIS_URL: redisServer.url, ADMIN_TOKEN: TOKEN, CREDENTIALS_KEY, LOCAL_FILES_ROOT: '/tmp', ...options.config },
  );
  const logs = options.logs;
  const logger = logs
    ? createLogger({ name: 'api-test', level: 'trace' }, { write: (line: string) => logs(line) })
    : createLogger({ name: 'api-test', level: 'silent' });
  const connection = await connectMongo(config.MONGO_URL);
  t.teardown(() => connection.close());
  const models = createModels(connection);
  await prepareStore(models);
  const kinds = await loadKindRegistry(config.MODULES_DIR);
  const redis = createRedis(config.REDIS_URL, 'command', logger);
  t.teardown(() => redis.disconnect());
  // Fail-fast connection: wait until it is up, or the first request would be a (correct) 503.
  await redisReady(redis);
  const prefix = `test-${randomUUID()}`;
  const queues = createApiQueues(redis, { prefix });
  t.teardown(() => queues.close());
  const { queue, webhookQueue } = queues;
  const subscriber = createRedis(config.REDIS_URL, 'subscriber', logger);
  t.teardown(() => subscriber.disconnect());
  const app = await buildApp(
    config,
    {
      models,
      kinds,
      ...queues,
      redis,
      subscriber,
      stacks: new StackQueue(redis),
      waiting: new WaitingJobs(redis),
      mongoPing: () => connection.db!.admin().ping(),
    },
    logger,
  );
  t.teardown(() => app.close());
  return { app, models, queue, redis, waiting: new WaitingJobs(redis), webhookQueue, redisServer, config };
}

export const manifest = (name: string, extra = '') => `apiVersion: deploy.pulumi.dev/v1
kind: LocalFileSet
metadata:
  name: ${name}
${extra}spec:
  directory: /tmp/${name}
  files: []
`;
