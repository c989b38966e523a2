import { testRedis } from '@pds/devkit/tap';
import {
  createLogger,
  Dispatcher,
  type FastLane,
  jobDispatchedKey,
  type JobClass,
  type Models,
  RunnerPool,
  STACK_JOBS_QUEUE,
  StackQueue,
  tenantRunningKey,
  WaitingJobs,
} from '@pds/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';

const logger = createLogger({ name: 'dispatch-test', level: process.env.TEST_LOG ?? 'silent' });

async function stores(t: Test) {
  const redis = new Redis(await testRedis(t), { maxRetriesPerRequest: null });
  await redis.flushall();
  t.teardown(() => redis.quit());
  const stacks = new StackQueue(redis);
  const waiting = new WaitingJobs(redis);
  /** Queues a job as queueStackJob does: in its stack's line, then in its tenant's. */
  const queueJob = async (jobId: string, tenant: string, stack: string, jobClass: JobClass = 'people') => {
    const stackKey = `${tenant}/${stack}`;
    await stacks.enqueue(stackKey, jobId);
    await waiting.add({ jobId, tenant, jobClass, stackKey, data: { stackKey, tenantId: tenant }, opts: {} });
  };
  const take = async (tenant: string, jobClass: JobClass = 'people', max?: number) => {
    const taken = await waiting.take(jobClass, tenant, { max, holdMs: 40_000 });
    return 'job' in taken ? taken.job.jobId : 'empty' in taken ? 'empty' : taken.blocked;
  };
  return { redis, stacks, waiting, queueJob, take };
}

t.test("a job is taken only first in its stack's line with the stack free, once", async (t) => {
  const { stacks, waiting, queueJob, take } = await stores(t);
  await queueJob('j1', 'a', 's');
  await queueJob('j2', 'a', 's');
  t.equal(await waiting.backlog(), 2, 'two jobs in the backlog the autoscaler reads');
  t.equal(await take('a'), 'j1');
  t.equal(await take('a'), 'busy', 'j2 waits: j1 was handed out and has not taken the stack yet');
  const held = await stacks.tryAcquire('a/s', 'j1');
  t.ok(held.acquired);
  t.equal(await take('a'), 'busy', 'j2 waits while j1 holds the stack');
  if (held.acquired) await stacks.release('a/s', held.lockValue);
  t.equal(await take('a'), 'j2', 'the stack freed: j2 goes');
  t.equal(await take('a'), 'empty');
  t.equal(await waiting.backlog(), 0);
});

t.test('jobs cancelled while they waited are dropped, and forget takes one out', async (t) => {
  const { stacks, waiting, queueJob, take } = await stores(t);
  await queueJob('gone', 'a', 's1');
  await queueJob('kept', 'a', 's2');
  await queueJob('forgotten', 'a', 's3');
  await stacks.claim('gone', 'cancelled');
  t.ok(await waiting.forget('forgotten'));
  t.notOk(await waiting.forget('forgotten'), 'only once');
  t.equal(await take('a'), 'kept');
  t.equal(await take('a'), 'empty');
  t.same(await waiting.tenants('people'), [], 'the tenant leaves the set of those waiting');
  t.equal(await waiting.backlog(), 0);
});

t.test('a tenant at its limit gets no job, and a dispatched job takes its place at once', async (t) => {
  const { redis, queueJob, take } = await stores(t);
  await queueJob('j1', 'a', 's1');
  await queueJob('j2', 'a', 's2');
  t.equal(await take('a', 'people', 1), 'j1');
  t.ok(await redis.zscore(tenantRunningKey('a'), 'j1'), "j1 holds a place in the tenant's running set");
  t.equal(await take('a', 'people', 1), 'limit');
  await redis.zrem(tenantRunningKey('a'), 'j1');
  t.equal(await take('a', 'people', 1), 'j2', 'j1 ended: j2 goes');
});

