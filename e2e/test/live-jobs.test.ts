import { randomUUID } from 'node:crypto';
import { testMongo, testRedis } from '@pds/devkit/tap';
import { reconcileLostJobs } from '@pds/runner';
import {
  connectMongo,
  createLogger,
  createModels,
  DEFAULT_TENANT,
  JobListIndex,
  liveJobs,
  prepareStore,
  RunningJobs,
  type StackJobDoc,
  StackQueue,
} from '@pds/shared';
import { Redis } from 'ioredis';
import { endJob } from '@pds/shared/lifecycle';
import t from 'tap';

/**
 * The live entries (shared/src/live-jobs.ts) on the real store: the active-job checks read them
 * instead of every job ever run, so they must never miss a live job, and what they say is
 * confirmed against the jobs themselves.
 */
t.test('live jobs on a real MongoDB wire store', async (t) => {
  const connection = await connectMongo(await testMongo(t));
  t.teardown(() => connection.close());
  const models = createModels(connection);
  await prepareStore(models);
  const live = liveJobs(models);
  const newJob = (fields: Partial<StackJobDoc> = {}) => ({
    _id: randomUUID(),
    tenantId: 'acme',
    resourceId: 'web',
    resourceVersion: 1,
    kind: 'LocalFileSet',
    stackFqdn: 'organization/local-file-set/web',
    operation: 'up' as const,
    status: 'queued' as const,
    ...fields,
  });
  const store = async (fields: Partial<StackJobDoc> = {}) => {
    const job = newJob(fields);
    await live.record(job);
    await models.StackJob.create(job);
    return job;
  };
  const ids = (jobs: { _id: string }[]) => jobs.map((j) => j._id).sort();

  t.test('a check finds the live jobs matching it, with the status asked for, confirmed by the job', async (t) => {
    const queued = await store({ resourceId: 'a' });
    const running = await store({ resourceId: 'a', status: 'running' });
    await store({ resourceId: 'b' });
    t.same(ids(await live.find({ resourceId: 'a' })), ids([queued, running]));
    t.same(ids(await live.find({ resourceId: 'a' }, ['running'])), [running._id]);
    await live.setCredential(running._id, 'cred-1');
    t.same(ids(await live.find({ credentialId: 'cred-1' }, ['running'])), [running._id], 'a run credential is on its entry');
  });

  t.test('an entry whose job ended is not an answer and is dropped by the check that finds it', async (t) => {
    const job = await store({ resourceId: 'c' });
    // Ended behind the entries' back (as if the drop after the end had failed): the job says it ended.
    await models.StackJob.updateOne({ _id: job._id }, { $set: { status: 'succeeded', finishedAt: new Date() } });
    t.same(await live.find({ resourceId: 'c' }), []);
    t.equal(await models.LiveJob.countDocuments({ _id: job._id }), 0);
  });

  t.test('an entry whose job is not written yet is kept while it may be one being queued, then dropped', async (t) => {
    const young = newJob({ resourceId: 'd' });
    await live.record(young);
    t.same(await live.find({ resourceId: 'd' }), [], 'not a live job (no job yet)');
    t.equal(await models.LiveJob.countDocuments({ _id: young._id }), 1, 'but kept: its job may be written next');
    // A minute later (the raw collection: mongoose keeps createdAt as written).
    await models.LiveJob.collection.updateOne({ _id: young._id as never }, { $set: { createdAt: new Date(Date.now() - 120_000) } });
    t.same(await live.find({ resourceId: 'd' }), []);
    t.equal(await models.LiveJob.countDocuments({ _id: young._id }), 0, 'a leftover of a queueing that failed half-way goes');
  });

  t.test("a job's end drops its entry", async (t) => {
    const job = await store({ resourceId: 'e' });
    const ending = {
      models,
      publisher: { publish: async () => 0 },
      lifecycle: { add: async () => undefined as never },
      logger: createLogger({ name: 'live-jobs-test', level: 'silent' }),
    };
    const ended = await endJob(ending, job._id, { status: 'cancelled', reason: 'cancelled' }, 'cancel');
    t.equal(ended?.status, 'cancelled');
    t.equal(await models.LiveJob.countDocuments({ _id: job._id }), 0);
  });

  t.test('the full scan mends the entries: records a live job without one, drops one whose job ended', async (t) => {
    // Queued by a process of an earlier version during an upgrade: no entry.
    const unrecorded = newJob({ resourceId: 'g' });
    await models.StackJob.create(unrecorded);
    const ended = await store({ resourceId: 'g' });
    await models.StackJob.updateOne({ _id: ended._id }, { $set: { status: 'failed', finishedAt: new Date() } });
    const stillLive = await store({ resourceId: 'g', status: 'running' });
    const scanned = await models.StackJob.find({ status: { $in: ['queued', 'running'] } }).lean<StackJobDoc[]>();
    const { recorded, dropped } = await live.mend(scanned);
    t.ok(recorded >= 1 && dropped >= 1, `recorded ${recorded}, dropped ${dropped}`);
    t.same(ids(await models.LiveJob.find({ resourceId: 'g' }).lean<{ _id: string }[]>()), ids([unrecorded, stillLive]));
    t.equal((await live.find({ resourceId: 'g' }, undefined, 1)).length, 1, 'a check that needs one stops at the first');
  });

  t.test('the full scan lists what queueing left out of the job list index (an earlier version during an upgrade)', async (t) => {
    const redis = new Redis(await testRedis(t));
    t.teardown(() => redis.disconnect());
    const index = new JobListIndex(redis);
    await index.build(models);
    t.ok(await index.builtSince(), 'built, and marked with when');
    // Queued after the build by a process of an earlier version: in the store, not listed; one of them has ended already.
    const unlisted = newJob({ resourceId: 'h' });
    const endedUnlisted = newJob({ resourceId: 'h', status: 'succeeded' });
    await models.StackJob.insertMany([unlisted, endedUnlisted]);
    const listed = async () => (await index.page({ resource: 'h' }, 10)).map((p) => p.id).sort();
    t.same(await listed(), []);
    const scan = () =>
      reconcileLostJobs(
        {
          models,
          publisher: redis,
          lifecycle: { add: async () => undefined as never },
          logger: createLogger({ name: 'live-jobs-test', level: 'silent' }),
          stacks: new StackQueue(redis),
          running: new RunningJobs(redis),
          staleAfterMs: 60_000,
          promote: async () => undefined,
          jobList: index,
        },
        new Date(),
        { fullScan: true },
      );
    await scan();
    t.same(await listed(), [unlisted._id, endedUnlisted._id].sort(), "a process's first scan lists every job since the build");
  });

  t.test('a store from before live entries gets them once, at the first start of this version', async (t) => {
    // Jobs written by an earlier version: no entries.
    const waiting = newJob({ resourceId: 'f' });
    const running = newJob({ resourceId: 'f', status: 'running' });
    const done = newJob({ resourceId: 'f', status: 'succeeded' });
    await models.StackJob.insertMany([waiting, running, done]);
    t.same(await live.find({ resourceId: 'f' }), [], 'missed before the backfill');
    await models.Tenant.updateOne({ _id: DEFAULT_TENANT }, { $unset: { liveJobsAt: 1 } });
    const first = await prepareStore(models);
    t.ok((first.liveJobs ?? 0) >= 2, `recorded ${first.liveJobs}`);
    t.same(ids(await live.find({ resourceId: 'f' })), ids([waiting, running]));
    t.equal((await prepareStore(models)).liveJobs, undefined, 'and not again');
  });
});
