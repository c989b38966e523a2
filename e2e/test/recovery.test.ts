import { join } from 'node:path';
import { reconcileLostJobs } from '@pds/runner';
import { createLogger, jobChannel, JobListIndex, type Operation, RunningJobs, StackQueue } from '@pds/shared';
import { Redis } from 'ioredis';
import t from 'tap';
import { createResource, fileSetManifest, insertJob, readStream, startStack, until, waitForJob } from './harness.js';

/**
 * A job whose runner vanished without a trace: `running`, started long ago, no heartbeat. This is
 * what a killed runner leaves (crash.test.ts kills a real one); here the reconciler's decision is the subject.
 */
async function lostJob(
  stack: Awaited<ReturnType<typeof startStack>>,
  resource: { id: string; stackFqdn: string },
  operation: Operation,
  tracked = true,
) {
  const job = await insertJob(stack, resource, {
    operation,
    status: 'running',
    startedAt: new Date(Date.now() - 60_000),
    runnerId: 'vanished-runner',
  });
  // The vanished runner had entered it in the running set, where reconcilers look (unless Redis lost it).
  if (tracked) await withRedis(stack, (redis) => new RunningJobs(redis).add(job._id, Date.now() - 60_000));
  return job;
}

async function withRedis<T>(stack: Awaited<ReturnType<typeof startStack>>, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(stack.config.REDIS_URL);
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

t.test('a lost preview is retried as a new job that runs; a lost up is not, and the job says why', async (t) => {
  const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 0.5 });
  const create = (name: string) =>
    createResource(stack, fileSetManifest(name, join(stack.scratch, name), [{ path: 'a.txt', content: name }]));

  const previewed = await create('retry-preview');
  const preview = await lostJob(stack, previewed, 'preview');
  const lostPreview = await waitForJob(stack.models, preview._id, (d) => d.status === 'failed' && Boolean(d.recovery));
  t.match(lostPreview, {
    reason: 'runner_lost',
    retriedBy: String,
    recovery: /retried as job .* \(attempt 2 of 3\): a preview changes no resources/,
  });
  const retry = await waitForJob(stack.models, lostPreview.retriedBy!, (d) => ['succeeded', 'failed'].includes(d.status));
  t.match(retry, { operation: 'preview', retryOf: preview._id, attempt: 2, status: 'succeeded', stackFqdn: previewed.stackFqdn });
  const view = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${preview._id}`, headers: stack.auth })).json();
  t.match(view, { retriedBy: retry._id, recovery: /retried as job/ }, 'the API shows the decision');
  const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${retry._id}/stream`);
  t.equal(messages.at(-1)?.status, 'succeeded', 'the retry streams like any job');

  const upped = await create('no-retry-up');
  const up = await lostJob(stack, upped, 'up');
  const lostUp = await waitForJob(stack.models, up._id, (d) => d.status === 'failed' && Boolean(d.recovery));
  t.match(lostUp, {
    reason: 'runner_lost',
    recovery: /not retried: an up may have changed resources before its runner was lost.*Pulumi lock is cleared before its next run/,
  });
  t.notOk(lostUp.retriedBy);
  t.equal(await stack.models.StackJob.countDocuments({ retryOf: up._id }), 0, 'no job repeats the up');

  const third = await lostJob(stack, previewed, 'refresh');
  await stack.models.StackJob.updateOne({ _id: third._id }, { $set: { attempt: 3 } });
  const exhausted = await waitForJob(stack.models, third._id, (d) => d.status === 'failed' && Boolean(d.recovery));
  t.match(exhausted.recovery, /not retried: 3 attempts were cut short/);
});

t.test('a lost job Redis forgot is found by the occasional scan of the store, not by the running set', async (t) => {
  // A heartbeat of an hour: this stack's own runner does its first-beat scan only then, so the calls here decide.
  const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 3_600 });
  const resource = await createResource(stack, fileSetManifest('forgotten', join(stack.scratch, 'forgotten'), []));
  const lost = await lostJob(stack, resource, 'up', false);
  const logger = createLogger({ name: 'test', level: 'silent' });
  const reconcile = (fullScan: boolean) =>
    withRedis(stack, (redis) =>
      reconcileLostJobs(
        {
          models: stack.models,
          stacks: new StackQueue(redis),
          running: new RunningJobs(redis),
          jobList: new JobListIndex(redis),
          publisher: redis,
          logger,
          staleAfterMs: 5_000,
          promote: async () => undefined,
          lifecycle: stack.lifecycleQueue,
        },
        new Date(),
        { fullScan },
      ),
    );
  t.same(await reconcile(false), [], 'the running set does not hold it');
  t.equal((await stack.models.StackJob.findById(lost._id).lean())?.status, 'running');
  t.same(await reconcile(true), [lost._id], 'the scan of the store finds it');
  t.match(await stack.models.StackJob.findById(lost._id).lean(), { status: 'failed', reason: 'runner_lost' });
});