t.test("a check first in a stack's line goes before a person's job behind it on that stack", async (t) => {
  const { queueJob, take } = await stores(t);
  await queueJob('check', 'a', 's', 'checks');
  await queueJob('up', 'a', 's');
  t.equal(await take('a', 'people'), 'check', "the person's job cannot pass it: the check goes, first in the line");
  t.equal(await take('a', 'people'), 'busy');
  t.equal(await take('a', 'checks'), 'empty');
});

t.test("a busy stack's long line hides no other stack's job, and a cancelled head leaves its stack's line", async (t) => {
  const { redis, stacks, queueJob, take } = await stores(t);
  for (let i = 0; i < 80; i++) await queueJob(`s1-${i}`, 'a', 's1');
  await queueJob('s2-0', 'a', 's2');
  t.equal(await take('a'), 's1-0');
  t.equal(await take('a'), 's2-0', "80 jobs behind a busy stack: the other stack's job still goes");
  await stacks.claim('s1-0', 'cancelled');
  t.equal(await take('a'), 's1-1', 'the head handed out was cancelled before it took the stack: it leaves the line, the next goes');
  t.equal(await redis.zrank('pds:stack:a/s1:waiting', 's1-0'), null);
  const held = await stacks.tryAcquire('a/s1', 's1-1');
  t.ok(held.acquired, 'the next takes the stack');
  t.equal(await redis.exists('pds:job:s1-1:dispatched'), 0, 'its dispatched mark goes as it takes the stack');
});

t.test('the dispatcher fills the free slots of the pool in fair turns, and one leads', async (t) => {
  const { redis, waiting, queueJob } = await stores(t);
  const queue = new Queue(STACK_JOBS_QUEUE, { connection: redis });
  t.teardown(() => queue.close());
  const policies: Record<string, string> = { a: JSON.stringify({ weight: 1 }), b: JSON.stringify({ weight: 1 }) };
  const models = {
    Tenant: { find: () => ({ lean: async () => Object.entries(policies).map(([_id, policy]) => ({ _id, policy })) }) },
  } as unknown as Pick<Models, 'Tenant'>;
  const dispatchers = ['one', 'two'].map((id) => new Dispatcher({ redis, queue, models, logger, id, holdMs: 40_000 }));
  t.teardown(() => Promise.all(dispatchers.map((d) => d.close())));
  for (let i = 0; i < 5; i++) await queueJob(`a${i}`, 'a', `s${i}`);
  await queueJob('b0', 'b', 's0');
  // A job a dead dispatcher took and never put on the queue: the leader finishes it first.
  await queueJob('left', 'c', 's9');
  await waiting.take('people', 'c', { max: undefined, holdMs: 40_000 }, Date.now() - 60_000);

  const pool = new RunnerPool(redis);
  await pool.register('runner-1', 3, 60_000);
  for (const d of dispatchers) d.start();
  const onQueue = async () => (await queue.getJobs(['wait', 'prioritized'])).map((job) => job.id as string).sort();
  await until(async () => (await onQueue()).length >= 3, 'the first jobs on the queue');
  t.equal(dispatchers.filter((d) => d.isLeader).length, 1, 'one dispatcher leads');
  const first = await onQueue();
  t.ok(first.includes('left'), "the dead dispatcher's job is on the queue");
  t.ok(first.includes('b0') && first.some((id) => id.startsWith('a')), `the two slots left: one for each tenant (${first})`);
  t.equal(first.length, 3, 'and no more than the pool can start');

  await queue.drain();
  const leader = dispatchers.find((d) => d.isLeader) as Dispatcher;
  await leader.close();
  await until(async () => (await onQueue()).length === 3, 'the other dispatcher takes over and fills the three slots');
  t.ok(dispatchers.find((d) => d !== leader)?.isLeader, 'the other one leads');
  await pool.register('runner-2', 10, 60_000);
  await until(async () => (await onQueue()).length === 4, 'a new runner: its slots filled with the last job');
  t.equal(await waiting.backlog(), 0);
});

