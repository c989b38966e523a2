/**
 * The server half of the API bench, in a process of its own (so the load generator does not share
 * its event loop): the real API on MONGO_URL / REDIS_URL, and a bare Fastify app whose routes do no
 * work (the baseline). Prints `{ api, bare }` ports as one JSON line, then serves until killed.
 */
import { randomUUID } from 'node:crypto';
import { buildApp, createApiQueues } from '@pds/api';
import {
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  loadConfig,
  loadKindRegistry,
  redisReady,
  StackQueue,
  WaitingJobs,
  prepareStore,
} from '@pds/shared';
import Fastify from 'fastify';

const config = loadConfig(process.env, { LOG_LEVEL: 'silent' });
const logger = createLogger({ name: 'bench-api', level: 'silent' });
const connection = await connectMongo(config.MONGO_URL);
const models = createModels(connection);
await prepareStore(models);
const redis = createRedis(config.REDIS_URL, 'command', logger);
await redisReady(redis);
const queues = createApiQueues(redis, { prefix: `bench-${randomUUID()}` });
const api = await buildApp(
  config,
  {
    models,
    kinds: await loadKindRegistry(config.MODULES_DIR),
    ...queues,
    redis,
    subscriber: createRedis(config.REDIS_URL, 'subscriber', logger),
    stacks: new StackQueue(redis),
    waiting: new WaitingJobs(redis),
    mongoPing: () => connection.db!.admin().ping(),
  },
  logger,
);
await api.listen({ host: '127.0.0.1', port: 0 });

// The baseline: Fastify with the same kind of response, no auth, no database.
const bare = Fastify();
const job = {
  id: randomUUID(),
  status: 'succeeded',
  operation: 'up',
  stackFqdn: 'organization/bench/bare',
  lastSeq: 12,
  createdAt: new Date().toISOString(),
};
bare.get('/bare/jobs/:id', async () => job);
bare.post('/bare/jobs', async (_request, reply) => reply.code(202).send(job));
await bare.listen({ host: '127.0.0.1', port: 0 });

// An ended job, as a runner leaves one (the common read: a client checking a result).
const ended = await models.StackJob.create({
  resourceId: 'bench',
  resourceVersion: 1,
  kind: 'LocalFileSet',
  stackFqdn: 'organization/local-file-set/bench-ended',
  operation: 'up',
  status: 'succeeded',
  startedAt: new Date(),
  finishedAt: new Date(),
  exitCode: 0,
  outputs: { directory: '/tmp/bench' },
  summary: { create: 2 },
  lastSeq: 12,
});

const port = (app: { server: { address(): unknown } }) => (app.server.address() as { port: number }).port;
console.log(JSON.stringify({ api: port(api), bare: port(bare), endedJobId: ended._id }));
