/**
 * Store scale: the same figures on an empty store and on one pre-filled with old history (ended
 * jobs and their lines, written in bulk, not through the API), same run. The cost of a job's start,
 * a job read, a replay and a token check must not grow with history: each within 1.2x of the empty
 * store. `BENCH_STORE_JOBS` / `BENCH_STORE_LINES` scale the history (100,000 / 10,000,000).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { jobWritableFile, standInIsolation } from '@pds/devkit';
import {
  ACTIVE_STATUSES,
  JobListIndex,
  LINES_PER_CHUNK,
  lineStore,
  liveJobs,
  type Models,
  storeApiToken,
  tokenAuthenticator,
} from '@pds/shared';
import { startBenchService } from './bench-service.js';
import { spawnLatencies, STAND_IN } from './fleet-bench.js';
import { benchStep, fmt, percentile, row, sized, sleep } from './stats.js';

type BenchService = Awaited<ReturnType<typeof startBenchService>>;

const LINE_TEXT = 'Updating (organization/local-file-set/bench): resource step done, nothing to report';

/** Writes `jobs` ended jobs and `lines` lines (spread evenly over them, in chunks as the runner stores them). */
async function prefill(models: Models, jobs: number, lines: number): Promise<string[]> {
  const perJob = Math.floor(lines / jobs);
  const finishedAt = new Date(Date.now() - 86_400_000);
  const ids: string[] = [];
  const BATCH = 500;
  for (let start = 0; start < jobs; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, jobs - start) }, () => randomUUID());
    ids.push(...batch);
    await models.StackJob.insertMany(
      batch.map((id, i) => ({
        _id: id,
        resourceId: `old-${(start + i) % 1000}`,
        resourceVersion: 1,
        kind: 'LocalFileSet',
        stackFqdn: `organization/local-file-set/old-${(start + i) % 1000}`,
        operation: 'up',
        status: 'succeeded',
        // Written as stored by queueing (lean inserts set no timestamps): the job list sorts by createdAt.
        createdAt: finishedAt,
        updatedAt: finishedAt,
        startedAt: finishedAt,
        spawnedAt: finishedAt,
        finishedAt,
        exitCode: 0,
        lastSeq: perJob,
        outputs: '{"directory":"/tmp/old","files":[]}',
        summary: { same: 3 },
        stdoutTail: `${LINE_TEXT}\n`.repeat(6),
        stderrTail: '',
      })),
      { lean: true },
    );
    const chunks = batch.flatMap((id) => chunksOf(id, perJob, finishedAt));
    for (let c = 0; c < chunks.length; c += 200) await models.JobLineChunk.insertMany(chunks.slice(c, c + 200), { lean: true });
  }
  return ids;
}

function chunksOf(jobId: string, lines: number, at: Date) {
  const ts = at.toISOString();
  const chunks = [];
  for (let k = 0; k * LINES_PER_CHUNK < lines; k++) {
    const firstSeq = k * LINES_PER_CHUNK + 1;
    const lastSeq = Math.min(lines, firstSeq + LINES_PER_CHUNK - 1);
    const stored = [];
    for (let seq = firstSeq; seq <= lastSeq; seq++) stored.push({ seq, stream: 'stdout', text: LINE_TEXT, ts });
    chunks.push({ _id: `${jobId}:${k}`, jobId, firstSeq, lastSeq, lines: JSON.stringify(stored) });
  }
  return chunks;
}

interface StoreFigures {
  spawnP50: number;
  spawnP99: number;
  jobReadsPerSecond: number;
  replayMs: number;
  tokenCheckP50: number;
  deleteRefusedP50: number;
  busyCheckP50: number;
  busyScanP50: number;
  jobListP50: number;
  /** A list the index cannot answer (a status filter): read from the store. */
  jobListScanP50: number;
  indexBuildMs: number;
}

/** p50 of `n` sequential runs of `once`, in ms. */
async function timed(n: number, once: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await once();
    times.push(performance.now() - start);
  }
  return percentile(times, 50);
}