t.test('a job that passes nobody starts at once (the fast lane); one that would pass someone, or finds no room, waits', async (t) => {
  const { redis, stacks, waiting } = await stores(t);
  const queue = new Queue(STACK_JOBS_QUEUE, { connection: redis });
  t.teardown(() => queue.close());
  const lane: FastLane = { queue, max: undefined, holdMs: 40_000 };
  const add = async (jobId: string, tenant: string, stack: string, given: FastLane | 'none' = lane) => {
    const stackKey = `${tenant}/${stack}`;
    await stacks.enqueue(stackKey, jobId);
    const entry = { jobId, tenant, jobClass: 'people' as const, stackKey, data: { stackKey, tenantId: tenant }, opts: {} };
    const added = await waiting.add(entry, given === 'none' ? undefined : given);
    return typeof added === 'object' ? `taken ${added.taken.jobId}` : added;
  };
  t.equal(await add('early', 'a', 's1'), 'waiting', 'no runner has registered: no slot is free');
  await waiting.forget('early');
  await stacks.remove('a/s1', 'early');

  await new RunnerPool(redis).register('runner-1', 2, 60_000);
  t.equal(await add('j1', 'a', 's1'), 'taken j1', 'an idle pool: taken at once');
  t.equal(await waiting.backlog(), 0, 'it never counts as waiting');
  t.same(await waiting.tenants('people'), [], 'its tenant has nothing waiting');
  t.same(
    await waiting.unsettled(Date.now() + 60_000).then((left) => left.map((e) => e.jobId)),
    ['j1'],
    'until settled, the dispatcher would finish it',
  );
  t.equal(await add('j2', 'a', 's1'), 'waiting', 'its stack has j1 first in line (handed out): j2 waits');
  t.equal(await add('j3', 'b', 's1'), 'waiting', 'another tenant, a free stack, but j2 waits: j3 would pass it');
  await waiting.forget('j2');
  await waiting.forget('j3');
  await stacks.remove('a/s1', 'j2');
  await stacks.remove('b/s1', 'j3');

  await queue.add(STACK_JOBS_QUEUE, {}, { jobId: 'j1' });
  await waiting.settle('j1');
  await queue.add(STACK_JOBS_QUEUE, {}, { jobId: 'other' });
  t.equal(await add('j4', 'c', 's1'), 'waiting', 'two slots, two jobs on the runner queue: no room');
  await waiting.forget('j4');
  await stacks.remove('c/s1', 'j4');
  await queue.drain();

  await stacks.enqueue('d/s1', 'running');
  const held = await stacks.tryAcquire('d/s1', 'running');
  t.ok(held.acquired);
  t.equal(await add('j5', 'd', 's1'), 'waiting', 'its stack is held by a running job');
  await waiting.forget('j5');
  await redis.zadd(tenantRunningKey('e'), Date.now() + 60_000, 'elsewhere');
  t.equal(await add('j6', 'e', 's1', { ...lane, max: 1 }), 'waiting', 'its tenant is at its limit');
  await waiting.forget('j6');
  t.equal(await add('j7', 'e', 's2', { ...lane, max: 2 }), 'taken j7', 'below its limit: taken, and a place held for it');
  t.ok(await redis.zscore(tenantRunningKey('e'), 'j7'));
  t.ok(await waiting.untake({ jobId: 'j7', tenant: 'e' }), 'a fast take whose hand-over failed is given back');
  t.equal(await redis.zscore(tenantRunningKey('e'), 'j7'), null, 'its tenant place is free again');
  t.equal(await redis.exists(jobDispatchedKey('j7')), 0, 'the next job on its stack does not wait for it');
  t.same(await waiting.unsettled(Date.now() + 60_000), [], 'nothing is left for the dispatcher to finish');
  t.notOk(await waiting.untake({ jobId: 'j1', tenant: 'a' }), 'a job handed over (settled) is not given back');
  t.equal(await add('j8', 'f', 's1', 'none'), 'waiting', 'no lane given: it waits for the dispatcher');
  t.equal(await waiting.backlog(), 1);
});

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
