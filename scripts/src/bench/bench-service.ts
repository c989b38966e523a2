/**
 * The service as the runner benches use it: private redis-server and FerretDB, the API (in-process,
 * called with inject) and a runner, on a scratch folder — all stopped by `stop()`.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createApiQueues } from '@pds/api';
import { startLocalFerretDb, startLocalRedis, testIsolation } from '@pds/devkit';
import { createRunner, type RunnerDeps } from '@pds/runner';
import {
  type Config,
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  isFinalStatus,
  jobChannel,
  type JobStatus,
  loadConfig,
  loadKindRegistry,
  redisReady,
  StackQueue,
  WaitingJobs,
  prepareStore,
} from '@pds/shared';
import { sleep } from './stats.js';

export const BENCH_TOKEN = 'bench-token-0123456789abcdef-abcdefghijklmnop';

export async function startBenchService(
  name: string,
  overrides: (scratch: string) => Partial<Config>,
  options: { onTimeline?: RunnerDeps['onTimeline'] } = {},
) {
  const logger = createLogger({ name: 'bench', level: 'silent' });
  const scratch = await mkdtemp(join(tmpdir(), `pds-${name}-bench-`));
  await chmod(scratch, 0o711); // jobs run as their slot's uid and must reach their folders

  const redis = await startLocalRedis();
  const ferret = await startLocalFerretDb({ dataDir: join(scratch, 'ferret') });
  const config = loadConfig(
    {},
    {
      MONGO_URL: ferret.url,
      REDIS_URL: redis.url,
      ADMIN_TOKEN: BENCH_TOKEN,
      PULUMI_BACKEND_URL: `file://${join(scratch, 'state')}`,
      WORK_DIR: join(scratch, 'work'),
      LOCAL_FILES_ROOT: tmpdir(),
      RUNNER_ISOLATION: testIsolation().isolation,
      LOG_LEVEL: 'silent',
      ...overrides(scratch),
    },
  );
  const connection = await connectMongo(config.MONGO_URL);
  const models = createModels(connection);
  await prepareStore(models);
  const kinds = await loadKindRegistry(config.MODULES_DIR);
  const [command, worker, publisher, subscriber] = (['command', 'worker', 'worker', 'subscriber'] as const).map((role) =>
    createRedis(redis.url, role, logger),
  ) as [ReturnType<typeof createRedis>, ReturnType<typeof createRedis>, ReturnType<typeof createRedis>, ReturnType<typeof createRedis>];
  await Promise.all([command, worker, publisher, subscriber].map(redisReady));
  const queues = createApiQueues(worker);
  const apiSubscriber = createRedis(redis.url, 'subscriber', logger);
  const app = await buildApp(
    config,
    {
      models,
      kinds,
      ...queues,
      redis: command,
      subscriber: apiSubscriber,
      stacks: new StackQueue(command),
      waiting: new WaitingJobs(command),
      mongoPing: async () => undefined,
    },
    logger,
  );
  const runner = createRunner({ config, models, kinds, connection: worker, publisher, subscriber, logger, ...options });
  await runner.start();
  // Jobs' ends heard on their channels, so waiting loads neither FerretDB nor the measured service.
  const ends = createRedis(redis.url, 'subscriber', logger);
  await redisReady(ends);
  const ended = new Set<string>();
  ends.on('pmessage', (_pattern: string, _channel: string, message: string) => {
    const parsed = JSON.parse(message) as { type: string; jobId: string };
    if (parsed.type === 'end') ended.add(parsed.jobId);
  });
  await ends.psubscribe(jobChannel('*'));
  const auth = { authorization: `Bearer ${BENCH_TOKEN}` };

  return {
    config,
    models,
    kinds,
    app,
    auth,
    scratch,
    redisUrl: redis.url,
    publisher,
    /** The runner queue, as the API opened it (a bench's jobs that skip the dispatcher go straight onto it). */
    queue: queues.queue,
    stacks: new StackQueue(command),
    runner,
    logger,
    /** Creates a LocalFileSet resource; returns its id. */
    async createResource(resourceName: string, spec = `  directory: /tmp/${resourceName}\n  files: []\n`): Promise<{ id: string }> {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/resources',
        headers: { ...auth, 'content-type': 'application/yaml' },
        payload: `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${resourceName}\nspec:\n${spec}`,
      });
      return res.json() as { id: string };
    },
    async queueJob(resourceId: string, operation = 'refresh'): Promise<{ id: string }> {
      return (
        await app.inject({ method: 'POST', url: `/v1/resources/${resourceId}/jobs`, headers: auth, payload: { operation } })
      ).json() as { id: string };
    },
    /** Waits until every job has ended; returns their final statuses. */
    async waitEnded(ids: string[]): Promise<JobStatus[]> {
      while (!ids.every((id) => ended.has(id))) await sleep(5);
      for (;;) {
        // One read by id each: an `$in` is a collection scan on FerretDB (the store bench holds 100,000 jobs).
        const docs = await Promise.all(ids.map((id) => models.StackJob.findById(id, { status: 1 }).lean<{ status: JobStatus }>()));
        if (docs.every((d) => d && isFinalStatus(d.status))) return docs.map((d) => d!.status);
        await sleep(20);
      }
    },
    async stop(): Promise<void> {
      await runner.close();
      await app.close();
      await queues.close();
      await Promise.allSettled([command, worker, publisher, subscriber, ends, apiSubscriber].map((r) => r.quit()));
      await connection.close();
      await Promise.allSettled([ferret.stop(), redis.stop()]);
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
