import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { reconcileLostJobs } from '@pds/runner';
import { createLogger, createRedis, jobChannel, JobListIndex, redisReady, RunningJobs, type StackJobDoc, StackQueue } from '@pds/shared';
import { endableFrom, endJob, type EndPath, type FinalStatus } from '@pds/shared/lifecycle';
import t from 'tap';
import { createResource, fileSetManifest, insertJob, startStack, until, waitForJob } from './harness.js';

/**
 * Every path that ends a job goes through endJob, and every end is followed by the same after-end
 * reactions, worked by the stack's runner from the lifecycle queue. Here each path ends a
 * compensating job (the case a crash once left `compensating` for ever): whichever path ended it,
 * the failed up it answers ends `compensation_failed`, the end is published and webhooks hear both.
 */
t.test('whichever path ends a compensating job, the failed up it answers is compensation_failed and every reaction runs', async (t) => {
  // A heartbeat of an hour: nothing but the calls here ends these jobs.
  const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 3_600 });
  const logger = createLogger({ name: 'test', level: 'silent' });
  const publisher = createRedis(stack.config.REDIS_URL, 'worker', logger);
  const listener = createRedis(stack.config.REDIS_URL, 'subscriber', logger);
  t.teardown(() => Promise.allSettled([publisher.quit(), listener.quit()]));
  await Promise.all([redisReady(publisher), redisReady(listener)]);
  const published = new Map<string, { status: string; reason?: string }>();
  listener.on('pmessage', (_pattern: string, _channel: string, text: string) => {
    const message = JSON.parse(text) as { type: string; jobId: string; status: string; reason?: string };
    if (message.type === 'end') published.set(message.jobId, message);
  });
  await listener.psubscribe(jobChannel('*'));
  const deps = { models: stack.models, publisher, lifecycle: stack.lifecycleQueue, logger };
  const resource = await createResource(stack, fileSetManifest('ends', join(stack.scratch, 'ends'), []));

  const outcomes: Record<EndPath, { status: FinalStatus; reason: 'cancelled' | 'internal_error' | 'runner_lost' | 'stale' }> = {
    run: { status: 'cancelled', reason: 'cancelled' },
    crash: { status: 'failed', reason: 'internal_error' },
    start: { status: 'failed', reason: 'internal_error' },
    reconciler: { status: 'failed', reason: 'runner_lost' },
    cancel: { status: 'cancelled', reason: 'cancelled' },
    gate: { status: 'stale', reason: 'stale' },
  };
  for (const [via, outcome] of Object.entries(outcomes) as [EndPath, (typeof outcomes)[EndPath]][]) {
    const from = endableFrom(via, outcome.status).at(-1)!;
    const undoId = randomUUID();
    const failedUp = await insertJob(stack, resource, {
      status: 'failed',
      operation: 'up',
      finishedAt: new Date(),
      compensation: { mode: 'destroy', strategy: 'destroy', state: 'compensating', jobId: undoId },
    });
    const undo = await insertJob(stack, resource, { _id: undoId, status: from, operation: 'destroy', compensates: failedUp._id });
    const run =
      via === 'run'
        ? {
            result: { exitCode: null, lastSeq: 0, summary: {} },
            finishedAt: new Date(),
            store: <T>(write: () => Promise<T>) => write(),
            afterWrite: async () => undefined,
            publish: (end: { jobId: string; status: string }) => void published.set(end.jobId, end),
          }
        : undefined;
    const ended = await endJob(deps, undo._id, { ...outcome, error: `ended by the ${via} path` }, via, run);
    t.match(ended, { status: outcome.status, reason: outcome.reason, finishedAt: Date }, `${via}: ended from ${from}`);
    t.equal(await endJob(deps, undo._id, { ...outcome, error: 'again' }, via), undefined, `${via}: an ended job is not ended twice`);

    const answered = await waitForJob(stack.models, failedUp._id, (d) => (d.compensation as { state?: string }).state !== 'compensating');
    t.match(
      answered.compensation,
      { state: 'compensation_failed', error: new RegExp(`compensating job ${undo._id} .*the stack was not put back`), endedAt: String },
      `${via}: the failed up is compensation_failed`,
    );
    t.match(published.get(undo._id), { status: outcome.status }, `${via}: its end is published`);
    // Its webhook events are the last reaction: queued once the others are done.
    const queued = (id: string) => until(async () => Boolean(await stack.webhookQueue.getJob(id)), `webhook event ${id} queued`);
    await queued(`ended.${undo._id}`);
    t.pass(`${via}: its webhooks hear its end`);
    await queued(`compensation_failed.${failedUp._id}`);
    t.pass(`${via}: and the failed up's compensation_failed`);
  }
});

