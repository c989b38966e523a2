/**
 * Runner process entry point: reads config, connects to Mongo and Redis, runs the worker, serves
 * /health, and drains on SIGTERM (running jobs are cancelled cleanly; nothing is left `running`).
 */
import { createServer } from 'node:http';
import { connectMongo, createLogger, createModels, createRedis, loadKindRegistry, loadServiceConfig, prepareStore } from '@pds/shared';
import closeWithGrace from 'close-with-grace';
import { createRunner } from './runner.js';

const config = loadServiceConfig('runner', process.env, { PORT: Number(process.env.PORT ?? 3002) });
const logger = createLogger({ name: 'runner', level: config.LOG_LEVEL });

const connection = await connectMongo(config.MONGO_URL);
const models = createModels(connection);
await prepareStore(models, logger);
const kinds = await loadKindRegistry(config.MODULES_DIR);
const redis = createRedis(config.REDIS_URL, 'worker', logger);
const publisher = createRedis(config.REDIS_URL, 'worker', logger);
const subscriber = createRedis(config.REDIS_URL, 'subscriber', logger);
const runner = createRunner({
  config,
  models,
  kinds,
  connection: redis,
  publisher,
  subscriber,
  logger,
  heartbeatMs: config.RUNNER_HEARTBEAT_SECONDS * 1000,
});
await runner.start().catch((err: Error) => {
  // Isolation asked for and not to be had (or another start-up failure): say why, then stop.
  logger.fatal({ err: err.message }, 'runner cannot start');
  throw err;
});

const health = createServer((req, res) => {
  if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(runner.metrics.render());
    return;
  }
  const ok = req.url === '/health' || (req.url === '/ready' && runner.worker.isRunning());
  res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
  // Readiness says how jobs are isolated: `none` is visible to whoever watches the fleet.
  res.end(JSON.stringify({ status: ok ? 'ok' : 'unavailable', runnerId: runner.runnerId, isolation: runner.isolation }));
});
health.listen(config.PORT, config.HOST);
logger.info(
  { kinds: [...kinds.keys()], concurrency: config.RUNNER_CONCURRENCY, port: config.PORT, isolation: runner.isolation },
  'runner started',
);

closeWithGrace({ delay: 60_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'closing after an error');
  else logger.info({ signal }, 'draining');
  health.close();
  await runner.close();
  await Promise.allSettled([redis.quit(), publisher.quit(), subscriber.quit(), connection.close()]);
});
