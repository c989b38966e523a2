import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jobWritableFile, type LocalServer, startLocalFerretDb, startLocalRedis, standInIsolation } from '@pds/devkit';
import { stackBackend } from '@pds/runner';
import type { Teardowns } from '@pds/devkit/tap';
import t from 'tap';
import { createResource, fileSetManifest, queueJob, replaceResource, startStack, storedLines, untilLine, waitForJob } from './harness.js';

/**
 * Stores that go away mid-run (real servers, really stopped or paused) and a stack that Pulumi
 * itself finds locked: what the runner rides out, and what it retries.
 */

const STAND_IN = fileURLToPath(new URL('../../fixtures/stand-in-pulumi.sh', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Freezes a server process for `ms` (its clients' commands hang, its keys' TTLs run on). */
async function pause(server: LocalServer, ms: number): Promise<void> {
  process.kill(server.pid as number, 'SIGSTOP');
  try {
    await sleep(ms);
  } finally {
    process.kill(server.pid as number, 'SIGCONT');
  }
}

async function scratchDir(t: Teardowns, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('MongoDB stopped for 6 s during an up: the run rides it out and every line and the result are stored', async (t) => {
  const dataDir = await scratchDir(t, 'pds-outage-mongo-');
  let mongo = await startLocalFerretDb({ dataDir });
  t.teardown(() => mongo.stop());
  const logs: string[] = [];
  const stack = await startStack(t, { MONGO_URL: mongo.url }, { logs: (line) => logs.push(line) });
  const dir = join(stack.scratch, 'through-outage');
  const resource = await createResource(
    stack,
    fileSetManifest('through-outage', dir, [{ path: 'a.txt', content: 'kept', delayMs: 2_500 }]),
  );
  const job = await queueJob(stack, resource.id);
  await waitForJob(stack.models, job.id, (d) => d.status === 'running');
  // Half a second into the run, while it prints: a store call is in flight when the store goes (one
  // that starts later waits in the driver's server selection instead, and no retry would be seen).
  await sleep(500);

  await mongo.stop();
  // The outage's length, the scenario's own: Pulumi (its slow file took 2.5 s) ends during it, so its
  // last lines and the result wait for the store.
  await sleep(6_000);
  mongo = await startLocalFerretDb({ dataDir, port: mongo.port });

  const done = await waitForJob(stack.models, job.id, (d) => d.status !== 'running', 90_000);
  t.equal(done.status, 'succeeded', done.error ?? '');
  t.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'kept');
  t.ok(
    logs.some((line) => /store unreachable, retrying|cannot persist job lines yet/.test(line)),
    'the runner met the outage (and retried)',
  );
  const lines = await storedLines(stack, job.id);
  t.same(
    lines.map((l) => l.seq),
    Array.from({ length: done.lastSeq ?? 0 }, (_, i) => i + 1),
    'every line is stored, 1..lastSeq without a hole',
  );
  t.ok((done.lastSeq ?? 0) > 5);
});

t.test('MongoDB away when a job is to start, for longer than the tolerance: the job stays queued and runs later', async (t) => {
  const dataDir = await scratchDir(t, 'pds-outage-start-');
  let mongo = await startLocalFerretDb({ dataDir });
  t.teardown(() => mongo.stop());
  const logs: string[] = [];
  const stack = await startStack(t, { MONGO_URL: mongo.url, OUTAGE_TOLERANCE_SECONDS: 1 }, { logs: (line) => logs.push(line) });
  const dir = join(stack.scratch, 'late');
  const resource = await createResource(stack, fileSetManifest('late', dir, [{ path: 'a.txt', content: 'late' }]));
  await stack.queue.pause(); // no runner takes the job until MongoDB is gone
  const job = await queueJob(stack, resource.id);
  await mongo.stop();
  await stack.queue.resume();
  // The runner takes the job, cannot start it, gives it back (server selection alone takes 5 s).
  const deadline = Date.now() + 30_000;
  while (!logs.some((line) => line.includes('job could not be started; it will be tried again'))) {
    if (Date.now() > deadline) throw new Error(`the runner never gave the job back: ${logs.slice(-6).join('')}`);
    await sleep(100);
  }
  mongo = await startLocalFerretDb({ dataDir, port: mongo.port });
  const done = await waitForJob(stack.models, job.id, (d) => d.status !== 'queued' && d.status !== 'running', 60_000);
  t.equal(done.status, 'succeeded', done.error ?? '');
  t.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'late');
});

t.test('MongoDB away past the tolerance while a job prints, back before it ends: succeeded, its output marked incomplete', async (t) => {
  const dataDir = await scratchDir(t, 'pds-outage-lines-');
  let mongo = await startLocalFerretDb({ dataDir });
  t.teardown(() => mongo.stop());
  // The stand-in prints a line every 200 ms for 12 s: output while MongoDB is away, on demand.
  const scratch = await scratchDir(t, 'pds-outage-lines-log-');
  Object.assign(process.env, { STAND_IN_LOG: jobWritableFile(scratch, 'runs.log'), STAND_IN_MS: '12000', STAND_IN_TICK_MS: '200' });
  t.teardown(() => {
    for (const name of ['STAND_IN_LOG', 'STAND_IN_MS', 'STAND_IN_TICK_MS']) delete process.env[name];
  });
  const logs: string[] = [];
  const stack = await startStack(
    t,
    {
      MONGO_URL: mongo.url,
      OUTAGE_TOLERANCE_SECONDS: 1,
      PULUMI_BIN: STAND_IN,
      RUNNER_ISOLATION: standInIsolation(),
      JOB_ENV_ALLOW: 'STAND_IN_LOG,STAND_IN_MS,STAND_IN_TICK_MS',
    },
    { logs: (line) => logs.push(line) },
  );
  const resource = await createResource(stack, fileSetManifest('gappy', join(scratch, 'files'), [{ path: 'a.txt', content: 'a' }]));
  const job = await queueJob(stack, resource.id);
  await untilLine(stack, job.id, /./); // the stand-in runs
  await mongo.stop();
  const deadline = Date.now() + 20_000;
  while (!logs.some((line) => line.includes('"msg":"cannot persist job lines"'))) {
    if (Date.now() > deadline) throw new Error('the runner never gave up on the lines');
    await sleep(100);
  }
  mongo = await startLocalFerretDb({ dataDir, port: mongo.port });

  const done = await waitForJob(stack.models, job.id, (d) => d.status !== 'running', 60_000);
  t.match(done, { status: 'succeeded', reason: 'lines_not_persisted', error: /^the operation succeeded, but its output is incomplete/ });
  t.notOk(done.recovery, 'nothing to recover: the operation succeeded');
  const seqs = (await storedLines(stack, job.id)).map((l) => l.seq);
  t.same(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
    'what was stored is a prefix, without holes',
  );
  t.ok(seqs.length < (done.lastSeq ?? 0), `${seqs.length} of ${done.lastSeq} lines stored`);
});

t.test('Redis paused past the stack lock TTL: the up is stopped and not re-run, the stack repaired for the next one', async (t) => {
  const redis = await startLocalRedis();
  t.teardown(() => redis.stop());
  const stack = await startStack(t, { REDIS_URL: redis.url, RUNNER_HEARTBEAT_SECONDS: 0.5, CANCEL_GRACE_SECONDS: 1 });
  const dir = join(stack.scratch, 'cut-up');
  const resource = await createResource(stack, fileSetManifest('cut-up', dir, [{ path: 'slow.txt', content: 'x', delayMs: 8_000 }]));
  const job = await queueJob(stack, resource.id);
  await untilLine(stack, job.id, /slow\.txt/); // Pulumi is creating the slow file (8 s) now
  await pause(redis, 4_500); // the lock's TTL is 3 s

  const cut = await waitForJob(stack.models, job.id, (d) => d.status !== 'running' && Boolean(d.recovery), 60_000);
  t.match(cut, {
    status: 'failed',
    reason: 'lock_lost',
    recovery: /^not retried: an up may have changed resources before its stack lock was lost/,
  });
  t.equal(await stack.models.StackJob.countDocuments({ retryOf: job.id }), 0, 'the up is not repeated');

  // The next up on the stack runs (clearing the Pulumi lock the killed run left) and succeeds.
  await replaceResource(stack, resource.id, fileSetManifest('cut-up', dir, [{ path: 'slow.txt', content: 'y' }]));
  const next = await queueJob(stack, resource.id);
  const ended = await waitForJob(stack.models, next.id, (d) => ['succeeded', 'failed'].includes(d.status), 60_000);
  t.equal(ended.status, 'succeeded', ended.error ?? '');
  t.equal(readFileSync(join(dir, 'slow.txt'), 'utf8'), 'y');
});

t.test('Redis paused past the stack lock TTL during a preview: the preview is run again as a new job', async (t) => {
  const redis = await startLocalRedis();
  t.teardown(() => redis.stop());
  const scratch = await scratchDir(t, 'pds-outage-preview-');
  // The stand-in: a preview that takes 8 s, outlasting the pause (a real preview is quick).
  process.env.STAND_IN_LOG = jobWritableFile(scratch, 'runs.log');
  process.env.STAND_IN_MS = '8000';
  t.teardown(() => {
    delete process.env.STAND_IN_LOG;
    delete process.env.STAND_IN_MS;
  });
  const stack = await startStack(t, {
    REDIS_URL: redis.url,
    RUNNER_HEARTBEAT_SECONDS: 0.5,
    CANCEL_GRACE_SECONDS: 1,
    PULUMI_BIN: STAND_IN,
    RUNNER_ISOLATION: standInIsolation(),
    JOB_ENV_ALLOW: 'STAND_IN_LOG,STAND_IN_MS',
  });
  const resource = await createResource(stack, fileSetManifest('cut-preview', join(scratch, 'files'), [{ path: 'a.txt', content: 'a' }]));
  const job = await queueJob(stack, resource.id, { operation: 'preview' });
  await untilLine(stack, job.id, /./); // the stand-in runs
  await pause(redis, 4_500);

  const cut = await waitForJob(stack.models, job.id, (d) => d.status !== 'running' && Boolean(d.recovery), 60_000);
  t.match(cut, { status: 'failed', reason: 'lock_lost', retriedBy: String, recovery: /^retried as job .* \(attempt 2 of 3\)/ });
  const retry = await waitForJob(stack.models, cut.retriedBy as string, (d) => ['succeeded', 'failed'].includes(d.status), 60_000);
  t.match(retry, { status: 'succeeded', operation: 'preview', retryOf: job.id, attempt: 2 });
});

t.test('a stack Pulumi finds locked from outside: tried again while the lock stays, never cleared by the service', async (t) => {
  const stack = await startStack(t, {}, { runner: { lockedRetryWaitsMs: [2_000, 2_000] } });
  /** A lock as another `pulumi` process holds it (the file backend's own format, in the stack's own folder). */
  async function lockFromOutside(stackFqdn: string): Promise<string> {
    const dir = join(stackBackend(stack.config.PULUMI_BACKEND_URL, stackFqdn).dir as string, '.pulumi', 'locks', stackFqdn);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'someone-else.json');
    const content = { pid: 4242, username: 'operator', hostname: 'laptop', timestamp: new Date().toISOString() };
    await writeFile(file, JSON.stringify(content));
    return file;
  }
  /** Once the runner says it waits for the lock (its line stored): Pulumi found the stack locked. */
  async function untilWaitingForLock(jobId: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!(await storedLines(stack, jobId)).some((l) => /\[runner\] the stack is locked/.test(l.text ?? ''))) {
      if (Date.now() > deadline) throw new Error(`job ${jobId} never waited for the lock`);
      await sleep(100);
    }
  }

  t.test('the lock goes away between attempts: the up runs', async (t) => {
    const dir = join(stack.scratch, 'freed');
    const resource = await createResource(stack, fileSetManifest('freed', dir, [{ path: 'a.txt', content: 'a' }]));
    const lock = await lockFromOutside(resource.stackFqdn);
    const job = await queueJob(stack, resource.id);
    await untilWaitingForLock(job.id);
    await rm(lock);
    const done = await waitForJob(stack.models, job.id, (d) => d.status !== 'running', 60_000);
    t.equal(done.status, 'succeeded', done.error ?? '');
    t.ok(existsSync(join(dir, 'a.txt')));
    const text = (await storedLines(stack, job.id)).map((l) => l.text ?? '').join('\n');
    t.match(text, /the stack is currently locked by 1 lock/, "Pulumi's refusal is in the lines");
    t.match(text, /\[runner\] the stack is locked by a Pulumi run outside this service; trying again in 2 s \(attempt 2 of 3\)/);
  });

  t.test('the lock stays: the job fails saying so, and the lock is left alone', async (t) => {
    const resource = await createResource(stack, fileSetManifest('held', join(stack.scratch, 'held'), [{ path: 'a.txt', content: 'a' }]));
    const lock = await lockFromOutside(resource.stackFqdn);
    const job = await queueJob(stack, resource.id, { operation: 'up' });
    const done = await waitForJob(stack.models, job.id, (d) => d.status !== 'running' && d.status !== 'queued', 60_000);
    t.match(done, {
      status: 'failed',
      reason: 'stack_locked',
      error: /locked by a Pulumi run outside this service \(3 attempts\).*pulumi cancel --stack organization\/local-file-set\/held/,
    });
    t.ok(existsSync(lock), "the other run's lock is still there");
    t.notOk(existsSync(join(stack.scratch, 'held', 'a.txt')), 'nothing was deployed');
  });

  t.test('a job cancelled while it waits for the lock ends cancelled, not locked', async (t) => {
    const resource = await createResource(
      stack,
      fileSetManifest('waiting', join(stack.scratch, 'waiting'), [{ path: 'a.txt', content: 'a' }]),
    );
    await lockFromOutside(resource.stackFqdn);
    const job = await queueJob(stack, resource.id, { operation: 'up' });
    await untilWaitingForLock(job.id);
    const cancel = await stack.api.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: stack.auth });
    t.equal(cancel.statusCode, 202, cancel.body);
    const done = await waitForJob(stack.models, job.id, (d) => d.status !== 'running' && d.status !== 'queued', 60_000);
    t.match(done, { status: 'cancelled', reason: 'cancelled' });
    t.notOk(existsSync(join(stack.scratch, 'waiting', 'a.txt')), 'nothing was deployed');
  });
});
