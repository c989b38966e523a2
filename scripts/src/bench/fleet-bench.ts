/**
 * Scheduling figures with a trivial stand-in CLI (e2e/fixtures/stand-in-pulumi.sh), each beside a
 * raw baseline measured in the same run:
 * - job created → first Pulumi process spawned (p50/p99, one job at a time on an idle runner) vs
 *   BullMQ's own add → processor latency on the same Redis;
 * - jobs/s at RUNNER_CONCURRENCY 8 over many stacks vs spawning the stand-in directly with execa, 8 at a time.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { jobWritableFile, standInIsolation } from '@pds/devkit';
import { createRedis, jobOnResource, type ResourceDoc, STACK_JOBS_QUEUE, stackKeyOf } from '@pds/shared';
import { Queue, Worker } from 'bullmq';
import { execa } from 'execa';
import { startBenchService } from './bench-service.js';
import { benchStep, fmt, percentile, row, sized, sleep } from './stats.js';

export const STAND_IN = fileURLToPath(new URL('../../../e2e/fixtures/stand-in-pulumi.sh', import.meta.url));
const CONCURRENCY = 8;

type BenchService = Awaited<ReturnType<typeof startBenchService>>;

/** Where one ended job's time went: created → spawned, created → started, started → spawned (undefined: it never spawned). */
async function timesOf(service: BenchService, jobId: string) {
  const doc = await service.models.StackJob.findById(jobId, { createdAt: 1, startedAt: 1, spawnedAt: 1 }).lean<{
    createdAt: Date;
    startedAt?: Date;
    spawnedAt?: Date;
  }>();
  if (!doc?.spawnedAt || !doc.startedAt) return undefined;
  const [created, started, spawned] = [doc.createdAt, doc.startedAt, doc.spawnedAt].map((d) => d.getTime()) as [number, number, number];
  return { latency: spawned - created, toStart: started - created, toSpawn: spawned - started };
}

/**
 * Created → spawned of `n` jobs run one at a time, and where the time goes: created -> started (API
 * writes, queue, pick-up, stack lock) and started -> spawned (claim, reads, folders, process start).
 */
export async function spawnLatencies(
  service: BenchService,
  n: number,
  resourceName = 'latency',
  queue: (service: BenchService, resourceId: string) => Promise<{ id: string }> = (s, id) => s.queueJob(id),
) {
  const single = await service.createResource(resourceName);
  const latencies: number[] = [];
  const toStart: number[] = [];
  const toSpawn: number[] = [];
  for (let i = 0; i < n; i++) {
    const job = await queue(service, single.id);
    await service.waitEnded([job.id]);
    const times = await timesOf(service, job.id);
    if (!times) continue;
    latencies.push(times.latency);
    toStart.push(times.toStart);
    toSpawn.push(times.toSpawn);
  }
  return { latencies, toStart, toSpawn };
}

/**
 * Created → spawned through the API (the dispatcher's way, or its fast lane) and straight onto the
 * runner queue, one job at a time, taking turns: a machine's drift and warm-up weigh on both alike.
 */
async function pairedLatencies(service: BenchService, n: number): Promise<{ through: number[]; straight: number[] }> {
  const [viaApi, direct] = await Promise.all([service.createResource('paired-api'), service.createResource('paired-direct')]);
  const through: number[] = [];
  const straight: number[] = [];
  const run = async (queue: () => Promise<{ id: string }>) => {
    const job = await queue();
    await service.waitEnded([job.id]);
    return (await timesOf(service, job.id))?.latency;
  };
  for (let i = 0; i < n; i++) {
    // Which goes first changes every round; a round counts only when both jobs spawned.
    const viaApiFirst = i % 2 === 0;
    const first = await run(viaApiFirst ? () => service.queueJob(viaApi.id) : () => queueDirect(service, direct.id));
    const second = await run(viaApiFirst ? () => queueDirect(service, direct.id) : () => service.queueJob(viaApi.id));
    if (first === undefined || second === undefined) continue;
    through.push(viaApiFirst ? first : second);
    straight.push(viaApiFirst ? second : first);
  }
  return { through, straight };
}

/**
 * A job queued as before the dispatcher: its document, its stack's line, then straight onto the
 * runner queue (no tenant line, no dispatch): the baseline of what the dispatcher costs.
 */
async function queueDirect(service: BenchService, resourceId: string): Promise<{ id: string }> {
  const resource = await service.models.Resource.findById(resourceId).lean<ResourceDoc>();
  if (!resource) throw new Error(`resource ${resourceId} not found`);
  const fields = { ...jobOnResource(resource), operation: 'refresh' as const, options: {} };
  const job = await service.models.StackJob.create(fields);
  const stackKey = stackKeyOf(fields.tenantId, fields.stackFqdn);
  await service.stacks.enqueue(stackKey, job._id);
  await service.queue.add(
    STACK_JOBS_QUEUE,
    { stackFqdn: fields.stackFqdn, stackKey, tenantId: fields.tenantId, resourceId },
    { jobId: job._id, removeOnComplete: { age: 3600 } },
  );
  return { id: job._id };
}

