import { existsSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { testIsolation } from '@pds/devkit';

import { killTree } from '@pds/runner';
import type { StackJobDoc } from '@pds/shared';
import t from 'tap';
import { fileSetManifest, queueJob, readStream, startRunnerProcess, startStack } from './harness.js';

const HEARTBEAT_SECONDS = 1;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test(
  'a runner killed mid-up: the job ends runner_lost within the bound, the stack is freed and repaired, the next up succeeds',
  async (t) => {
    const stack = await startStack(t, {}, { prefix: 'bull' });
    await stack.runner.close(); // only runner processes take jobs here
    const env = runnerEnv(stack, { RUNNER_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) });
    const doomed = await startRunnerProcess(env);
    const dir = join(stack.scratch, 'crash');
    const put = (delayMs?: number) => fileSetManifest('crash', dir, [{ path: 'a.txt', content: 'a', ...(delayMs ? { delayMs } : {}) }]);
    const resource = (
      await stack.api.inject({
        method: 'POST',
        url: '/v1/resources',
        headers: { ...stack.auth, 'content-type': 'application/yaml' },
        payload: put(60_000),
      })
    ).json();
    const job = await queueJob(stack, resource.id);
    // Wait until Pulumi is creating the slow file, then take the runner down as a pod kill would (every process).
    await waitFor('the slow create to start', async () => (await hasStarted(stack, job.id)) || undefined, 60_000);
    killTree(doomed.child.pid as number);
    const killedAt = Date.now();

    const survivor = await startRunnerProcess(env);
    t.teardown(() => survivor.stop());
    const lost = await waitFor(
      'the job to be declared lost',
      async () => {
        const doc = await stack.models.StackJob.findById(job.id).lean<StackJobDoc>();
        return doc?.status === 'failed' ? doc : undefined;
      },
      60_000,
    );
    // Four missed beats, two more for the reconciler to look, and 5 s for the survivor to start
    // (it is started after the kill) and for a loaded machine; timed by when the store says it ended.
    const bound = 4 * HEARTBEAT_SECONDS * 1000 + 2 * HEARTBEAT_SECONDS * 1000 + 5_000;
    const declaredAfter = (lost.finishedAt ? new Date(lost.finishedAt).getTime() : Date.now()) - killedAt;
    t.equal(lost.reason, 'runner_lost');
    await waitFor(
      'the recovery decision',
      async () => (await stack.models.StackJob.findById(job.id).lean<StackJobDoc>())?.recovery,
      10_000,
    );
    t.match(
      (await stack.models.StackJob.findById(job.id).lean<StackJobDoc>())?.recovery,
      /not retried: an up may have changed resources before its runner was lost/,
    );
    t.ok(declaredAfter < bound, `declared lost ${declaredAfter} ms after the kill (bound ${bound} ms)`);
    const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${job.id}/stream`);
    t.match(messages.at(-1), { type: 'end', status: 'failed', reason: 'runner_lost' });

    // What the lost run left: a refresh reads the stack (the service keeps what it leaves), which
    // shows the pending create; a repair that clears it leaves a stack with nothing pending.
    const api = async (method: 'GET' | 'POST', url: string, payload?: object) =>
      (await stack.api.inject({ method, url, headers: stack.auth, ...(payload ? { payload } : {}) })).json();
    const ended = (id: string) =>
      waitFor(
        'the job to end',
        async () => {
          const doc = await stack.models.StackJob.findById(id).lean<StackJobDoc>();
          return doc && doc.status !== 'queued' && doc.status !== 'running' ? doc : undefined;
        },
        120_000,
      );
    const refresh = await ended((await api('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'refresh' })).id);
    t.equal(refresh.status, 'succeeded', refresh.error ?? '');
    const refreshLines = (await api('GET', `/v1/jobs/${refresh._id}/lines?from=0&limit=1000`)).items as { text?: string }[];
    t.ok(
      refreshLines.some((l) => /previous run on this stack was lost/.test(String(l.text))),
      "the first run after the loss clears the lost run's Pulumi lock, and says so",
    );
    const left = await api('GET', `/v1/resources/${resource.id}/stack`);
    const pending = left.pendingOperations as { type: string; urn: string }[];
    t.match(pending, [{ type: 'creating', urn: /::a\.txt$/ }], 'the stack shows the create the lost run left pending');
    const refused = await stack.api.inject({
      method: 'POST',
      url: `/v1/resources/${resource.id}/jobs`,
      headers: stack.auth,
      payload: { operation: 'repair' },
    });
    t.equal(refused.statusCode, 400, 'a repair must choose for it');
    const repair = await ended(
      (
        await api('POST', `/v1/resources/${resource.id}/jobs`, {
          operation: 'repair',
          pendingCreates: [{ urn: pending[0]!.urn, action: 'clear' }],
        })
      ).id,
    );
    t.equal(repair.status, 'succeeded', repair.error ?? '');
    t.same((await api('GET', `/v1/resources/${resource.id}/stack`)).pendingOperations, [], 'nothing pending after the repair');

    await stack.api.inject({
      method: 'PUT',
      url: `/v1/resources/${resource.id}`,
      headers: { ...stack.auth, 'content-type': 'application/yaml' },
      payload: put(),
    });
    const next = await queueJob(stack, resource.id);
    const { messages: after } = await readStream(`${stack.gatewayUrl}/v1/jobs/${next.id}/stream`);
    const done = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${next.id}`, headers: stack.auth })).json();
    t.equal(after.at(-1)?.status, 'succeeded', `the next up succeeds: ${done.result?.error ?? ''}`);
    t.ok(existsSync(join(dir, 'a.txt')));
  },
);

