/** API process entry point: config, connections, the app, listen, graceful shutdown. */
import {
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  loadServiceConfig,
  loadKindRegistry,
  STACK_JOBS_QUEUE,
  WEBHOOKS_QUEUE,
  DRIFT_QUEUE,
  StackQueue,
  redisReady,
  prepareStore,
} from '@pds/shared';
import { Queue } from 'bullmq';
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';

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
const queue = new Queue(STACK_JOBS_QUEUE, { connection: redis });
const webhookQueue = new Queue(WEBHOOKS_QUEUE, { connection: redis });
const driftQueue = new Queue(DRIFT_QUEUE, { connection: redis });
driftQueue.on('error', (err) => logger.warn({ err: err.message }, 'drift queue error'));
webhookQueue.on('error', (err) => logger.warn({ err: err.message }, 'webhook queue error'));
// Hears that an ended job changed, so its cached view is dropped.
const subscriber = createRedis(config.REDIS_URL, 'subscriber', logger);
queue.on('error', (err) => logger.warn({ err: err.message }, 'queue error'));

const app = await buildApp(
  config,
  {
    models,
    kinds,
    queue,
    webhookQueue,
    driftQueue,
    redis,
    subscriber,
    stacks: new StackQueue(redis),
    mongoPing: () => connection.db?.admin().ping() as Promise<unknown>,
  },
  logger,
);
await app.listen({ host: config.HOST, port: config.PORT });

closeWithGrace({ delay: 10_000, logger }, async ({ err }) => {
  if (err) logger.error({ err }, 'closing after an error');
  await app.close();
  await Promise.allSettled([queue.close(), webhookQueue.close(), driftQueue.close(), redis.quit(), subscriber.quit(), connection.close()]);
});
