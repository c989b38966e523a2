import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Managed, recentOutput } from '@pds/devkit';
import { killTree } from '@pds/runner';
import type { StackJobDoc } from '@pds/shared';
import t, { type Test } from 'tap';
import { fileSetManifest, startStack, startStandInRunners, until } from './harness.js';

/** Told from outside, with the default settings (RUNNER_HEARTBEAT_SECONDS 3): a runner is lost within this. */
const LOST_WITHIN_MS = 15_000;

/** The stack with only runner processes taking jobs (the stand-in for Pulumi), a resource, and a way to run an up. */
async function setUp(t: Test, name: string) {
  const stack = await startStack(t, {}, { prefix: 'bull' });
  await stack.runner.close();
  const scratch = await mkdtemp(join(tmpdir(), `pds-${name}-`));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const log = join(scratch, 'runs.log');
  const runner = async (standInMs: number) =>
    (await startStandInRunners(t, stack, scratch, { count: 1, slots: 1, standInMs, log })).runners[0] as Managed;
  const resources: string[] = [];
  for (let i = 0; i < 3; i++)
    resources.push(
      (
        await stack.api.inject({
          method: 'POST',
          url: '/v1/resources',
          headers: { ...stack.auth, 'content-type': 'application/yaml' },
          payload: fileSetManifest(`${name}-${i}`, join(scratch, `${name}-${i}`), []),
        })
      ).json().id,
    );
  const read = (id: string) => stack.models.StackJob.findById(id).lean<StackJobDoc>();
  /** Queues an up on the i-th resource. */
  const queueUp = async (i = 0): Promise<string> =>
    (
      await stack.api.inject({
        method: 'POST',
        url: `/v1/resources/${resources[i]}/jobs`,
        headers: stack.auth,
        payload: { operation: 'up' },
      })
    ).json().id;
  const running = (id: string) => until(async () => (await read(id))?.status === 'running', 'the job running', 60_000, 50);
  return { stack, runner, queueUp, running, read };
}

t.test(`a runner SIGKILLed mid-job is declared lost within ${LOST_WITHIN_MS / 1000} s with the default settings`, async (t) => {
  const { runner, queueUp, running, read } = await setUp(t, 'killed');
  // Three runners of one slot each take a job each; a fourth starts beside them, then the three are
  // killed as pods would be (every process of each).
  const doomed = await Promise.all([0, 1, 2].map(() => runner(60_000)));
  const jobs = await Promise.all([0, 1, 2].map((i) => queueUp(i)));
  await Promise.all(jobs.map(running));
  await runner(60_000);
  for (const d of doomed) killTree(d.child.pid as number);
  const killedAt = Date.now();
  const times = await Promise.all(
    jobs.map(async (jobId) => {
      await until(async () => (await read(jobId))?.status === 'failed', 'the job declared lost', 60_000, 50);
      t.match(await read(jobId), { status: 'failed', reason: 'runner_lost' });
      return Date.now() - killedAt;
    }),
  );
  t.comment(`declared lost ${times.join(', ')} ms after the SIGKILL`);
  for (const ms of times) t.ok(ms <= LOST_WITHIN_MS, `lost within ${LOST_WITHIN_MS} ms (${ms} ms)`);
});

t.test('a runner whose event loop is held for 5 s keeps its job: it is not declared lost and ends as it runs', async (t) => {
  const { runner, queueUp, running, read } = await setUp(t, 'held');
  const held = await runner(20_000);
  const jobId = await queueUp();
  await running(jobId);
  // Another runner's reconciler looks on all the while.
  const watcher = await runner(20_000);
  t.teardown(() => watcher.stop());
  // SIGSTOP holds the whole runner process (its loop, its timers); the job's Pulumi goes on.
  held.child.kill('SIGSTOP');
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  held.child.kill('SIGCONT');
  await until(async () => !['queued', 'running'].includes((await read(jobId))?.status ?? ''), 'the job ended', 90_000, 100);
  const job = await read(jobId);
  t.equal(job?.status, 'succeeded', `it succeeded (${job?.reason ?? ''} ${job?.error ?? ''})`);
  if (job?.status !== 'succeeded') t.comment(recentOutput(held).slice(-3000));
});