/**
 * The active-job checks (a resource's delete, a drift tick's busy check) against a stack with a
 * queued job, beside the store scan the drift tick made before live entries; and a page of the job list.
 */
async function activeChecks(service: BenchService) {
  const resource = await service.createResource('busy');
  const stackFqdn = 'organization/local-file-set/busy';
  // A queued job as queueing leaves it (its live entry, then the job), not on the runner queue: it stays queued.
  const job = {
    _id: randomUUID(),
    tenantId: 'default',
    resourceId: resource.id,
    resourceVersion: 1,
    kind: 'LocalFileSet',
    stackFqdn,
    operation: 'up' as const,
  };
  const live = liveJobs(service.models);
  await live.record(job);
  await service.models.StackJob.create(job);
  const n = sized(20, 3);
  benchStep('active-job checks');
  const deleteRefusedP50 = await timed(n, async () => {
    const res = await service.app.inject({ method: 'DELETE', url: `/v1/resources/${resource.id}`, headers: service.auth });
    if (res.statusCode !== 409) throw new Error(`the delete of a busy resource answered ${res.statusCode}, not 409`);
  });
  const busyCheckP50 = await timed(n, async () => {
    if ((await live.find({ tenantId: 'default', stackFqdn })).length !== 1) throw new Error('the busy check missed the queued job');
  });
  const busyScanP50 = await timed(sized(5, 2), () =>
    service.models.StackJob.exists({ tenantId: 'default', stackFqdn, status: { $in: ACTIVE_STATUSES } }),
  );
  // History written in bulk is not in the job list's index: the first list builds it, as on a store
  // upgraded to the index (its time is reported), and lists read the store until then.
  benchStep('the job list index, built by the first list');
  const buildStart = performance.now();
  await service.app.inject({ method: 'GET', url: '/v1/jobs?limit=20', headers: service.auth });
  const index = new JobListIndex(service.publisher);
  while (!(await index.complete())) await sleep(20);
  const indexBuildMs = performance.now() - buildStart;
  benchStep('GET /v1/jobs?limit=20');
  const jobListP50 = await timed(sized(30, 2), async () => {
    const res = await service.app.inject({ method: 'GET', url: '/v1/jobs?limit=20', headers: service.auth });
    if (res.statusCode !== 200) throw new Error(`GET /v1/jobs answered ${res.statusCode}: ${res.body}`);
  });
  const jobListScanP50 = await timed(sized(3, 1), async () => {
    const res = await service.app.inject({ method: 'GET', url: '/v1/jobs?limit=20&status=succeeded', headers: service.auth });
    if (res.statusCode !== 200) throw new Error(`GET /v1/jobs?status=succeeded answered ${res.statusCode}`);
  });
  return { deleteRefusedP50, busyCheckP50, busyScanP50, jobListP50, jobListScanP50, indexBuildMs };
}