t.test('a compensating job lost with its runner leaves the failed up it answers compensation_failed, not compensating', async (t) => {
  // A heartbeat of an hour: the call here decides, not the stack's own reconciler.
  const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 3_600 });
  const resource = await createResource(stack, fileSetManifest('lost-undo', join(stack.scratch, 'lost-undo'), []));
  const undo = await lostJob(stack, resource, 'destroy');
  const failedUp = await insertJob(stack, resource, {
    operation: 'up',
    status: 'failed',
    finishedAt: new Date(),
    compensation: { mode: 'destroy', strategy: 'destroy', state: 'compensating', jobId: undo._id },
  });
  await stack.models.StackJob.updateOne({ _id: undo._id }, { $set: { compensates: failedUp._id } });
  const ended = await withRedis(stack, (redis) =>
    reconcileLostJobs({
      models: stack.models,
      stacks: new StackQueue(redis),
      running: new RunningJobs(redis),
      jobList: new JobListIndex(redis),
      publisher: redis,
      logger: createLogger({ name: 'test', level: 'silent' }),
      staleAfterMs: 5_000,
      promote: async () => undefined,
      lifecycle: stack.lifecycleQueue,
    }),
  );
  t.same(ended, [undo._id]);
  // The reconciler queued the lost job's after-end reactions; the stack's runner works them.
  const answered = await waitForJob(stack.models, failedUp._id, (d) => (d.compensation as { state?: string })?.state !== 'compensating');
  t.match(answered, {
    compensation: {
      state: 'compensation_failed',
      error: new RegExp(`compensating job ${undo._id} was lost with its runner`),
      endedAt: String,
    },
  });
  const event = `compensation_failed.${failedUp._id}`;
  await until(async () => Boolean(await stack.webhookQueue.getJob(event)), 'its compensation_failed event queued');
  t.pass('its webhooks hear compensation_failed');
  const view = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${failedUp._id}`, headers: stack.auth })).json();
  t.match(view.compensation, { state: 'compensation_failed', jobId: undo._id }, 'and the API shows it');
});

t.test('the API never serves a view of an ended job older than what was written to it after its end', async (t) => {
  // A heartbeat of an hour: the calls here decide, not the stack's own reconciler.
  const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 3_600 });
  const resource = await createResource(stack, fileSetManifest('amended', join(stack.scratch, 'amended'), []));
  const lost = await lostJob(stack, resource, 'preview', false);
  const view = async () => (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${lost._id}`, headers: stack.auth })).json();
  const seenAtEnd: Record<string, unknown>[] = [];
  await withRedis(stack, async (redis) => {
    // A watcher that reads the job as soon as it hears its end, as a client of the stream does:
    // between the end and the recovery the runner writes next.
    const publisher = new Proxy(redis, {
      get(target, key, receiver) {
        if (key !== 'publish') return Reflect.get(target, key, receiver);
        return async (channel: string, message: string) => {
          const sent = await target.publish(channel, message);
          if (channel === jobChannel(lost._id)) seenAtEnd.push(await view());
          return sent;
        };
      },
    });
    const reconciled = await reconcileLostJobs(
      {
        models: stack.models,
        stacks: new StackQueue(redis),
        running: new RunningJobs(redis),
        jobList: new JobListIndex(redis),
        publisher,
        logger: createLogger({ name: 'test', level: 'silent' }),
        staleAfterMs: 5_000,
        promote: async () => undefined,
        lifecycle: stack.lifecycleQueue,
      },
      new Date(),
      { fullScan: true },
    );
    t.same(reconciled, [lost._id]);
  });
  t.match(seenAtEnd, [{ status: 'failed', reason: 'runner_lost' }], 'the watcher read the ended job before its recovery was written');
  t.notOk(seenAtEnd[0]?.recovery);
  // The recovery is announced after it is written: the next reads show it (at once, or after the announcement arrives).
  const deadline = Date.now() + 5_000;
  let latest = await view();
  while (!latest.retriedBy && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    latest = await view();
  }
  t.match(latest, { status: 'failed', retriedBy: String, recovery: /retried as job/ }, 'the API shows the recovery and the retry');
});
