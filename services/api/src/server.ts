/** API process entry point: config, connections, the app, listen, graceful shutdown. */
import {
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  loadServiceConfig,
  loadKindRegistry,
  StackQueue,
  WaitingJobs,
  redisReady,
  prepareStore,
} from '@pds/shared';
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { createApiQueues } from './queues.js';

const config = loadServiceConfig('api', process.env);
const logger = createLogger({ name: 'api', level: config.LOG_LEVEL });
const connection = await connectMongo(config.MONGO_URL);
const models = createModels(connection);
await prepareStore(models, logger);
const kinds = await loadKindRegistry(config.MODULES_DIR);
// Fail fast while Redis is away, so job creation answers 503 instead of hanging.
const redis = createRedis(config.REDIS_URL, 'command', logger);
// Give Redis a moment to connect before taking requests; if it is down the API still starts and
// answers 503 for what needs it.
await Promise.race([redisReady(redis).catch(() => undefined), new Promise((r) => setTimeout(r, 5_000))]);
const queues = createApiQueues(redis, { onError: (err) => logger.warn({ err: err.message }, 'queue error') });
// Hears that an ended job changed, so its cached view is dropped.
const subscriber = createRedis(config.REDIS_URL, 'subscriber', logger);

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
    mongoPing: () => connection.db?.admin().ping() as Promise<unknown>,
  },
  logger,
);
await app.listen({ host: config.HOST, port: config.PORT });

closeWithGrace({ delay: 10_000, logger }, async ({ err }) => {
  if (err) logger.error({ err }, 'closing after an error');
  await app.close();
  await Promise.allSettled([queues.close(), redis.quit(), subscriber.quit(), connection.close()]);
});