/** The figures on one service (with or without history beside what is measured). */
async function measure(service: BenchService): Promise<StoreFigures> {
  // Warm-up, not measured: the first store (the empty one) would otherwise carry the JIT's cost.
  benchStep('created -> spawned');
  await spawnLatencies(service, sized(10, 2), 'warm-up');
  const { latencies } = await spawnLatencies(service, sized(40, 4));
  // GET /v1/jobs/:id, one request at a time, each of 1,000 recent ended jobs once (no cache helps).
  benchStep('GET /v1/jobs/:id of recent ended jobs');
  const recent = await prefill(service.models, sized(1_200, 250), sized(60_000, 1_000));
  for (const id of recent.splice(0, 200)) await service.app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: service.auth });
  let start = performance.now();
  for (const id of recent) await service.app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: service.auth });
  const jobReadsPerSecond = recent.length / ((performance.now() - start) / 1000);
  // Replay of a 10,000-line job from the store, as the gateway reads it (pages of 4,096).
  const replayJob = randomUUID();
  await service.models.JobLineChunk.insertMany(chunksOf(replayJob, 10_000, new Date()), { lean: true });
  benchStep('replay of a 10,000-line job');
  const replays: number[] = [];
  for (let r = 0; r < sized(5, 2); r++) {
    start = performance.now();
    let after = 0;
    for (;;) {
      const page = await lineStore(service.models).read(replayJob, after, 4_096);
      if (page.length === 0) break;
      after = page.at(-1)!.seq;
    }
    replays.push(performance.now() - start);
  }
  // A token check that misses the cache: one lookup by the token's hash.
  const { token } = await storeApiToken(service.models, { name: 'bench', role: 'viewer', createdBy: 'bench' });
  const authenticator = tokenAuthenticator(service.models, undefined, 0);
  const checks: number[] = [];
  benchStep('token checks');
  for (let i = 0; i < sized(300, 10); i++) {
    start = performance.now();
    await authenticator.authenticate(token);
    checks.push(performance.now() - start);
  }
  const active = await activeChecks(service);
  return {
    ...active,
    spawnP50: percentile(latencies, 50),
    spawnP99: percentile(latencies, 99),
    jobReadsPerSecond,
    replayMs: percentile(replays, 50),
    tokenCheckP50: percentile(checks, 50),
  };
}

async function withService<T>(name: string, use: (service: BenchService) => Promise<T>): Promise<T> {
  process.env.STAND_IN_MS = '0';
  const service = await startBenchService(name, (scratch) => {
    process.env.STAND_IN_LOG = jobWritableFile(scratch, 'stand-in.log');
    return { PULUMI_BIN: STAND_IN, RUNNER_ISOLATION: standInIsolation(), JOB_ENV_ALLOW: 'STAND_IN_LOG,STAND_IN_MS' };
  });
  try {
    return await use(service);
  } finally {
    await service.stop();
  }
}

export async function storeBench(): Promise<void> {
  const jobs = Number(process.env.BENCH_STORE_JOBS ?? sized(100_000, 500));
  const lines = Number(process.env.BENCH_STORE_LINES ?? sized(10_000_000, 5_000));
  console.log(`\n== store scale: ${jobs} ended jobs and ${lines} lines of history vs an empty store (same run) ==`);
  const empty = await withService('store-empty', measure);
  const full = await withService('store-full', async (service) => {
    benchStep('writing the history');
    const start = performance.now();
    await prefill(service.models, jobs, lines);
    console.log(`  (history written in bulk in ${fmt((performance.now() - start) / 1000, 0)} s)`);
    return measure(service);
  });
  const goal = '<= 1.2x the empty store';
  row('history vs empty: created -> spawned p50', full.spawnP50, empty.spawnP50, 'ms', goal);
  row('history vs empty: created -> spawned p99', full.spawnP99, empty.spawnP99, 'ms', goal);
  row('history vs empty: GET /v1/jobs/:id', full.jobReadsPerSecond, empty.jobReadsPerSecond, 'req/s', '>= 0.83x the empty store');
  row('history vs empty: replay of a 10,000-line job', full.replayMs, empty.replayMs, 'ms', goal);
  row('history vs empty: token check (uncached) p50', full.tokenCheckP50, empty.tokenCheckP50, 'ms', goal);
  row('history vs empty: DELETE of a busy resource (refused) p50', full.deleteRefusedP50, empty.deleteRefusedP50, 'ms', goal);
  row('history vs empty: drift tick busy check p50', full.busyCheckP50, empty.busyCheckP50, 'ms', goal);
  row('busy check vs the job scan it replaced, with history', full.busyCheckP50, full.busyScanP50, 'ms', 'report');
  row('history vs empty: GET /v1/jobs?limit=20 p50 (the index)', full.jobListP50, empty.jobListP50, 'ms', goal);
  row(
    'history vs empty: GET /v1/jobs?status=succeeded&limit=20 p50 (the store)',
    full.jobListScanP50,
    empty.jobListScanP50,
    'ms',
    'report',
  );
  row('history vs empty: job list index built by the first list', full.indexBuildMs, empty.indexBuildMs, 'ms', 'report');
}
