import { testMongo, testRedis } from '@pds/devkit/tap';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import t, { type Test } from 'tap';
import { createModels, HistorySweeper, type HistorySweepDeps, JobListIndex, LINES_PER_CHUNK, Metrics, type StackJobDoc } from '@pds/shared';

const NOW = new Date('2026-12-02T00:00:00Z');
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000);
const quiet = { info: () => undefined, warn: () => undefined };

async function store(t: Test) {
  const connection = await mongoose.createConnection(await testMongo(t)).asPromise();
  const redis = new Redis(await testRedis(t), { lazyConnect: false });
  t.teardown(async () => {
    redis.disconnect();
    await connection.close();
  });
  await redis.flushdb();
  return { models: createModels(connection), redis };
}

type Store = Awaited<ReturnType<typeof store>>;

/** An ended (or running) job with `lines` lines stored in chunks, as the runner stores them. */
async function seedJob(models: Store['models'], id: string, job: { status: string; finishedAt?: Date; lines: number; lastSeq?: number }) {
  await models.StackJob.create({
    _id: id,
    resourceId: 'r1',
    resourceVersion: 1,
    kind: 'LocalFileSet',
    stackFqdn: 'organization/local-file-set/r1',
    operation: 'up',
    status: job.status as 'running',
    finishedAt: job.finishedAt,
    lastSeq: job.lastSeq ?? job.lines,
    outputs: '{"kept":true}',
  });
  for (let k = 0; k * LINES_PER_CHUNK < job.lines; k++) {
    const firstSeq = k * LINES_PER_CHUNK + 1;
    await models.JobLineChunk.create({
      _id: `${id}:${k}`,
      jobId: id,
      firstSeq,
      lastSeq: Math.min(job.lines, firstSeq + LINES_PER_CHUNK - 1),
      lines: '[]',
    });
  }
}

const chunksOf = (models: Store['models'], id: string) =>
  Promise.all([0, 1, 2, 3].map((k) => models.JobLineChunk.exists({ _id: `${id}:${k}` }))).then((found) => found.filter(Boolean).length);

function sweeper(s: Store, overrides: Partial<HistorySweepDeps> = {}) {
  return new HistorySweeper({
    models: s.models,
    redis: s.redis,
    jobList: new JobListIndex(s.redis),
    logger: quiet,
    ages: { linesDays: 30, jobsDays: 90, auditDays: 365 },
    deletesPerSecond: 10_000,
    now: () => NOW,
    ...overrides,
  });
}

t.test('old history is swept by age: jobs with their lines, lines alone, audit entries; nothing else', async (t) => {
  const s = await store(t);
  const { models } = s;
  await seedJob(models, 'old', { status: 'succeeded', finishedAt: daysAgo(100), lines: 2 * LINES_PER_CHUNK + 88 });
  await seedJob(models, 'middle', { status: 'failed', finishedAt: daysAgo(40), lines: 10 });
  await seedJob(models, 'recent', { status: 'succeeded', finishedAt: daysAgo(5), lines: 10 });
  await seedJob(models, 'running', { status: 'running', lines: 10 });
  // Ended from outside its run (runner lost): lastSeq 0, yet lines were stored.
  await seedJob(models, 'lost', { status: 'failed', finishedAt: daysAgo(35), lines: 2 * LINES_PER_CHUNK + 1, lastSeq: 0 });
  await models.AuditEntry.create([
    { at: daysAgo(400), actor: { id: 'a', name: 'a', role: 'admin' }, action: 'resource.create', outcome: 'success', statusCode: 201 },
    { at: daysAgo(10), actor: { id: 'a', name: 'a', role: 'admin' }, action: 'resource.update', outcome: 'success', statusCode: 200 },
  ]);
  const metrics = new Metrics();
  // Listed as queueing lists them (the job list's index).
  const index = new JobListIndex(s.redis);
  for (const job of await models.StackJob.find().lean<StackJobDoc[]>()) await index.add(job);

  const result = await sweeper(s, { metrics }).sweepOnce();
  t.same(result, { jobs: 1, lineChunks: 3 + 1 + 3, auditEntries: 1, more: false });
  t.notOk(await models.StackJob.exists({ _id: 'old' }), 'a job past HISTORY_JOBS_DAYS is gone');
  t.equal(await chunksOf(models, 'old'), 0, 'with all its lines');
  t.same((await index.page('all', 10)).map((p) => p.id).sort(), ['lost', 'middle', 'recent', 'running'], 'and out of the job list index');
  const middle = await models.StackJob.findById('middle').lean();
  t.same(
    [middle?.status, middle?.outputs, middle?.linesSweptAt],
    ['failed', '{"kept":true}', NOW],
    'a job past HISTORY_LINES_DAYS keeps its result, marked',
  );
  t.equal(await chunksOf(models, 'middle'), 0, 'but not its lines');
  t.equal(await chunksOf(models, 'lost'), 0, 'every stored chunk goes, whatever the job says its last seq was');
  t.equal(await chunksOf(models, 'recent'), 1, 'a recent job keeps its lines');
  t.equal(await chunksOf(models, 'running'), 1, 'a job not ended is never swept');
  t.same(
    (await models.AuditEntry.find({}, { action: 1 }).lean()).map((e) => e.action),
    ['resource.update'],
    'audit past HISTORY_AUDIT_DAYS is gone',
  );
  t.match(metrics.render(), /history_swept_total\{what="line_chunks"\} 7/);

  t.same(await sweeper(s).sweepOnce(), { jobs: 0, lineChunks: 0, auditEntries: 0, more: false }, 'a second sweep finds nothing due');
  const forEver = await sweeper(s, { ages: { linesDays: 0, jobsDays: 0, auditDays: 0 }, now: () => daysAgo(-1000) }).sweepOnce();
  t.same(forEver, { jobs: 0, lineChunks: 0, auditEntries: 0, more: false }, 'ages of 0 keep history for ever');
});

t.test('sweepers in many processes: one sweeps at a time; an interrupted sweep is finished by the next', async (t) => {
  const s = await store(t);
  for (let i = 0; i < 12; i++) await seedJob(s.models, `old-${i}`, { status: 'succeeded', finishedAt: daysAgo(100), lines: 3 });
  // Slow enough (20 deletes a second) to stop part-way: 24 deletes are due.
  const slow = sweeper(s, { deletesPerSecond: 20 });
  const stop = new AbortController();
  const first = slow.sweepOnce(stop.signal);
  const beside = await sweeper(s).sweepOnce();
  t.equal(beside.skipped, 'busy', 'a second process finds the sweep taken');
  while ((await s.models.StackJob.countDocuments()) === 12) await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  const interrupted = await first;
  t.ok(interrupted.jobs >= 1 && interrupted.jobs < 12, `the interrupted sweep removed ${interrupted.jobs} of 12 jobs`);
  const rest = await sweeper(s).sweepOnce();
  t.equal(interrupted.jobs + rest.jobs, 12, 'the next sweep removes the rest');
  t.equal(await s.models.JobLineChunk.countDocuments(), 0, 'and every line');
});