/** What running each job as its slot's uid costs on created -> spawned: isolated vs not, same run. */
async function isolationCost(isolated: number[]): Promise<void> {
  const plain = await startBenchService('fleet-plain', (scratch) => {
    process.env.STAND_IN_LOG = jobWritableFile(scratch, 'stand-in.log');
    return { PULUMI_BIN: STAND_IN, RUNNER_ISOLATION: 'none', JOB_ENV_ALLOW: 'STAND_IN_LOG,STAND_IN_MS,STAND_IN_STATE' };
  });
  try {
    benchStep('created -> spawned, isolation off');
    const { latencies } = await spawnLatencies(plain, sized(40, 4));
    row('isolated (uid) vs not: created -> spawned p50', percentile(isolated, 50), percentile(latencies, 50), 'ms', '<= +5 ms');
    row('isolated (uid) vs not: created -> spawned p99', percentile(isolated, 99), percentile(latencies, 99), 'ms', '');
  } finally {
    await plain.stop();
  }
}

export async function fleetBench(): Promise<void> {
  process.env.STAND_IN_MS = '0';
  process.env.STAND_IN_STATE = '1'; // an export gives a state: the runner reads it as a real one
  const service = await startBenchService('fleet', (scratch) => {
    process.env.STAND_IN_LOG = jobWritableFile(scratch, 'stand-in.log');
    return {
      PULUMI_BIN: STAND_IN,
      RUNNER_CONCURRENCY: CONCURRENCY,
      RUNNER_ISOLATION: standInIsolation(),
      JOB_ENV_ALLOW: 'STAND_IN_LOG,STAND_IN_MS,STAND_IN_STATE',
    };
  });
  let isolated: number[] | undefined;
  try {
    console.log(`\n== fleet scheduling (stand-in CLI; ours vs raw, same run) ==`);
    // 1. Created → spawned, one job at a time.
    benchStep('created -> spawned, one job at a time');
    const { latencies, toStart, toSpawn } = await spawnLatencies(service, sized(40, 4));
    isolated = latencies;
    const connection = createRedis(service.redisUrl, 'worker', service.logger);
    const rawQueue = new Queue('raw-latency', { connection });
    const seen = new Map<string, number>();
    const workerConnection = createRedis(service.redisUrl, 'worker', service.logger);
    const rawWorker = new Worker('raw-latency', async (job) => void seen.set(job.id!, performance.now()), {
      connection: workerConnection,
    });
    const raw: number[] = [];
    benchStep('raw BullMQ add -> processor');
    for (let i = 0; i < sized(40, 4); i++) {
      const start = performance.now();
      const job = await rawQueue.add('x', {});
      while (!seen.has(job.id!)) await sleep(0);
      raw.push(seen.get(job.id!)! - start);
    }
    await rawWorker.close();
    await rawQueue.close();
    connection.disconnect();
    workerConnection.disconnect(); // a Worker does not close a connection it was given (the process would not exit)
    row(
      'job created -> pulumi spawned p50',
      percentile(latencies, 50),
      percentile(raw, 50),
      'ms',
      '<= 10 ms and <= 5x raw BullMQ add -> process',
    );
    row('job created -> pulumi spawned p99', percentile(latencies, 99), percentile(raw, 99), 'ms', '<= 30 ms');
    console.log(
      `  of which created -> started p50 ${percentile(toStart, 50)} ms (API, queue, lock), started -> spawned p50 ${percentile(toSpawn, 50)} ms (claim, reads, process start)`,
    );
    benchStep('created -> spawned, through the API and straight onto the runner queue, taking turns');
    const paired = await pairedLatencies(service, sized(40, 4));
    row(
      'dispatcher: created -> spawned p50, through it vs straight onto the runner queue',
      percentile(paired.through, 50),
      percentile(paired.straight, 50),
      'ms',
      '<= +2 ms',
    );
    row(
      'dispatcher: created -> spawned p99, through it vs straight',
      percentile(paired.through, 99),
      percentile(paired.straight, 99),
      'ms',
      '',
    );

    // 2. Throughput over many stacks at concurrency 8: the runner's, so every job is queued first
    // (through the API, while the worker is paused), then the worker is let go and timed.
    benchStep('throughput at concurrency 8');
    const stacks = await Promise.all(Array.from({ length: sized(40, 4) }, (_, i) => service.createResource(`fleet-${i}`)));
    await service.runner.worker.pause(true);
    const ids: string[] = [];
    let start = performance.now();
    for (let round = 0; round < sized(5, 2); round++) for (const stack of stacks) ids.push((await service.queueJob(stack.id)).id);
    const queueing = ids.length / ((performance.now() - start) / 1000);
    start = performance.now();
    service.runner.worker.resume();
    await service.waitEnded(ids);
    const ours = ids.length / ((performance.now() - start) / 1000);
    console.log(`  (queueing them through the API, one request at a time: ${fmt(queueing, 0)} jobs/s)`);
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
    benchStep('raw execa spawns at concurrency 8');
    const rawRate = ids.length / ((performance.now() - start) / 1000);
    row(
      `jobs/s through the dispatcher, ${ids.length} refreshes on ${stacks.length} stacks, conc. ${CONCURRENCY}`,
      ours,
      rawRate,
      'jobs/s',
      '>= 40 % of raw execa spawns',
    );
  } finally {
    await service.stop();
  }
  if (isolated) await isolationCost(isolated);
}
