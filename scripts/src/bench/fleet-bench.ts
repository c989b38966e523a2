/**
 * Scheduling figures with a trivial stand-in CLI (e2e/fixtures/stand-in-pulumi.sh), each beside a
 * raw baseline measured in the same run:
 * - job created → Pulumi process spawned (p50/p99, one job at a time on an idle runner) vs BullMQ's
 *   own add → processor latency on the same Redis;
 * - jobs/s at RUNNER_CONCURRENCY 8 over many stacks vs spawning the stand-in directly with execa, 8 at a time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { buildApp } from '@pds/api';
import { startLocalFerretDb, startLocalRedis } from '@pds/devkit';
import { createRunner } from '@pds/runner';
import {
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  isFinalStatus,
  type JobStatus,
  loadConfig,
  loadKindRegistry,
  redisReady,
  STACK_JOBS_QUEUE,
  StackQueue,
  syncIndexes,
} from '@pds/shared';
import { Queue, Worker } from 'bullmq';
import { execa } from 'execa';
import { percentile, row, sleep } from './stats.js';

const STAND_IN = fileURLToPath(new URL('../../../e2e/fixtures/stand-in-pulumi.sh', import.meta.url));
const logger = createLogger({ name: 'bench', level: 'silent' });
const TOKEN = 'bench-token-0123456789abcdef';
const CONCURRENCY = 8;

export async function fleetBench(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'pds-fleet-bench-'));
  process.env.STAND_IN_LOG = join(scratch, 'stand-in.log');
  process.env.STAND_IN_MS = '0';
  const redis = await startLocalRedis();
  const ferret = await startLocalFerretDb({ dataDir: join(scratch, 'ferret') });
  const config = loadConfig(
    {},
    {
      MONGO_URL: ferret.url,
      REDIS_URL: redis.url,
      ADMIN_TOKEN: TOKEN,
      PULUMI_BIN: STAND_IN,
      PULUMI_BACKEND_URL: `file://${join(scratch, 'state')}`,
      WORK_DIR: join(scratch, 'work'),
      RUNNER_CONCURRENCY: CONCURRENCY,
      LOG_LEVEL: 'silent',
    },
  );
  const connection = await connectMongo(config.MONGO_URL);
  const models = createModels(connection);
  await syncIndexes(models);
  const kinds = await loadKindRegistry(config.MODULES_DIR);
  const [command, worker, publisher, subscriber] = ['command', 'worker', 'worker', 'subscriber'].map((role) =>
    createRedis(redis.url, role as 'command', logger),
  ) as [ReturnType<typeof createRedis>, ReturnType<typeof createRedis>, ReturnType<typeof createRedis>, ReturnType<typeof createRedis>];
  await Promise.all([command, worker, publisher, subscriber].map(redisReady));
  const queue = new Queue(STACK_JOBS_QUEUE, { connection: worker });
  const app = await buildApp(
    config,
    { models, kinds, queue, redis: command, stacks: new StackQueue(command), mongoPing: async () => undefined },
    logger,
  );
  const runner = createRunner({ config, models, kinds, connection: worker, publisher, subscriber, logger });
  await runner.start();
  const auth = { authorization: `Bearer ${TOKEN}` };
  const createResource = async (name: string) =>
    (
      await app.inject({
        method: 'POST',
        url: '/v1/resources',
        headers: { ...auth, 'content-type': 'application/yaml' },
        payload: `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: /tmp/${name}\n  files: []\n`,
      })
    ).json() as { id: string };
  const queueJob = async (resourceId: string) =>
    (
      await app.inject({ method: 'POST', url: `/v1/resources/${resourceId}/jobs`, headers: auth, payload: { operation: 'refresh' } })
    ).json() as {
      id: string;
    };
  const waitEnded = async (ids: string[]) => {
    for (;;) {
      const docs = await models.StackJob.find({ _id: { $in: ids } }, { status: 1 }).lean<{ status: JobStatus }[]>();
      if (docs.length === ids.length && docs.every((d) => isFinalStatus(d.status))) return;
      await sleep(20);
    }
  };
  try {
    console.log(`\n== fleet scheduling (stand-in CLI; ours vs raw, same run) ==`);
    // 1. Created → spawned, one job at a time.
    const single = await createResource('latency');
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) {
      const job = await queueJob(single.id);
      await waitEnded([job.id]);
      const doc = await models.StackJob.findById(job.id, { createdAt: 1, spawnedAt: 1 }).lean<{ createdAt: Date; spawnedAt?: Date }>();
      if (doc?.spawnedAt) latencies.push(doc.spawnedAt.getTime() - doc.createdAt.getTime());
      if (process.env.BENCH_DEBUG) {
        const d = await models.StackJob.findById(job.id).lean<{ createdAt: Date; startedAt: Date; spawnedAt: Date; finishedAt: Date }>();
        console.log(
          'started +',
          d!.startedAt.getTime() - d!.createdAt.getTime(),
          'spawned +',
          d!.spawnedAt.getTime() - d!.createdAt.getTime(),
          'finished +',
          d!.finishedAt.getTime() - d!.createdAt.getTime(),
        );
      }
    }
    const rawQueue = new Queue('raw-latency', { connection: worker });
    const seen = new Map<string, number>();
    const rawWorker = new Worker('raw-latency', async (job) => void seen.set(job.id!, performance.now()), {
      connection: createRedis(redis.url, 'worker', logger),
    });
    const raw: number[] = [];
    for (let i = 0; i < 40; i++) {
      const start = performance.now();
      const job = await rawQueue.add('x', {});
      while (!seen.has(job.id!)) await sleep(0);
      raw.push(seen.get(job.id!)! - start);
    }
    await rawWorker.close();
    await rawQueue.close();
    row(
      'job created -> pulumi spawned p50',
      percentile(latencies, 50),
      percentile(raw, 50),
      'ms',
      '<= 10 ms and <= 5x raw BullMQ add -> process',
    );
    row('job created -> pulumi spawned p99', percentile(latencies, 99), percentile(raw, 99), 'ms', '<= 30 ms');

    // 2. Throughput over many stacks at concurrency 8.
    const stacks = await Promise.all(Array.from({ length: 40 }, (_, i) => createResource(`fleet-${i}`)));
    const jobsPerStack = 5;
    let start = performance.now();
    const ids: string[] = [];
    for (let round = 0; round < jobsPerStack; round++) for (const stack of stacks) ids.push((await queueJob(stack.id)).id);
    await waitEnded(ids);
    const ours = ids.length / ((performance.now() - start) / 1000);
    start = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < ids.length) {
          next++;
          await execa(STAND_IN, ['refresh', '--stack', 'organization/raw/raw']);
        }
      }),
    );
    const rawRate = ids.length / ((performance.now() - start) / 1000);
    row(
      `jobs/s, ${ids.length} refreshes on ${stacks.length} stacks, concurrency ${CONCURRENCY}`,
      ours,
      rawRate,
      'jobs/s',
      '>= 40 % of raw execa spawns (ratio >= 0.4)',
    );
  } finally {
    await runner.close();
    await app.close();
    await queue.close();
    await Promise.allSettled([command, worker, publisher, subscriber].map((r) => r.quit()));
    await connection.close();
    await Promise.allSettled([ferret.stop(), redis.stop()]);
    await rm(scratch, { recursive: true, force: true });
  }
}
