/** Stream gateway entry point: config, connections, the app, listen, graceful shutdown. */
import { connectMongo, createLogger, createModels, createRedis, loadServiceConfig } from '@pds/shared';
import closeWithGrace from 'close-with-grace';
import { buildGateway } from './app.js';
import { SubscriptionHub } from './subscription-hub.js';

const config = loadServiceConfig('stream-gateway', process.env, { PORT: Number(process.env.PORT ?? 3001) });
const logger = createLogger({ name: 'stream-gateway', level: config.LOG_LEVEL });
const connection = await connectMongo(config.MONGO_URL, { readOnly: true }); // its store user only reads
const models = createModels(connection);
const subscriber = createRedis(config.REDIS_URL, 'subscriber', logger);
const redis = createRedis(config.REDIS_URL, 'command', logger);
const hub = new SubscriptionHub(subscriber, logger);

const app = await buildGateway(config, { models, hub, redis, mongoPing: () => connection.db?.admin().ping() as Promise<unknown> }, logger);
await app.listen({ host: config.HOST, port: config.PORT });

closeWithGrace({ delay: 10_000, logger }, async ({ err }) => {
  if (err) logger.error({ err }, 'closing after an error');
  await app.close();
  await Promise.allSettled([subscriber.quit(), redis.quit(), connection.close()]);
});