/** The environment of a runner process of `stack` (its stores, CLI, backend and folders), with `extra`. */
function runnerEnv(stack: Awaited<ReturnType<typeof startStack>>, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MONGO_URL: stack.config.MONGO_URL,
    REDIS_URL: stack.config.REDIS_URL,
    PULUMI_BIN: stack.config.PULUMI_BIN,
    PULUMI_BACKEND_URL: stack.config.PULUMI_BACKEND_URL,
    WORK_DIR: stack.config.WORK_DIR,
    LOCAL_FILES_ROOT: stack.config.LOCAL_FILES_ROOT as string,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** A resource whose one file takes a minute to create (a run to cut short mid-create). */
async function slowResource(stack: Awaited<ReturnType<typeof startStack>>, name: string): Promise<{ id: string }> {
  const created = await stack.api.inject({
    method: 'POST',
    url: '/v1/resources',
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: fileSetManifest(name, join(stack.scratch, name), [{ path: 'a.txt', content: 'a', delayMs: 60_000 }]),
  });
  return created.json();
}

/** Whether Pulumi has begun creating the job's file (its resource-started event is persisted). */
async function hasStarted(stack: Awaited<ReturnType<typeof startStack>>, jobId: string): Promise<boolean> {
  const res = await stack.api.inject({ method: 'GET', url: `/v1/jobs/${jobId}/lines?from=0&limit=1000`, headers: stack.auth });
  return res
    .json()
    .items.some(
      (l: { event?: { kind?: string; type?: string } }) =>
        l.event?.kind === 'resource' && l.event?.type === 'pulumi-nodejs:dynamic:Resource',
    );
}

t.test('SIGTERM drains a runner process: its running job ends cancelled (shutdown), nothing is left running', async (t) => {
  const stack = await startStack(t, {}, { prefix: 'bull' });
  await stack.runner.close();
  const runner = await startRunnerProcess(runnerEnv(stack, { CANCEL_GRACE_SECONDS: '1' }));
  t.teardown(() => runner.stop());
  const resource = await slowResource(stack, 'drain');
  const job = await queueJob(stack, resource.id);
  await waitFor('the slow create to start', async () => (await hasStarted(stack, job.id)) || undefined, 60_000);
  const exited = new Promise<number | null>((resolve) => runner.child.once('exit', (code) => resolve(code)));
  runner.child.kill('SIGTERM');
  t.equal(await exited, 0, 'the runner exits cleanly');
  const done = await stack.models.StackJob.findById(job.id).lean<StackJobDoc>();
  t.match(done, { status: 'cancelled', reason: 'shutdown' });
});

/**
 * A runner process alone killed with SIGKILL (not its tree, as a pod kill would): its job's processes
 * (the CLI, the program host, the dynamic provider in its slow create) die with it, since each
 * sandbox's init dies with its parent and takes its PID namespace along. Without a sandbox a
 * provider lived on, parented to init, for minutes.
 */
t.test(
  'a runner killed alone with SIGKILL leaves none of its job running',
  { skip: testIsolation().isolation === 'sandbox' ? false : 'the job sandbox is not available here' },
  async (t) => {
    const stack = await startStack(t, {}, { prefix: 'bull' });
    await stack.runner.close();
    const doomed = await startRunnerProcess(runnerEnv(stack));
    t.teardown(() => doomed.stop());
    const resource = await slowResource(stack, 'orphans');
    const job = await queueJob(stack, resource.id);
    await waitFor('the slow create to start', async () => (await hasStarted(stack, job.id)) || undefined, 60_000);
    const workspace = join(stack.config.WORK_DIR, 'jobs', job.id);
    const before = await processesIn(workspace);
    t.ok(before.length >= 2, `the CLI and its provider run in the job's folder (${before.length} processes)`);
    process.kill(doomed.child.pid as number, 'SIGKILL');
    await waitFor('the job processes to end', async () => ((await processesIn(workspace)).length === 0 ? true : undefined), 15_000).catch(
      () => undefined,
    );
    t.same(await processesIn(workspace), [], 'none of them is left');
  },
);

/** The processes of a slot uid (61000+) whose working folder is `dir`: the job's CLI and what it started. */
async function processesIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))) {
    if ((await readlink(`/proc/${pid}/cwd`).catch(() => '')) !== dir) continue;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1]);
    if (uid >= 61_000) found.push(Number(pid));
  }
  return found;
}