t.test(
  'an up with compensation cut short (crash, runner lost) is not compensated blindly: it says why; one that never ran is not compensated',
  async (t) => {
    const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 3_600 });
    const logger = createLogger({ name: 'test', level: 'silent' });
    const publisher = createRedis(stack.config.REDIS_URL, 'worker', logger);
    t.teardown(() => publisher.quit());
    const deps = { models: stack.models, publisher, lifecycle: stack.lifecycleQueue, logger };
    for (const via of ['crash', 'reconciler'] as const) {
      const resource = await createResource(stack, fileSetManifest(`cut-${via}`, join(stack.scratch, `cut-${via}`), []));
      const up = await insertJob(stack, resource, { operation: 'up', status: 'running', options: { compensation: 'destroy' } });
      const reason = via === 'crash' ? 'internal_error' : 'runner_lost';
      await endJob(deps, up._id, { status: 'failed', reason, error: 'cut short' }, via);
      const done = await waitForJob(stack.models, up._id, (d) => Boolean(d.compensation));
      t.match(done.compensation, {
        mode: 'destroy',
        state: 'compensation_failed',
        error: new RegExp(`the up was cut short \\(${reason}\\)`),
      });
      t.equal(await stack.models.StackJob.countDocuments({ compensates: up._id }), 0, `${via}: nothing is queued to undo it`);
      t.match(await stack.models.Resource.findById(resource.id).lean(), { stack: { status: 'failed' } }, `${via}: its stack shows failed`);
    }
    // An up that never ran (its preview failed, it was cancelled, it could not start) changed nothing.
    for (const via of ['cancel', 'gate', 'start'] as const) {
      const resource = await createResource(stack, fileSetManifest(`unrun-${via}`, join(stack.scratch, `unrun-${via}`), []));
      const up = await insertJob(stack, resource, { operation: 'up', status: 'queued', options: { compensation: 'destroy' } });
      const reason = via === 'start' ? 'internal_error' : 'preview_failed';
      await endJob(deps, up._id, { status: 'failed', reason, error: 'never ran' }, via);
      const work = `after-end.${up._id}`;
      await until(async () => Boolean(await (await stack.lifecycleQueue.getJob(work))?.isCompleted()), `${work} done`);
      const after = await stack.models.StackJob.findById(up._id).lean<StackJobDoc>();
      t.notOk(after?.compensation, `${via}: no compensation for an up that never ran`);
      t.equal(await stack.models.StackJob.countDocuments({ compensates: up._id }), 0, `${via}: nothing queued to undo it`);
    }
  },
);

t.test('an end whose after-end work Redis refused is marked, and a reconciler full scan queues it later', async (t) => {
  const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 3_600 });
  const logger = createLogger({ name: 'test', level: 'silent' });
  const redis = createRedis(stack.config.REDIS_URL, 'worker', logger);
  t.teardown(() => redis.quit());
  const resource = await createResource(stack, fileSetManifest('refused', join(stack.scratch, 'refused'), []));
  const undo = await insertJob(stack, resource, { status: 'queued', operation: 'destroy' });
  const failedUp = await insertJob(stack, resource, {
    status: 'failed',
    operation: 'up',
    compensation: { mode: 'destroy', strategy: 'destroy', state: 'compensating', jobId: undo._id },
  });
  await stack.models.StackJob.updateOne({ _id: undo._id }, { $set: { compensates: failedUp._id } });
  // The lifecycle queue as Redis refusing every command would leave it (a stand-in: a real refusal
  // cannot be had on demand without taking the whole stack's Redis away).
  const refusing = { add: async () => Promise.reject(new Error('READONLY You cannot write against a read only replica.')) };
  const ended = await endJob(
    { models: stack.models, publisher: redis, lifecycle: refusing, logger },
    undo._id,
    { status: 'cancelled', reason: 'cancelled' },
    'cancel',
  );
  t.equal(ended?.status, 'cancelled', 'the job ends all the same');
  t.equal(
    (await stack.models.StackJob.findById(undo._id).lean<StackJobDoc>())?.afterEndPending,
    'cancel',
    'its after-end work is marked pending',
  );
  t.equal((await stack.models.StackJob.findById(failedUp._id).lean<StackJobDoc>())?.compensation?.state, 'compensating');

  const reconcile = (fullScan: boolean) =>
    reconcileLostJobs(
      {
        models: stack.models,
        publisher: redis,
        lifecycle: stack.lifecycleQueue,
        logger,
        stacks: new StackQueue(redis),
        running: new RunningJobs(redis),
        jobList: new JobListIndex(redis),
        staleAfterMs: 5_000,
        promote: async () => undefined,
      },
      new Date(),
      { fullScan },
    );
  await reconcile(false);
  t.equal(
    (await stack.models.StackJob.findById(undo._id).lean<StackJobDoc>())?.afterEndPending,
    'cancel',
    'a beat without the scan leaves it',
  );
  await reconcile(true);
  const answered = await waitForJob(stack.models, failedUp._id, (d) => d.compensation?.state !== 'compensating');
  t.match(answered.compensation, { state: 'compensation_failed', error: new RegExp(`compensating job ${undo._id} was cancelled`) });
  t.notOk((await stack.models.StackJob.findById(undo._id).lean<StackJobDoc>())?.afterEndPending, 'the mark is dropped once queued');
});
